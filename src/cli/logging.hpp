// Where `vmgate serve` logs: to the systemd journal when stderr is connected to it (structured
// entries with their priority, so `journalctl -p warning` works), else to stderr as before.
#pragma once

namespace vmgate::cli {

// Called once, before the daemon logs anything.
void log_to_journal_if_connected();

}  // namespace vmgate::cli
