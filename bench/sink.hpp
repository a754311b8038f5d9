// The upstream end of every benchmark path: a unix-socket server that stands where QEMU's
// display socket would. One thread, epoll, so tens of thousands of idle connections cost it
// little and it never competes with the terminator for more than one core.
#pragma once

#include <string>

namespace vmgate::bench {

struct SinkOptions {
    std::string unix_path;
    // Play spice-server's side of the link first (spice-protocol.md §2, §4): what vmgate logs
    // into. The password is not checked; the gateway has authorized the client already.
    bool spice = false;
    // Echo every byte (ping-pong, handshakes, idle); otherwise consume bulk transfers.
    bool echo = false;
};

// Serves until the process is killed. Throws std::system_error if the socket cannot be set up.
void run_sink(const SinkOptions& options);

}  // namespace vmgate::bench
