// The gateway acting as an RFB server toward a VNC client: ProtocolVersion (§1.1), security type
// negotiation (§1.2), VeNCrypt (§3) with its TLS switch, VNC authentication (§2), Plain
// credentials (§3.3), SASL framing (§4), SecurityResult (§1.3) and ClientInit (§5.1).
//
// Sans-I/O: send take_output() to the client (the greeting is queued at construction: send it
// at once on accept, §1.1), feed() client bytes, drain next_event() after feed() and after every
// gateway call. Events:
//
//   StartTls            → a TLS VeNCrypt subtype was accepted. Send take_output() (ends with the
//                         ack byte) in clear, run the TLS server handshake of `kind` starting
//                         with take_excess() (the client's first TLS bytes), then call
//                         tls_established() and from then on feed() decrypted bytes and encrypt
//                         take_output() (§9 item 13).
//   NoneChosen          → security None (type 1 or a *None subtype, after TLS): no credentials;
//                         the identity must come from elsewhere. accept() or deny().
//   VncResponseReceived → check it against the offer's challenge (vnc_auth.hpp); accept()/deny().
//   CredentialsReceived → Plain username/password (§3.3); accept() or deny().
//   SaslMechlistNeeded  → SASL subtype, TLS is up: sasl_offer() the mechanisms (Cyrus knows
//                         them only now, with the TLS strength as external SSF).
//   SaslStart, SaslStep → sasl_server_start/step; answer sasl_continue() or sasl_complete().
//                         After sasl_complete(), accept() or deny(): a failed exchange is
//                         sasl_complete(nullopt) then deny(reason), which clients handle (§4.2).
//   ClientInitReceived  → after accept(): the handshake is done(); take_excess() holds the
//                         client bytes that followed ClientInit (data-phase messages).
//   Failed              → protocol violation; whatever failure message the client can still
//                         read in that state (§1.3, §3.1, §4.2) is queued and closed() holds.
//
// accept() sends SecurityResult OK: the last point at which a refusal can carry a reason, so call
// it only once the upstream reached ServerInit (§5.2 step 5, §9 item 7).
//
// Only RFB 3.8 is spoken (later minors, e.g. Apple's 3.889, count as 3.8 as TigerVNC counts them).
// 3.3 and 3.7 clients are refused with the failure message of their version: 3.3 cannot carry
// anything but None or VNC auth and 3.7 has no failure reasons (§1.3), so a gateway whose
// refusals must be explained cannot serve them; every client in §3.5 speaks 3.8. A peer that
// does not send an RFB version (or another major version) gets no bytes: it would not read them.
//
// Gateway calls made after closed() are ignored (an answer may race with a client violation);
// calls in a state that does not expect them throw std::logic_error.
#pragma once

#include "vnc/protocol.hpp"
#include "vnc/wire.hpp"

#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace vmgate::vnc {

// What a listener offers, in the caller's preference order (clients other than gtk-vnc take the
// first they support, §1.2, §3.5). The constructor throws std::invalid_argument unless:
// security_types is non-empty, without duplicates, from {none, vnc_auth, vencrypt} (bare SASL
// would need a SASL security layer, §4.3); vencrypt_subtypes is non-empty exactly when vencrypt
// is offered, without duplicates, each a VencryptSubtype value. Whether an offer is wise (§8: no
// *None, no cleartext Plain outside wss://) is the caller's policy.
struct DownstreamOffer {
    std::vector<SecurityType> security_types;
    std::vector<VencryptSubtype> vencrypt_subtypes;
    VncChallenge vnc_challenge{};  // fresh random bytes per connection; sent iff VNC auth is chosen
};

struct StartTls {
    TlsKind kind = TlsKind::x509;
};

struct NoneChosen {};

struct VncResponseReceived {
    VncResponse response{};
};

// Arbitrary bytes (§3.3: the encoding is unspecified; noVNC sends UTF-8).
struct CredentialsReceived {
    std::string username;
    std::string password;
};

struct SaslMechlistNeeded {};

