// One accepted SPICE connection (one channel): TLS, the client's link, the upstream link, client
// authentication, authorization, the upstream credential, then the relay (spice-protocol.md §11).
// The protocol decisions live in spice/ state machines; this class moves their bytes.
#pragma once

#include "auth/sasl_server.hpp"
#include "auth/ticket_key.hpp"
#include "http/connect_request.hpp"
#include "net/connection.hpp"
#include "net/tls.hpp"
#include "spice/downstream_link.hpp"
#include "spice/upstream_link.hpp"

#include <bitset>
#include <memory>
#include <optional>
#include <string>

namespace vmgate::net {

class SpiceConnection final : public Connection {
public:
    SpiceConnection(GatewayContext& gateway, std::shared_ptr<const Generation> generation,
                    const core::ListenerConfig& listener, asio::ip::tcp::socket socket,
                    HandshakeLimiter::Slot slot);

private:
    asio::awaitable<void> handshake() override;
    asio::awaitable<void> flush_client() override;
    asio::awaitable<bool> open_relay() override;
    void relay_ended(const std::string& reason) override;
    void end_session(session::EndReason reason, const std::string& detail) override;
    void add_close_fields(nlohmann::json& fields) const override;

    asio::awaitable<void> open_tunnel();
    // Sends the HTTP error reply, then throws Refusal.
    asio::awaitable<http::ConnectResult> read_connect_request();
    std::optional<http::Rejection> route_tunnel(const http::ConnectTarget& target);
    [[noreturn]] void refuse_tunnel(const http::Rejection& rejection);
    asio::awaitable<void> write_to_client(std::string_view text);
    asio::awaitable<bool> tunnel_carries_tls();
    void start_tls();
    std::string routed_vm_name() const;
    asio::awaitable<void> link_upstream();
    asio::awaitable<spice::LinkReply> reply_for_client(const spice::LinkReply& upstream_reply);
    bool offer_sasl();
    asio::awaitable<void> acquire_ticket_key();
    asio::awaitable<void> authenticate();
    bool handle_sasl(const auth::StepResult& result);
    asio::awaitable<void> authenticate_ticket(const spice::TicketReceived& ticket);
    void attach_to_session();
    std::bitset<256> hidden_channels() const;
    asio::awaitable<void> login_upstream();

    asio::awaitable<spice::DownstreamEvent> next_client_event();
    asio::awaitable<spice::UpstreamEvent> next_upstream_event();
    asio::awaitable<void> flush_upstream();
    [[noreturn]] void refuse(spice::LinkError code, std::string reason);
    void on_main_session_id(std::uint32_t spice_session_id);
    bool is_main() const;
    void audit_channel_open();
    void release_handshake_state();

    TlsStream* tls_ = nullptr;  // the client stream once it is TLS
    std::string connect_host_;  // route = "connect": the host of the client's CONNECT request
    std::optional<http::Status> http_refusal_;
    // What only the handshake needs, in one allocation released when the relay starts: an idle
    // channel does not carry it for hours (memory per channel, at thousands of channels).
    struct HandshakeState {
        std::optional<spice::DownstreamLink> client_link{std::in_place};
        std::optional<spice::UpstreamLink> upstream_link;
        std::optional<spice::LinkReply> upstream_reply;
        std::optional<auth::TicketKey> ticket_key;
        std::unique_ptr<auth::SaslServerSession> sasl;
    };
    std::unique_ptr<HandshakeState> handshake_ = std::make_unique<HandshakeState>();
    std::string sasl_mechanism_;

    spice::LinkMess link_;
    std::string channel_;
    std::optional<std::uint64_t> ticket_id_;

    std::unique_ptr<StreamTransform> main_filter_;
    std::optional<spice::LinkError> link_error_;
};

}  // namespace vmgate::net
