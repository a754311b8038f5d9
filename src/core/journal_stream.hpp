// Whether our standard error is the systemd journal. systemd sets JOURNAL_STREAM="DEV:INO" to
// the device and inode of the stream it connected to stderr; a child whose stderr was
// redirected elsewhere inherits the variable, so it counts only when fd 2 still is that stream
// (the check sd_journal_stream_fd(3) and systemd.exec(5) describe).
#pragma once

#include <cstdint>
#include <string_view>

namespace vmgate::core {

// True when `journal_stream` is "DEV:INO" (decimal) naming exactly `dev` and `ino`.
bool journal_stream_matches(std::string_view journal_stream, std::uint64_t dev, std::uint64_t ino);

// JOURNAL_STREAM against fstat(2) of file descriptor 2.
bool stderr_is_journal();

}  // namespace vmgate::core
