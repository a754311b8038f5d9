// One accepted SPICE connection (one channel): TLS, the client's link, the upstream link, client
// authentication, authorization, the upstream credential, then the relay (spice-protocol.md §11).
// The protocol decisions live in spice/ state machines; this class moves their bytes.
#pragma once

#include "auth/sasl_server.hpp"
#include "auth/ticket_key.hpp"
#include "core/config.hpp"
#include "core/identity.hpp"
#include "net/byte_stream.hpp"
#include "net/gateway_context.hpp"
#include "net/generation.hpp"
#include "net/handshake_limiter.hpp"
#include "net/relay.hpp"
#include "net/tls.hpp"
#include "session/registry.hpp"
#include "spice/downstream_link.hpp"
#include "spice/upstream_link.hpp"

#include <asio/any_io_executor.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>

#include <bitset>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

namespace vmgate::net {

class SpiceConnection : public std::enable_shared_from_this<SpiceConnection> {
public:
    // `slot`: this connection's place among the handshakes in progress, given up once the
    // relay starts or the handshake fails.
    // `listener` belongs to `generation`, which the connection keeps alive.
    SpiceConnection(GatewayContext& gateway, std::shared_ptr<const Generation> generation,
                    const core::ListenerConfig& listener, asio::ip::tcp::socket socket,
                    HandshakeLimiter::Slot slot);

    // Runs the connection to its end and writes its audit "close" record.
    asio::awaitable<void> run();
    // Ends the connection from any thread (session end, gateway shutdown).
    void close(const std::string& reason);

private:
    struct Refusal;  // ends the handshake: what the client is told and why, for the audit log

    asio::awaitable<void> handshake();
    std::string why_no_vm(const std::string& vm_name) const;
    asio::awaitable<void> link_upstream();
    asio::awaitable<spice::LinkReply> reply_for_client(const spice::LinkReply& upstream_reply);
    bool offer_sasl();
    asio::awaitable<void> acquire_ticket_key();
    asio::awaitable<void> authenticate();
    bool handle_sasl(const auth::StepResult& result);
    asio::awaitable<void> authenticate_ticket(const spice::TicketReceived& ticket);
    policy::Decision decide(const std::string& channel) const;
    void authorize();
    void claim_seat();
    void attach_to_session();
    std::bitset<256> hidden_channels() const;
    asio::awaitable<void> login_upstream();
    asio::awaitable<void> relay();

    asio::awaitable<spice::DownstreamEvent> next_client_event();
    asio::awaitable<spice::UpstreamEvent> next_upstream_event();
    asio::awaitable<void> flush_client();
    asio::awaitable<void> flush_upstream();
    [[noreturn]] void refuse(spice::LinkError code, std::string reason);
    void arm_handshake_deadline();
    void on_main_session_id(std::uint32_t spice_session_id);
    void end_session(session::EndReason reason, const std::string& detail);
    bool is_main() const;
    void close_streams();
    session::ChannelHandle channel_handle();
    void audit_authenticated();
    void audit_channel_open();
    void audit(std::string_view event, nlohmann::json fields);
    void audit_close();
    void release_handshake_state();

    GatewayContext& gateway_;
    const std::shared_ptr<const Generation> generation_;
    const core::ListenerConfig& listener_;
    const std::uint64_t id_;
    asio::any_io_executor executor_;
    const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
    asio::ip::tcp::endpoint peer_;
    asio::ip::tcp::endpoint local_;
    asio::steady_timer deadline_;
    bool deadline_passed_ = false;
    std::optional<HandshakeLimiter::Slot> handshake_slot_;

    TlsStream* tls_ = nullptr;  // the client stream when the listener uses TLS
    std::unique_ptr<ByteStream> client_;
    std::unique_ptr<ByteStream> upstream_;
    std::optional<spice::DownstreamLink> client_link_{std::in_place};  // released after the handshake
    std::optional<spice::UpstreamLink> upstream_link_;
    std::optional<spice::LinkReply> upstream_reply_;
    std::optional<auth::TicketKey> ticket_key_;
    std::unique_ptr<auth::SaslServerSession> sasl_;
    std::string sasl_mechanism_;

    // What the handshake learned.
    std::string server_name_;
    spice::LinkMess link_;
    std::string channel_;
    const core::VmConfig* vm_ = nullptr;
    std::optional<core::Identity> identity_;
    policy::Decision decision_;
    std::optional<std::uint64_t> ticket_id_;
    std::shared_ptr<session::Session> session_;

    std::unique_ptr<Relay> relay_;
    std::unique_ptr<DownstreamTransform> main_filter_;
    const std::shared_ptr<session::Traffic> traffic_ = std::make_shared<session::Traffic>();
    std::string close_reason_;
    std::optional<spice::LinkError> link_error_;
};

}  // namespace vmgate::net
