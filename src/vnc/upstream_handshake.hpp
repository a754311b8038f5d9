// The gateway acting as an RFB client toward QEMU (§5.2 steps 4, 6 and 7): ProtocolVersion 3.8,
// security None or VNC authentication, SecurityResult, ClientInit, ServerInit.
//
// Sans-I/O: feed() QEMU's bytes, send take_output() to QEMU, drain next_event(). No gateway
// decisions are needed, so the machine runs to ServerInit on its own. Events:
//
//   ServerInitReceived → done(). Forward server_init.bytes to the client unchanged (§9 item 8);
//                        take_excess() returns the server bytes that followed it.
//   Failed             → malformed input, a version other than 3.8, no usable security type, or
//                        a refusal by QEMU (its reason is in the detail); closed(). Nothing is
//                        owed to QEMU: close the connection.
//
// ClientInit always asks for a shared session (§5.3 "gateway-managed seats"): an exclusive one
// would disconnect every other client of the VM, or get vmgate itself dropped under
// share=force-shared. Seats are the gateway's business.
#pragma once

#include "vnc/protocol.hpp"
#include "vnc/wire.hpp"

#include <array>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

namespace vmgate::vnc {

// §5.1 ServerInit. The fields are for logs and checks; `bytes` is what the client gets.
struct ServerInit {
    std::uint16_t width = 0;
    std::uint16_t height = 0;
    std::array<std::uint8_t, pixel_format_size> pixel_format{};
    std::string name;                 // as sent (UTF-8 recommended, not guaranteed)
    std::vector<std::uint8_t> bytes;  // the whole message, header and name
};

struct ServerInitReceived {
    ServerInit server_init;
};

using UpstreamEvent = std::variant<ServerInitReceived, Failed>;

class UpstreamHandshake {
public:
    // password: the VNC password QEMU was given (set_password or password-secret), nullopt when
    // QEMU asks for none (unix socket, add_client skipauth; §6.3, §6.4). QEMU offers exactly one type
    // (§1.2): None is taken whenever offered, VNC auth (2) only with a password.
    explicit UpstreamHandshake(std::optional<std::string> password);

    void feed(std::span<const std::uint8_t> bytes);
    std::optional<UpstreamEvent> next_event();
    std::vector<std::uint8_t> take_output();
    std::vector<std::uint8_t> take_excess();
    bool closed() const { return state_ == State::closed; }
    bool done() const { return state_ == State::done; }

private:
    enum class State {
        version,          // §1.1 the server's 12 bytes
        security_types,   // §1.2 count and list
        failure_reason,   // §1.2 empty list / §1.3 failed result: u32 length and reason
        vnc_challenge,    // §2 16 bytes
        security_result,  // §1.3 u32 status
        server_init,      // §5.1
        done,
        closed,
    };

    bool step();
    bool read_version();
    bool read_security_types();
    bool read_failure_reason();
    bool read_vnc_challenge();
    bool read_security_result();
    bool read_server_init();
    void choose(SecurityType type);
    void fail(std::string detail);

    std::optional<std::string> password_;
    State state_ = State::version;
    wire::InputBuffer input_;
    std::vector<std::uint8_t> output_;
    std::deque<UpstreamEvent> events_;
    std::string refusal_;  // what the reason being read explains: "connection" or "authentication"
};

}  // namespace vmgate::vnc
