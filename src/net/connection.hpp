// What every accepted connection does whatever its protocol (a SPICE channel, a VNC session):
// the life cycle (handshake under a deadline, then the relay, then one audit "close" record),
// the steps after authentication that the protocols share (the policy decision, the VM's seat),
// and the plumbing (audit records, closing from any thread). The protocol classes supply the
// handshake, their way of refusing, and how their session ends.
#pragma once

#include "core/config.hpp"
#include "core/identity.hpp"
#include "net/byte_stream.hpp"
#include "net/gateway_context.hpp"
#include "net/generation.hpp"
#include "net/handshake_limiter.hpp"
#include "net/relay.hpp"
#include "session/registry.hpp"

#include <asio/any_io_executor.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace vmgate::net {

// "1.2.3.4:5" / "[::1]:5"
std::string endpoint_text(const asio::ip::tcp::endpoint& e);
// "1.2.3.4;5", the form Cyrus SASL wants addresses in.
std::string cyrus_address(const asio::ip::tcp::endpoint& e);
// The VM a TLS server name selects on a route = "sni" listener: with a suffix, exactly the one
// label before it ("vm1.vms.example" -> "vm1"; "x.vm1.vms.example" selects nothing); without,
// the first label. "" when the name selects no VM.
std::string vm_from_server_name(std::string name, const std::string& suffix);
// The VM an HTTP CONNECT host selects on a route = "connect" listener: the host (lowercased by
// the request reader) without the suffix, when it ends with it: "vm1" and "vm1.vms.example" both
// select vm1.
std::string vm_from_connect_host(const std::string& host, const std::string& suffix);
// SASL data as the auth code takes it: nullopt (no data) stays distinct from empty data.
std::optional<std::span<const std::uint8_t>> as_span(const std::optional<std::vector<std::uint8_t>>& data);

class Connection : public std::enable_shared_from_this<Connection> {
public:
    virtual ~Connection() = default;

    // Runs the handshake and starts the relay; returns then, or when the connection failed. The
    // relay's pending operations keep the connection alive from there.
    asio::awaitable<void> run();
    // Runs once the connection has ended and its audit "close" record is written, after or
    // during run() (not when run() throws, which only a broken invariant does). Set it first.
    void on_finished(std::function<void()> handler) { on_finished_ = std::move(handler); }
    // Ends the connection from any thread (session end, gateway shutdown).
    void close(const std::string& reason);

protected:
    // Thrown to end the handshake once the protocol's own refusal has been queued for the client.
    struct Refusal {
        std::string reason;
    };

    // `slot`: this connection's place among the handshakes in progress, given up once the relay
    // starts or the handshake fails. `listener` belongs to `generation`, which is kept alive.
    Connection(GatewayContext& gateway, std::shared_ptr<const Generation> generation,
               const core::ListenerConfig& listener, asio::ip::tcp::socket& socket,
               HandshakeLimiter::Slot slot);

    // Up to the start of the data phase; throws Refusal, or anything else for a broken handshake.
    virtual asio::awaitable<void> handshake() = 0;
    // Sends what the protocol machine queued for the client (a refusal, after handshake threw).
    virtual asio::awaitable<void> flush_client() = 0;
    // Sets up relay_ and sends what either side sent right behind the handshake. false: no relay
    // after all (close_reason_ says why).
    virtual asio::awaitable<bool> open_relay() = 0;
    // The relay ended with `reason`: the protocol's session bookkeeping.
    virtual void relay_ended(const std::string& reason) = 0;
    // The handshake failed: the session this connection would have started ends with it.
    virtual void end_session(session::EndReason reason, const std::string& detail) = 0;
    // Protocol fields of the "close" record.
    virtual void add_close_fields(nlohmann::json& fields) const = 0;

    const core::VmConfig* find_vm(const std::string& name) const;
    std::string why_no_vm(const std::string& vm_name, std::string_view protocol) const;
    policy::Decision decide(const std::string& channel) const;
    // Decides for the identity and writes the "decision" record; the refusal in words, if any.
    std::optional<std::string> authorize(const std::string& channel);
    // Takes the VM's seat for a new session; the refusal in words if the seat policy says no.
    std::optional<std::string> claim_seat(const std::string& channel, std::optional<std::uint64_t> ticket_id);
    session::ChannelHandle channel_handle(const std::string& channel);
    // Writes the "auth" ok record and counts it.
    void audit_authenticated(const std::string& channel);
    // `mechanism` must be bounded: a name the gateway chose or offered (see mechanism_label).
    void count_auth(std::string mechanism, AuthResult result);
    void count_upstream_error();
    // The relay's byte counters of this connection's VM.
    RelayCounters relay_counters();
    void audit(std::string_view event, nlohmann::json fields);
    void close_streams();

    GatewayContext& gateway_;
    const std::shared_ptr<const Generation> generation_;
    const core::ListenerConfig& listener_;
    const std::uint64_t id_;
    asio::any_io_executor executor_;
    asio::ip::tcp::endpoint peer_;
    asio::ip::tcp::endpoint local_;

    std::unique_ptr<ByteStream> client_;
    std::unique_ptr<ByteStream> upstream_;
    std::unique_ptr<Relay> relay_;
    const std::shared_ptr<session::Traffic> traffic_ = std::make_shared<session::Traffic>();

    // What the handshake learned.
    std::string server_name_;
    const core::VmConfig* vm_ = nullptr;
    std::optional<core::Identity> identity_;
    policy::Decision decision_;
    std::shared_ptr<session::Session> session_;
    std::string close_reason_;

private:
    void arm_handshake_deadline();
    void audit_close();
    void finish();

    const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
    asio::steady_timer deadline_;
    bool deadline_passed_ = false;
    std::optional<HandshakeLimiter::Slot> handshake_slot_;
    std::function<void()> on_finished_;
};

}  // namespace vmgate::net
