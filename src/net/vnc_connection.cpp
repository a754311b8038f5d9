#include "net/vnc_connection.hpp"

#include "auth/cert_identity.hpp"
#include "net/socket_stream.hpp"
#include "net/upstream.hpp"
#include "vnc/client_message_filter.hpp"
#include "vnc/vnc_auth.hpp"

#include <openssl/rand.h>

#include <array>
#include <stdexcept>

namespace vmgate::net {

namespace {

constexpr std::size_t handshake_read_size = 4096;
const std::string vnc_channel = "vnc";  // the session's one channel, as policy and sessions name it

// Fresh per connection: a challenge seen once tells nothing about the next (§2).
vnc::VncChallenge random_challenge() {
    vnc::VncChallenge challenge{};
    if (RAND_bytes(challenge.data(), static_cast<int>(challenge.size())) != 1)
        throw std::runtime_error("OpenSSL RAND_bytes failed");
    return challenge;
}

// The VeNCrypt subtype each listener auth method is offered as; all of them run inside
// certificate TLS (X509*), never anonymous TLS or none (rfb-protocol.md §8).
vnc::VencryptSubtype subtype_for(core::AuthMethod method) {
    switch (method) {
    case core::AuthMethod::password: return vnc::VencryptSubtype::x509_plain;
    case core::AuthMethod::sasl: return vnc::VencryptSubtype::x509_sasl;
    case core::AuthMethod::ticket: return vnc::VencryptSubtype::x509_vnc;
    case core::AuthMethod::certificate: return vnc::VencryptSubtype::x509_none;
    }
    throw std::logic_error("unknown auth method");
}

// The client's messages toward QEMU, framed whole: input dropped for view-only sessions, and
// counted so that idle timeouts see a person acting, not the viewer's update requests.
class ClientMessageTransform final : public StreamTransform {
public:
    ClientMessageTransform(bool view_only, session::Traffic& traffic)
        : filter_({.drop_input = view_only}), traffic_(traffic) {}

