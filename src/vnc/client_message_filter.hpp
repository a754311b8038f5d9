// Watches the client → QEMU byte stream after the handshake (§5.2 step 8) message by message:
// drops the messages a view-only session may not send, notes when a person gave input (for idle
// timeouts: FramebufferUpdateRequests arrive all the time, so "any byte" is not input), and
// refuses a message type QEMU does not parse or a length QEMU would refuse, with a reason, before
// QEMU drops the connection without one (§9 item 15).
//
// Sans-I/O. Whole messages only, never a rewritten or injected one: every forwarded message is
// byte-identical to the client's, and a message goes out (or is dropped) only once all its bytes
// arrived, so a dropped message never leaks a prefix and the output is the same however the
// input was split. Messages that arrive whole within one feed() are copied out in runs, straight
// from the input; only a message cut by a chunk boundary is held, at most
// max_client_message_size - 1 bytes.
//
// Framing only: whether QEMU enabled a message's feature (xvp needs power-control=on, audio and
// the extended clipboard need the client's SetEncodings) and field values (xvp version, audio
// format) stay QEMU's checks, failed like an unknown type by dropping the connection.
//
// After failed() nothing more is forwarded; the caller closes both legs and logs error().
#pragma once

#include "vnc/protocol.hpp"

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace vmgate::vnc {

struct ClientMessageFilterOptions {
    bool drop_input = false;  // view-only: drop key/pointer/clipboard/power/resize messages
};

class ClientMessageFilter {
public:
    explicit ClientMessageFilter(ClientMessageFilterOptions options);

    // Appends to `out` the bytes to forward upstream for `in`; holds back an incomplete message
    // until it is complete. After failed(), appends nothing more.
    void feed(std::span<const std::uint8_t> in, std::vector<std::uint8_t>& out);

    bool failed() const { return failed_; }
    // Why, in words ("unknown client message type 77"); empty unless failed().
    const std::string& error() const { return error_; }
    // True once since the last call if a message of a person acting (key, pointer, clipboard,
    // power) passed or was dropped.
    bool take_input_seen();
    // Messages dropped because the session is view-only.
    std::uint64_t dropped_messages() const { return dropped_; }

private:
    std::span<const std::uint8_t> complete_held(std::span<const std::uint8_t> in, std::vector<std::uint8_t>& out);
    void pass_whole(std::span<const std::uint8_t> in, std::vector<std::uint8_t>& out);
    bool admit(std::span<const std::uint8_t> message);
    void release_held();
    void fail(std::string error);

    const ClientMessageFilterOptions options_;
    std::vector<std::uint8_t> held_;  // the start of a message cut by a chunk boundary
    std::string error_;
    std::uint64_t dropped_ = 0;
    bool input_seen_ = false;
    bool failed_ = false;
};

}  // namespace vmgate::vnc
