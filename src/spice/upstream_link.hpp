// The gateway acting as a SPICE client toward QEMU, for one channel connection (§10, §11 steps 4
// and 8): sends the link message, reads the reply, later sends the ticket and reads the result.
//
// Sans-I/O: send take_output() to QEMU, feed() QEMU's bytes, drain next_event(). Events:
//
//   ReplyReceived → always reported, also when reply.error != ok (the link is then closed() and
//                   the caller decides what to tell the client). Otherwise call send_ticket()
//                   once the client is authorized.
//   Result        → the final u32. ok: done(), and take_excess() returns the server bytes that
//                   followed it (MAIN_INIT may share the read, §12 item 16). Otherwise closed().
//   Failed        → malformed reply or unexpected server data; closed(). `code` classifies the
//                   violation (invalid_magic, version_mismatch, invalid_data).
#pragma once

#include "spice/link_codec.hpp"
#include "spice/protocol.hpp"
#include "spice/wire.hpp"

#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <variant>
#include <vector>

namespace vmgate::spice {

struct ReplyReceived {
    LinkReply reply;
};

struct Result {
    LinkError code = LinkError::ok;
};

using UpstreamEvent = std::variant<ReplyReceived, Result, Failed>;

class UpstreamLink {
public:
    // Queues the encoded link message; forward the client's link (§11 step 4).
    explicit UpstreamLink(const LinkMess& link);

    void feed(std::span<const std::uint8_t> bytes);
    std::optional<UpstreamEvent> next_event();
    std::vector<std::uint8_t> take_output();
    std::vector<std::uint8_t> take_excess();
    bool closed() const { return state_ == State::closed; }
    bool done() const { return state_ == State::done; }

    // Queues u32 AuthMechanism::spice iff both our link and the server's reply advertise
    // AUTH_SELECTION (§3.2: only then does the server read it), then the ciphertext. If the
    // server selects mechanisms but does not offer AUTH_SPICE (QEMU sasl=on, §10), nothing is
    // sent: a Failed event follows and the link closes. Ignored once closed().
    void send_ticket(std::span<const std::uint8_t, ticket_ciphertext_size> ciphertext);

private:
    enum class State {
        reply_header,  // §2.2
        reply_body,    // §2.4
        await_ticket,  // caller: send_ticket
        result,        // final u32
        done,
        closed,
    };

    void pump();
    bool step();
    bool read_reply_header();
    bool read_reply_body();
    bool read_result();
    void fail(Failed failure);

    State state_ = State::reply_header;
    wire::InputBuffer input_;
    std::vector<std::uint8_t> output_;
    std::deque<UpstreamEvent> events_;
    std::uint32_t body_size_ = 0;
    bool link_selects_auth_ = false;  // our link message advertised AUTH_SELECTION
    bool server_selects_auth_ = false;
    bool server_offers_ticket_ = false;
};

}  // namespace vmgate::spice