    void transform(std::span<const std::uint8_t> in, std::vector<std::uint8_t>& out) override {
        filter_.feed(in, out);
        if (filter_.failed()) throw std::runtime_error(filter_.error());
        if (filter_.take_input_seen()) traffic_.add_input();
    }

private:
    vnc::ClientMessageFilter filter_;
    session::Traffic& traffic_;
};

}  // namespace

VncConnection::VncConnection(GatewayContext& gateway, std::shared_ptr<const Generation> generation,
                             const core::ListenerConfig& listener, asio::ip::tcp::socket socket,
                             HandshakeLimiter::Slot slot)
    : Connection(gateway, std::move(generation), listener, socket, std::move(slot)),
      challenge_(random_challenge()) {
    std::error_code ignored;
    socket.set_option(asio::ip::tcp::no_delay(true), ignored);
    // VeNCrypt starts in clear on the same socket; start_tls() moves it under TLS.
    client_ = std::make_unique<SocketStream>(asio::generic::stream_protocol::socket(std::move(socket)));
    handshake_->client_machine.emplace(offer());
}

vnc::DownstreamOffer VncConnection::offer() const {
    vnc::DownstreamOffer offer{{vnc::SecurityType::vencrypt}, {}, challenge_};
    for (core::AuthMethod method : listener_.auth) offer.vencrypt_subtypes.push_back(subtype_for(method));
    return offer;
}

// ---- handshake -------------------------------------------------------------------------------

asio::awaitable<void> VncConnection::handshake() {
    // The greeting goes out at once: gtk-vnc talks first if it waits 2 s (§9 item 6).
    auto event = co_await next_client_event();
    if (!std::holds_alternative<vnc::StartTls>(event))  // every subtype offered runs under TLS
        throw std::logic_error("VeNCrypt chose a subtype without TLS");
    co_await start_tls();
    route();
    co_await authenticate(co_await next_client_event());
    if (!vm_) deny(why_no_vm(vm_name_, "VNC"));
    if (auto refusal = authorize(vnc_channel)) deny(*refusal);
    co_await connect_upstream_display();
    if (auto refusal = claim_seat(vnc_channel, ticket_id_)) deny(*refusal);
    handshake_->client_machine->accept();
    co_await start_data_phase();
}

// After the ack the client's next bytes are its TLS ClientHello: the socket goes to OpenSSL.
asio::awaitable<void> VncConnection::start_tls() {
    co_await flush_client();  // ends with the VeNCrypt ack
    // A client waits for the ack before it starts TLS; bytes already here were sent before it.
    if (!handshake_->client_machine->take_excess().empty())
        throw Refusal{"protocol error: TLS bytes before the VeNCrypt ack"};
    auto& plain = static_cast<SocketStream&>(*client_).socket();
    asio::ip::tcp::socket socket(executor_);
    socket.assign(peer_.protocol(), plain.release());
    const core::ClientCertMode ask = generation_->config.tls.client_cert;
    auto tls = std::make_unique<TlsStream>(std::move(socket), *generation_->tls, ask);
    tls_ = tls.get();
    client_ = std::move(tls);
    co_await tls_->handshake();
    server_name_ = tls_->server_name();
    certificate_subject_ = auth::certificate_subject_text(tls_->peer_certificate());
    handshake_->client_machine->tls_established();
}

// The VM is chosen now but refused only after authentication: a client that has not proved who
// it is learns nothing about which VMs exist.
void VncConnection::route() {
    vm_name_ = listener_.route == core::Route::fixed ? listener_.vm
                                                     : vm_from_server_name(server_name_, listener_.sni_suffix);
    const core::VmConfig* vm = find_vm(vm_name_);
    if (vm && vm->vnc) vm_ = vm;
    nlohmann::json fields = {{"vm", vm_name_}, {"channel", vnc_channel}, {"server_name", server_name_}};
    if (!certificate_subject_.empty()) fields["client_certificate"] = certificate_subject_;
    audit("link", std::move(fields));
}

asio::awaitable<void> VncConnection::authenticate(vnc::DownstreamEvent event) {
    if (auto* credentials = std::get_if<vnc::CredentialsReceived>(&event)) {
        check_password(*credentials);
    } else if (auto* response = std::get_if<vnc::VncResponseReceived>(&event)) {
        redeem_ticket(*response);
    } else if (std::holds_alternative<vnc::NoneChosen>(event)) {
        identify_by_certificate();
    } else {
        while (!sasl_step(event)) event = co_await next_client_event();
    }
}

void VncConnection::check_password(const vnc::CredentialsReceived& credentials) {
    method_ = "X509Plain";
    handshake_->sasl = std::make_unique<auth::SaslServerSession>(
        generation_->sasl, generation_->config.sasl.service_vnc, cyrus_address(local_), cyrus_address(peer_),
        tls_->cipher_bits());
    const auto result = handshake_->sasl->check_password(credentials.username, credentials.password, method_);
    if (result.status != auth::StepResult::Status::ok)
        authentication_failed(result.detail, handshake_->sasl->claimed_user(), result.error);
    authenticated(handshake_->sasl->identity());
}

// One SASL event; true once the exchange succeeded. SASL framing as QEMU speaks it (§4.2).
bool VncConnection::sasl_step(const vnc::DownstreamEvent& event) {
    using Status = auth::StepResult::Status;
    if (std::holds_alternative<vnc::SaslMechlistNeeded>(event)) {
        method_ = "X509SASL";
        handshake_->sasl = std::make_unique<auth::SaslServerSession>(
            generation_->sasl, generation_->config.sasl.service_vnc, cyrus_address(local_), cyrus_address(peer_),
            tls_->cipher_bits());
        const std::string mechanisms = handshake_->sasl->mechanisms();
        if (mechanisms.empty()) throw Refusal{"SASL offers no mechanism (check [sasl] mech_list)"};
        handshake_->client_machine->sasl_offer(mechanisms);
        return false;
    }
    auth::StepResult result;
    if (const auto* start = std::get_if<vnc::SaslStart>(&event)) {
        sasl_mechanism_ = start->mechanism;
        result = handshake_->sasl->start(start->mechanism, as_span(start->client_data));
    } else {
        result = handshake_->sasl->step(as_span(std::get<vnc::SaslStep>(event).client_data));
    }
    if (result.status == Status::more) {
        handshake_->client_machine->sasl_continue(std::move(result.server_out));
        return false;
    }
    if (result.status == Status::failed) {
        handshake_->client_machine->sasl_complete(std::nullopt);  // then the failure reason (§4.2)
        authentication_failed(result.detail, handshake_->sasl->claimed_user(), result.error);
    }
    handshake_->client_machine->sasl_complete(std::move(result.server_out));
    authenticated(handshake_->sasl->identity());
    return true;
}

// VNC auth proves the ticket without sending it: the store tries its VNC tickets against the
// client's DES response.
void VncConnection::redeem_ticket(const vnc::VncResponseReceived& response) {
    method_ = "X509Vnc";
    auto outcome = gateway_.tickets.redeem_vnc(vm_name_, std::chrono::steady_clock::now(), [&](std::string_view secret) {
        return vnc::vnc_auth_response_matches(secret, challenge_, response.response);
    });
    if (auto* reason = std::get_if<std::string>(&outcome))
        authentication_failed(*reason, "", "ticket refused: " + *reason);
    auto& redeemed = std::get<auth::TicketStore::Redeemed>(outcome);
    ticket_id_ = redeemed.ticket_id;
    authenticated(redeemed.who);
}

void VncConnection::identify_by_certificate() {
    method_ = "X509None";
    X509* certificate = tls_->peer_certificate();
    if (certificate == nullptr)
        authentication_failed("no client certificate", "", "this login needs a client certificate");
    auto outcome = auth::identity_from_certificate(certificate, generation_->config.tls.client_identity,
                                                   generation_->default_realm);
    if (auto* reason = std::get_if<std::string>(&outcome))
        authentication_failed(*reason + " (" + certificate_subject_ + ")", "",
                              "the client certificate names no user: " + *reason);
    authenticated(std::get<core::Identity>(outcome));
}

void VncConnection::authenticated(core::Identity who) {
    identity_ = std::move(who);
    audit_authenticated(vnc_channel);
}

// `why` goes to the audit log only; the client gets `client_text`.
void VncConnection::authentication_failed(const std::string& why, const std::string& user,
                                          const std::string& client_text) {
    audit("auth", {{"result", "failure"}, {"vm", vm_name_}, {"channel", vnc_channel},
                   {"mechanism", sasl_mechanism_.empty() ? method_ : sasl_mechanism_}, {"user", user},
                   {"reason", client_text}, {"detail", why}});
    count_auth(failed_mechanism_label(), AuthResult::failed);
    handshake_->client_machine->deny(client_text);
    throw Refusal{"authentication failed: " + why};
}

// The mechanism label a success of the same method would get from its identity.
std::string VncConnection::failed_mechanism_label() const {
    if (method_ == "X509Vnc") return "ticket";
    if (method_ == "X509None") return std::string(auth::certificate_mechanism);
    if (!sasl_mechanism_.empty()) return mechanism_label(sasl_mechanism_, handshake_->sasl->mechanisms());
    return method_;  // X509Plain, or nothing chosen yet
}

// QEMU's own handshake runs to ServerInit before the client hears SecurityResult, so that a VM
// that cannot be reached is a refusal with a reason, not a dropped connection.
asio::awaitable<void> VncConnection::connect_upstream_display() {
    std::optional<std::string> password;
    try {
        upstream_ = co_await connect_upstream(executor_, *vm_->vnc, core::Protocol::vnc,
                                              {gateway_.qmp_upstreams, gateway_.libvirt_upstreams});
        if (std::string p = read_upstream_password(*vm_->vnc); !p.empty()) password = std::move(p);
    } catch (const std::exception& e) {
        count_upstream_error();
        deny("the display of " + vm_->name + " cannot be reached: " + e.what());
    }
    handshake_->upstream_machine.emplace(std::move(password));
    auto event = co_await next_upstream_event();
    if (auto* failed = std::get_if<vnc::Failed>(&event))
        deny("the display of " + vm_->name + " refused the gateway: " + failed->detail);
    handshake_->server_init = std::move(std::get<vnc::ServerInitReceived>(event).server_init);
}

// After SecurityResult OK: the client's ClientInit, then QEMU's ServerInit unchanged (§9 item 8).
asio::awaitable<void> VncConnection::start_data_phase() {
    auto event = co_await next_client_event();
    if (!std::holds_alternative<vnc::ClientInitReceived>(event))
        throw std::logic_error("VNC handshake ended without ClientInit");
    co_await client_->write_all(handshake_->server_init->bytes);
    traffic_->add_to_client(handshake_->server_init->bytes.size());
}

// ---- data phase ------------------------------------------------------------------------------

asio::awaitable<bool> VncConnection::open_relay() {
    audit("channel_open", {{"vm", vm_->name}, {"channel", vnc_channel}, {"session", session_->id()},
                           {"user", identity_->user}, {"realm", identity_->realm}, {"view_only", decision_.view_only},
                           {"desktop_name", handshake_->server_init->name}});
    client_filter_ = std::make_unique<ClientMessageTransform>(decision_.view_only, *traffic_);
    relay_ = std::make_unique<Relay>(executor_, *client_, *upstream_, *traffic_,
                                     RelayTransforms{nullptr, client_filter_.get()}, relay_counters());
    try {
        // Bytes each side sent right behind the handshake belong to the data phase, in order.
        auto early_upstream = handshake_->upstream_machine->take_excess();
        if (!early_upstream.empty()) {
            co_await client_->write_all(early_upstream);
            traffic_->add_to_client(early_upstream.size());
        }
        auto early_client = handshake_->client_machine->take_excess();
        if (!early_client.empty()) {
            traffic_->add_from_client(early_client.size());
            std::vector<std::uint8_t> out;
            client_filter_->transform(early_client, out);
            if (!out.empty()) co_await upstream_->write_all(out);
        }
    } catch (const std::exception& e) {
        relay_->stop(std::string("relay failed: ") + e.what());
    }
    release_handshake_state();
    co_return true;
}

void VncConnection::relay_ended(const std::string& reason) {
    // vmgate ends sessions through posted calls; a client that reacted first still ended for that.
    if (session_->ended()) close_reason_ = session_->end_text();
    if (close_reason_.empty()) close_reason_ = reason;
    end_session(session::EndReason::client_closed, "VNC connection ended: " + close_reason_);
}

// A VNC session is this one connection.
void VncConnection::end_session(session::EndReason reason, const std::string& detail) {
    if (!session_) return;
    gateway_.sessions.remove(*session_);
    session_->end(reason, detail);
}

void VncConnection::add_close_fields(nlohmann::json& fields) const {
    fields["channel"] = vnc_channel;
    if (!method_.empty()) fields["security"] = method_;
}

// ---- plumbing --------------------------------------------------------------------------------

[[noreturn]] void VncConnection::deny(const std::string& reason) {
    handshake_->client_machine->deny(reason);
    throw Refusal{reason};
}

asio::awaitable<vnc::DownstreamEvent> VncConnection::next_client_event() {
    std::array<std::uint8_t, handshake_read_size> buffer;
    for (;;) {
        co_await flush_client();
        if (auto event = handshake_->client_machine->next_event()) {
            // The machine has queued what the client can still be told; the flush sends it.
            if (auto* failed = std::get_if<vnc::Failed>(&*event)) throw Refusal{"protocol error: " + failed->detail};
            co_return std::move(*event);
        }
        if (handshake_->client_machine->closed()) throw Refusal{"handshake closed"};
        const std::size_t n = co_await client_->read_some(buffer);
        if (n == 0) throw Refusal{"client closed the connection during the handshake"};
        traffic_->add_from_client(n);
        handshake_->client_machine->feed(std::span(buffer.data(), n));
    }
}

asio::awaitable<vnc::UpstreamEvent> VncConnection::next_upstream_event() {
    std::array<std::uint8_t, handshake_read_size> buffer;
    for (;;) {
        co_await flush_upstream();
        if (auto event = handshake_->upstream_machine->next_event()) co_return std::move(*event);
        const std::size_t n = co_await upstream_->read_some(buffer);
        if (n == 0) deny("the display of " + vm_->name + " closed the connection during its handshake");
        handshake_->upstream_machine->feed(std::span(buffer.data(), n));
    }
}

asio::awaitable<void> VncConnection::flush_client() {
    auto out = handshake_->client_machine->take_output();
    if (out.empty()) co_return;
    co_await client_->write_all(out);
    traffic_->add_to_client(out.size());
}

asio::awaitable<void> VncConnection::flush_upstream() {
    auto out = handshake_->upstream_machine->take_output();
    if (!out.empty()) co_await upstream_->write_all(out);
}

// An idle session should cost little: the handshake machines, Cyrus and ServerInit go.
void VncConnection::release_handshake_state() {
    handshake_.reset();
    decision_ = {};
}

}  // namespace vmgate::net