// client_data: nullopt = length 0 on the wire (no data); otherwise the bytes without the padding
// NUL the client appends (§4.2). May contain NULs (PLAIN).
struct SaslStart {
    std::string mechanism;
    std::optional<std::vector<std::uint8_t>> client_data;
};

struct SaslStep {
    std::optional<std::vector<std::uint8_t>> client_data;
};

struct ClientInitReceived {
    bool shared = false;  // §5.3: the client's wish only; the upstream flag is the gateway's
};

using DownstreamEvent = std::variant<StartTls, NoneChosen, VncResponseReceived, CredentialsReceived,
                                     SaslMechlistNeeded, SaslStart, SaslStep, ClientInitReceived, Failed>;

class DownstreamHandshake {
public:
    explicit DownstreamHandshake(DownstreamOffer offer);

    void feed(std::span<const std::uint8_t> bytes);
    std::optional<DownstreamEvent> next_event();
    std::vector<std::uint8_t> take_output();
    bool closed() const { return state_ == State::closed; }
    bool done() const { return state_ == State::done; }
    // The unparsed client bytes once done(), and while the machine waits for TLS (the start of
    // the client's TLS handshake). Empty otherwise.
    std::vector<std::uint8_t> take_excess();

    // After StartTls, once the TLS handshake completed. Throws std::logic_error if cleartext
    // client bytes are still held: take_excess() belongs to the TLS engine, not to this machine.
    void tls_established();
    // Cyrus' list, names separated by commas ("SCRAM-SHA-256,PLAIN"). std::invalid_argument if
    // it is empty, has an empty name or exceeds max_sasl_mechlist_len (gtk-vnc aborts, §4.1).
    void sasl_offer(std::string_view mechlist);
    // Server data with complete = 0: the client answers with a SaslStep.
    void sasl_continue(std::optional<std::vector<std::uint8_t>> server_data);
    // Server data with complete = 1 (SASL_OK, or nullopt before deny() on a failure).
    void sasl_complete(std::optional<std::vector<std::uint8_t>> server_data);
    // SecurityResult OK; the client's ClientInit follows.
    void accept();
    // SecurityResult failed with `reason` (UTF-8; cut to max_reason_len bytes), then closed.
    void deny(std::string_view reason);

private:
    enum class State {
        version,            // §1.1 the client's 12 bytes
        security_type,      // §1.2 the client's choice
        vencrypt_version,   // §3.1 row 2
        vencrypt_subtype,   // §3.1 row 6
        await_tls,          // gateway: TLS handshake, then tls_established
        vnc_response,       // §2 the client's 16 bytes
        plain_credentials,  // §3.3
        await_mechlist,     // gateway: sasl_offer
        sasl_mechname,      // §4.2 mechname
        sasl_start,         // §4.2 START clientout
        sasl_step,          // §4.2 STEP clientout
        await_sasl,         // gateway: sasl_continue / sasl_complete
        await_result,       // gateway: accept / deny
        client_init,        // §5.1
        done,
        closed,
    };

    void pump();
    bool step();
    bool read_version();
    bool read_security_type();
    bool read_vencrypt_version();
    bool read_vencrypt_subtype();
    bool read_vnc_response();
    bool read_plain_credentials();
    bool read_sasl_mechname();
    bool read_sasl_data();
    bool read_client_init();
    void refuse_version(const ProtocolVersion& version);
    void begin_inner_auth(VencryptSubtype chosen);
    void put_security_failure(std::string_view reason);
    void fail(std::string detail);
    void close_failed(std::string detail);
    void require_state(State expected, const char* call) const;

    DownstreamOffer offer_;
    State state_ = State::version;
    VencryptSubtype chosen_ = VencryptSubtype::none;  // set with StartTls, used by tls_established
    wire::InputBuffer input_;
    std::vector<std::uint8_t> output_;
    std::deque<DownstreamEvent> events_;
    std::string mechlist_;   // as sent; "" until sasl_offer
    std::string mechanism_;  // the SASL mechanism the client chose
};

}  // namespace vmgate::vnc
