// One accepted VNC connection (one VNC session): the RFB greeting, VeNCrypt and its TLS switch,
// the client's authentication (Plain checked by Cyrus, SASL, a one-time ticket by VNC auth, or a
// client certificate), the policy, QEMU's handshake up to ServerInit, the seat, then the relay
// with the client's messages filtered (rfb-protocol.md §5.2). The protocol decisions live in the
// vnc/ state machines; this class moves their bytes.
//
// Every refusal after authentication carries its reason in words in SecurityResult, and
// SecurityResult OK is sent only once QEMU reached ServerInit: after it, the gateway could only
// drop the connection without saying why (§9 item 7).
#pragma once

#include "auth/sasl_server.hpp"
#include "net/connection.hpp"
#include "net/tls.hpp"
#include "vnc/downstream_handshake.hpp"
#include "vnc/upstream_handshake.hpp"

#include <memory>
#include <optional>
#include <string>

namespace vmgate::net {

class VncConnection final : public Connection {
public:
    VncConnection(GatewayContext& gateway, std::shared_ptr<const Generation> generation,
                  const core::ListenerConfig& listener, asio::ip::tcp::socket socket, HandshakeLimiter::Slot slot);

private:
    asio::awaitable<void> handshake() override;
    asio::awaitable<void> flush_client() override;
    asio::awaitable<bool> open_relay() override;
    void relay_ended(const std::string& reason) override;
    void end_session(session::EndReason reason, const std::string& detail) override;
    void add_close_fields(nlohmann::json& fields) const override;

    vnc::DownstreamOffer offer() const;
    asio::awaitable<void> start_tls();
    void route();
    asio::awaitable<void> authenticate(vnc::DownstreamEvent event);
    void check_password(const vnc::CredentialsReceived& credentials);
    bool sasl_step(const vnc::DownstreamEvent& event);
    void redeem_ticket(const vnc::VncResponseReceived& response);
    void identify_by_certificate();
    void authenticated(core::Identity who);
    void authentication_failed(const std::string& why, const std::string& user, const std::string& client_text);
    std::string failed_mechanism_label() const;
    asio::awaitable<void> connect_upstream_display();
    asio::awaitable<void> start_data_phase();

    asio::awaitable<vnc::DownstreamEvent> next_client_event();
    asio::awaitable<vnc::UpstreamEvent> next_upstream_event();
    asio::awaitable<void> flush_upstream();
    [[noreturn]] void deny(const std::string& reason);
    void release_handshake_state();

    const vnc::VncChallenge challenge_;
    // What only the handshake needs, in one allocation released when the relay starts.
    struct HandshakeState {
        std::optional<vnc::DownstreamHandshake> client_machine;
        std::optional<vnc::UpstreamHandshake> upstream_machine;
        std::optional<vnc::ServerInit> server_init;
        std::unique_ptr<auth::SaslServerSession> sasl;
    };
    std::unique_ptr<HandshakeState> handshake_ = std::make_unique<HandshakeState>();
    TlsStream* tls_ = nullptr;  // the client stream once VeNCrypt switched to TLS
    std::string vm_name_;                  // as routed, before it is known to exist
    std::string method_;                   // the VeNCrypt subtype the client chose, for the audit log
    std::string sasl_mechanism_;
    std::string certificate_subject_;      // the client's verified certificate, if it sent one
    std::optional<std::uint64_t> ticket_id_;
    std::unique_ptr<StreamTransform> client_filter_;
};

}  // namespace vmgate::net
