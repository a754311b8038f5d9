// The gateway acting as a SPICE server toward a client, for one channel connection: link message
// (§2), reply, auth-mechanism selection (§3.2), ticket (§4) or SASL framing (§5), final result.
//
// Sans-I/O: feed() client bytes, drain next_event() after feed() and after every gateway call,
// send take_output() to the client, close once closed() and the output is flushed. Events:
//
//   LinkReceived   → answer with accept_link() or refuse_link()
//   TicketReceived → decrypt/verify/authorize, then finish(ok | permission_denied | ...)
//   SaslStart      → sasl_server_start; then sasl_continue(), sasl_success() or sasl_failure()
//   SaslStep       → sasl_server_step; same three answers
//   Failed         → protocol violation; the full-size error reply is already queued (except for
//                    major version 0, which spice-server answers with a bare close, §2.5) and
//                    closed() holds
//
// After sasl_success() the gateway authorizes and calls finish(). finish(ok) completes the
// handshake: done() holds and take_excess() returns client bytes that followed the handshake.
//
// Gateway calls made after closed() are ignored (an answer may race with a client violation);
// calls in a state that does not expect them throw std::logic_error.
#pragma once

#include "spice/link_codec.hpp"
#include "spice/protocol.hpp"
#include "spice/wire.hpp"

#include <array>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

namespace vmgate::spice {

struct LinkReceived {
    LinkMess link;
};

struct TicketReceived {
    std::array<std::uint8_t, ticket_ciphertext_size> ciphertext{};
};

// client_data: nullopt = the client sent no initial response (length 0); otherwise the bytes
// without the trailing NUL of the wire form (§5.1 row 3). May contain NULs (PLAIN, §5.4).
struct SaslStart {
    std::string mechanism;
    std::optional<std::vector<std::uint8_t>> client_data;
};

struct SaslStep {
    std::optional<std::vector<std::uint8_t>> client_data;
};

using DownstreamEvent = std::variant<LinkReceived, TicketReceived, SaslStart, SaslStep, Failed>;

class DownstreamLink {
public:
    DownstreamLink() = default;

    void feed(std::span<const std::uint8_t> bytes);
    std::optional<DownstreamEvent> next_event();
    std::vector<std::uint8_t> take_output();
    bool closed() const { return state_ == State::closed; }
    bool done() const { return state_ == State::done; }
    std::vector<std::uint8_t> take_excess();

    // Queues `reply` (the gateway's pub_key and auth caps, upstream's channel caps). If it
    // advertises AUTH_SASL, sasl_mech_list ("SCRAM-SHA-256,PLAIN") must name at least one
    // mechanism and fit in 300 bytes framed (std::invalid_argument otherwise). A reply whose
    // error is not ok is sent as given and closes the link.
    void accept_link(const LinkReply& reply, std::string_view sasl_mech_list);
    // Queues a full-size error reply (§2.4) and closes. Allowed at any point before done().
    void refuse_link(LinkError error);

    void sasl_continue(std::optional<std::vector<std::uint8_t>> server_data);
    // Queues the data with complete=1 and the SASL-layer OK (§5.1: the first of two u32 zeros).
    void sasl_success(std::optional<std::vector<std::uint8_t>> server_data);
    // Closes without output: spice-server's way to signal a SASL failure (§5.2).
    void sasl_failure();
    // Queues the final u32 link result; ok completes the handshake, anything else closes.
    void finish(LinkError result);

private:
    enum class State {
        link_header,     // §2.6 steps 1–2
        link_body,       // §2.6 step 3
        await_accept,    // gateway: accept_link / refuse_link
        auth_mechanism,  // §3.2 u32 mechanism word
        ticket,          // §4 128-byte ciphertext
        sasl_mechname,   // §5.1 row 2
        sasl_start,      // §5.1 row 3
        sasl_step,       // §5.1 row 5
        await_sasl,      // gateway: sasl_continue / sasl_success / sasl_failure
        await_finish,    // gateway: finish
        done,
        closed,
    };

    void pump();
    bool step();
    bool read_link_header();
    bool read_link_body();
    bool read_auth_mechanism();
    bool read_ticket();
    bool read_sasl_mechname();
    bool read_sasl_data();
    void choose_auth(const LinkReply& reply);
    void begin_sasl();
    void fail(Failed failure);
    void require_state(State expected, const char* call) const;

    State state_ = State::link_header;
    wire::InputBuffer input_;
    std::vector<std::uint8_t> output_;
    std::deque<DownstreamEvent> events_;
    std::uint32_t body_size_ = 0;
    bool client_selects_auth_ = false;  // the client advertised AUTH_SELECTION
    bool offers_ticket_ = false;
    std::string mechlist_;   // framed ",A,B," form sent to the client; "" = SASL not offered
    std::string mechanism_;  // the SASL mechanism the client chose
};

}  // namespace vmgate::spice
