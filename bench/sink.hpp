// The upstream end of every benchmark path: a unix-socket server that stands where QEMU's
// display socket would. One thread, epoll, so tens of thousands of idle connections cost it
// little and it never competes with the terminator for more than one core.
#pragma once

#include <string>

namespace vmgate::bench {

// What the sink plays before the data phase.
enum class SinkProtocol {
    raw,    // nothing: the data phase starts at once (SPICE tests without vmgate)
    // spice-server's side of the link (spice-protocol.md §2, §4): what vmgate logs into. The
    // password is not checked; the gateway has authorized the client already.
    spice,
    // QEMU's `-vnc unix:` side (rfb-protocol.md §1.2, §5.1): RFB 3.8, security None, ServerInit;
    // then bulk transfers arrive in ClientCutText messages (bench_wire.hpp). Every VNC test's
    // path ends here, through vmgate or not.
    rfb,
};

struct SinkOptions {
    std::string unix_path;
    SinkProtocol protocol = SinkProtocol::raw;
    // Echo every byte (ping-pong, handshakes, idle); otherwise consume bulk transfers.
    bool echo = false;
};

// Serves until the process is killed. Throws std::system_error if the socket cannot be set up.
void run_sink(const SinkOptions& options);

}  // namespace vmgate::bench
