#include "net/spice_connection.hpp"

#include "net/socket_stream.hpp"
#include "net/upstream.hpp"
#include "spice/main_channel_filter.hpp"

#include <asio/co_spawn.hpp>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>

#include <array>

namespace vmgate::net {

namespace {

constexpr std::size_t handshake_read_size = 4096;

// What the admin most likely has to fix when QEMU refuses vmgate's own login.
std::string login_refusal_hint(const core::UpstreamConfig& upstream, spice::LinkError code) {
    // add_client skipauth skips QEMU's password check, but a QEMU with sasl=on still wants SASL (§10).
    if (upstream.kind == core::UpstreamConfig::Kind::qmp) return " (a qmp: upstream needs QEMU's -spice without sasl=on)";
    if (code == spice::LinkError::permission_denied) return " (check the VM's password_file)";
    return "";
}

// The main channel's upstream -> client stream, watched for the session id and stripped of
// migration messages (they carry the hypervisor's address).
class MainChannelTransform final : public StreamTransform {
public:
    MainChannelTransform(bool mini_header, std::bitset<256> hidden_channels,
                         std::function<void(std::uint32_t)> on_session_id, std::function<void(std::uint16_t)> on_dropped)
        : filter_(mini_header, hidden_channels), on_session_id_(std::move(on_session_id)), on_dropped_(std::move(on_dropped)) {}

    void transform(std::span<const std::uint8_t> in, std::vector<std::uint8_t>& out) override {
        filter_.feed(in, out);
        if (filter_.failed()) throw std::runtime_error("malformed main channel message from QEMU");
        if (!reported_ && filter_.session_id()) {
            reported_ = true;
            on_session_id_(*filter_.session_id());
        }
        for (std::uint16_t type : filter_.take_dropped()) on_dropped_(type);
    }

private:
    spice::MainChannelFilter filter_;
    std::function<void(std::uint32_t)> on_session_id_;
    std::function<void(std::uint16_t)> on_dropped_;
    bool reported_ = false;
};

}  // namespace

SpiceConnection::SpiceConnection(GatewayContext& gateway, std::shared_ptr<const Generation> generation,
                                 const core::ListenerConfig& listener, asio::ip::tcp::socket socket,
                                 HandshakeLimiter::Slot slot)
    : Connection(gateway, std::move(generation), listener, socket, std::move(slot)) {
    std::error_code ignored;
    socket.set_option(asio::ip::tcp::no_delay(true), ignored);
    // A CONNECT tunnel starts with plain HTTP; TLS, if the client speaks it, begins after the 200.
    client_ = std::make_unique<SocketStream>(asio::generic::stream_protocol::socket(std::move(socket)));
    if (listener_.tls && listener_.route != core::Route::connect) start_tls();
}

void SpiceConnection::start_tls() {
    auto& plain = static_cast<SocketStream&>(*client_);
    auto tls = std::make_unique<TlsStream>(std::move(plain.socket()), *generation_->tls);
    tls_ = tls.get();
    client_ = std::move(tls);
}

// ---- HTTP CONNECT (route = "connect") --------------------------------------------------------

// The client's proxy request names the VM; the VM is checked before the 200, so a mistyped
// name fails as an HTTP error the client reports, not as a broken TLS session.
asio::awaitable<void> SpiceConnection::open_tunnel() {
    const auto request = co_await read_connect_request();
    std::optional<http::Rejection> refusal;
    if (const auto* rejection = std::get_if<http::Rejection>(&request)) refusal = *rejection;
    else refusal = route_tunnel(std::get<http::ConnectTarget>(request));
    const std::string reply = refusal ? http::error_reply(*refusal) : http::tunnel_established();
    co_await write_to_client(reply);
    if (refusal) refuse_tunnel(*refusal);
    const bool carries_tls = co_await tunnel_carries_tls();
    if (carries_tls) start_tls();
}

asio::awaitable<http::ConnectResult> SpiceConnection::read_connect_request() {
    http::ConnectRequestReader request;
    std::array<std::uint8_t, 1024> buffer;
    while (!request.result()) {
        const std::size_t n = co_await client_->read_some(buffer);
        if (n == 0) throw Refusal{"client closed the connection before its CONNECT request was complete"};
        traffic_->add_from_client(n);
        request.feed(std::span(buffer.data(), n));
    }
    co_return *request.result();
}

// Picks the VM the CONNECT target names; an unknown one is the proxy's 404.
std::optional<http::Rejection> SpiceConnection::route_tunnel(const http::ConnectTarget& target) {
    connect_host_ = target.host;
    const std::string vm_name = routed_vm_name();
    vm_ = find_vm(vm_name);
    audit("connect", {{"host", target.host}, {"port", target.port}, {"vm", vm_name}});
    if (vm_ && vm_->spice) return std::nullopt;
    return http::Rejection{http::Status::not_found, why_no_vm(vm_name, "SPICE")};
}

void SpiceConnection::refuse_tunnel(const http::Rejection& rejection) {
    http_refusal_ = rejection.status;
    throw Refusal{"HTTP " + std::to_string(static_cast<unsigned>(rejection.status)) + ": " + rejection.detail};
}

asio::awaitable<void> SpiceConnection::write_to_client(std::string_view text) {
    const std::span bytes(reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
    co_await client_->write_all(bytes);
    traffic_->add_to_client(text.size());
}

// spice-gtk opens a TLS port's channel with TLS inside the tunnel and a plain port's with a bare
// SPICE link, which then gets NEED_SECURED like any plain port. A TLS record starts with its
// content type, 22 (handshake); a SPICE link starts with "REDQ".
asio::awaitable<bool> SpiceConnection::tunnel_carries_tls() {
    constexpr std::uint8_t tls_handshake_record = 22;
    auto& plain = static_cast<SocketStream&>(*client_);
    std::uint8_t first = 0;
    co_await plain.socket().async_receive(asio::buffer(&first, 1), asio::socket_base::message_peek,
                                          asio::use_awaitable);
    co_return first == tls_handshake_record;
}

std::string SpiceConnection::routed_vm_name() const {
    switch (listener_.route) {
        case core::Route::fixed: return listener_.vm;
        case core::Route::sni: return vm_from_server_name(server_name_, listener_.sni_suffix);
        case core::Route::connect: return vm_from_connect_host(connect_host_, listener_.connect_suffix);
    }
    return "";
}

// ---- handshake -------------------------------------------------------------------------------

asio::awaitable<void> SpiceConnection::handshake() {
    if (listener_.route == core::Route::connect) co_await open_tunnel();
    if (tls_) {
        co_await tls_->handshake();
        server_name_ = tls_->server_name();
    }
    link_ = std::get<spice::LinkReceived>(co_await next_client_event()).link;
    channel_ = std::string(spice::channel_name(link_.channel_type));

    if (!tls_)  // a plain port never carries credentials or data (design.md invariant 1)
        refuse(spice::LinkError::need_secured, listener_.tls ? "plain SPICE link in the CONNECT tunnel: told the client to use TLS"
                                                            : "plain listener: told the client to use TLS");
    const std::string vm_name = routed_vm_name();
    vm_ = find_vm(vm_name);
    nlohmann::json link_fields = {{"vm", vm_name}, {"channel", channel_}, {"channel_id", link_.channel_id},
                                  {"connection_id", link_.connection_id}, {"server_name", server_name_}};
    if (!connect_host_.empty()) link_fields["connect_host"] = connect_host_;
    audit("link", std::move(link_fields));
    if (!vm_ || !vm_->spice) refuse(spice::LinkError::error, why_no_vm(vm_name, "SPICE"));
    if (is_main() && link_.connection_id != 0)  // would put QEMU in migration-target mode (§6.2)
        refuse(spice::LinkError::bad_connection_id, "main channel with a non-zero connection id");

    co_await link_upstream();
    co_await authenticate();
    if (auto refusal = authorize(channel_)) refuse(spice::LinkError::permission_denied, "denied: " + *refusal);
    if (is_main()) {
        if (auto refusal = claim_seat(channel_, ticket_id_)) refuse(spice::LinkError::permission_denied, *refusal);
    } else {
        attach_to_session();
    }
    co_await login_upstream();
    handshake_->client_link->finish(spice::LinkError::ok);
    co_await flush_client();
}

asio::awaitable<void> SpiceConnection::link_upstream() {
    try {
        upstream_ = co_await connect_upstream(executor_, *vm_->spice, core::Protocol::spice,
                                              {gateway_.qmp_upstreams, gateway_.libvirt_upstreams});
    } catch (const std::exception& e) {
        count_upstream_error();
        refuse(spice::LinkError::error, std::string("cannot reach the VM's display: ") + e.what());
    }
    spice::LinkMess forwarded = link_;
    // The gateway logs into QEMU with a ticket; SASL upstream would zero QEMU's key (§10).
    forwarded.common_caps.clear(spice::CommonCap::auth_sasl);
    forwarded.common_caps.set(spice::CommonCap::auth_selection);
    handshake_->upstream_link.emplace(forwarded);
    co_await flush_upstream();
    auto event = co_await next_upstream_event();
    if (auto* failed = std::get_if<spice::Failed>(&event))
        refuse(spice::LinkError::error, "QEMU sent a malformed link reply: " + failed->detail);
    const auto& reply = std::get<spice::ReplyReceived>(event).reply;
    if (reply.error != spice::LinkError::ok)
        refuse(reply.error == spice::LinkError::channel_not_available ? reply.error : spice::LinkError::error,
               "QEMU refused the link: " + std::string(spice::to_string(reply.error)));
    if (link_.common_caps.has(spice::CommonCap::mini_header) && !reply.common_caps.has(spice::CommonCap::mini_header))
        refuse(spice::LinkError::error, "QEMU does not speak the mini header the client asked for");
    handshake_->upstream_reply = reply;
    const spice::LinkReply client_reply = co_await reply_for_client(reply);
    handshake_->client_link->accept_link(client_reply, handshake_->sasl ? handshake_->sasl->mechanisms() : "");
    co_await flush_client();
}

// Upstream's channel caps unchanged (the client and QEMU must agree on them, §3.3); the common
// caps are the gateway's: its own auth methods, and the mini header exactly when both legs use it.
asio::awaitable<spice::LinkReply> SpiceConnection::reply_for_client(const spice::LinkReply& upstream_reply) {
    spice::LinkReply reply;
    reply.channel_caps = upstream_reply.channel_caps;
    reply.common_caps.set(spice::CommonCap::auth_selection);
    if (link_.common_caps.has(spice::CommonCap::mini_header)) reply.common_caps.set(spice::CommonCap::mini_header);
    const bool sasl = offer_sasl();
    if (sasl) reply.common_caps.set(spice::CommonCap::auth_sasl);
    // A client that can do SASL always picks it when offered (§3.2): a key made for it would
    // never be used, and making one costs milliseconds. spice-server skips it the same way.
    const bool client_picks_sasl = sasl && link_.common_caps.has(spice::CommonCap::auth_selection) &&
                                   link_.common_caps.has(spice::CommonCap::auth_sasl);
    if (listener_.offers(core::AuthMethod::ticket) && generation_->ticket_keys && !client_picks_sasl) {
        co_await acquire_ticket_key();
        reply.pub_key = handshake_->ticket_key->public_spki();
        reply.common_caps.set(spice::CommonCap::auth_spice);
    }
    co_return reply;
}

bool SpiceConnection::offer_sasl() {
    if (!listener_.offers(core::AuthMethod::sasl) || !generation_->sasl || !tls_) return false;
    handshake_->sasl = std::make_unique<auth::SaslServerSession>(
        generation_->sasl, generation_->config.sasl.service_spice, cyrus_address(local_), cyrus_address(peer_),
        tls_->cipher_bits());
    if (!handshake_->sasl->mechanisms().empty()) return true;
    handshake_->sasl.reset();
    return false;
}

// A fresh RSA-1024 key per connection, as spice-server makes one. From the pool when it has one;
// otherwise made on the key thread, so this worker's other connections are not held up.
asio::awaitable<void> SpiceConnection::acquire_ticket_key() {
    if (auto key = generation_->ticket_keys->try_take()) {
        handshake_->ticket_key.emplace(std::move(*key));
        co_return;
    }
    handshake_->ticket_key = co_await asio::co_spawn(
        gateway_.key_generation,
        []() -> asio::awaitable<std::optional<auth::TicketKey>> { co_return auth::TicketKey::generate(); },
        asio::use_awaitable);
}

asio::awaitable<void> SpiceConnection::authenticate() {
    for (;;) {
        auto event = co_await next_client_event();
        if (auto* ticket = std::get_if<spice::TicketReceived>(&event)) {
            co_await authenticate_ticket(*ticket);
            co_return;
        }
        auth::StepResult result;
        if (auto* start = std::get_if<spice::SaslStart>(&event)) {
            sasl_mechanism_ = start->mechanism;
            result = handshake_->sasl->start(start->mechanism, as_span(start->client_data));
        } else {
            result = handshake_->sasl->step(as_span(std::get<spice::SaslStep>(event).client_data));
        }
        if (handle_sasl(result)) co_return;
        co_await flush_client();
    }
}

// True when SASL has finished successfully.
bool SpiceConnection::handle_sasl(const auth::StepResult& result) {
    using Status = auth::StepResult::Status;
    if (result.status == Status::more) {
        handshake_->client_link->sasl_continue(result.server_out);
        return false;
    }
    if (result.status == Status::failed) {
        audit("auth", {{"result", "failure"}, {"vm", vm_->name}, {"channel", channel_},
                       {"mechanism", sasl_mechanism_}, {"user", handshake_->sasl->claimed_user()},
                       {"reason", result.error}, {"detail", result.detail}});
        count_auth(mechanism_label(sasl_mechanism_, handshake_->sasl->mechanisms()), AuthResult::failed);
        handshake_->client_link->sasl_failure();  // spice-server's way: close, and the client asks again (§5.2)
        throw Refusal{"authentication failed: " + result.detail};
    }
    handshake_->client_link->sasl_success(result.server_out);
    identity_ = handshake_->sasl->identity();
    audit_authenticated(channel_);
    return true;
}

asio::awaitable<void> SpiceConnection::authenticate_ticket(const spice::TicketReceived& ticket) {
    const auto secret = handshake_->ticket_key->decrypt(ticket.ciphertext);
    handshake_->ticket_key.reset();  // one key, one connection
    std::variant<auth::TicketStore::Redeemed, std::string> outcome = std::string("ticket did not decrypt");
    if (secret) {
        const auto now = std::chrono::steady_clock::now();
        outcome = is_main() ? gateway_.tickets.redeem_for_main(*secret, vm_->name, now)
                          : gateway_.tickets.check_for_channel(*secret, vm_->name, link_.connection_id);
    }
    if (auto* reason = std::get_if<std::string>(&outcome)) {
        audit("auth", {{"result", "failure"}, {"vm", vm_->name}, {"channel", channel_}, {"mechanism", "ticket"},
                       {"reason", *reason}});
        count_auth("ticket", AuthResult::failed);
        refuse(spice::LinkError::permission_denied, "authentication failed: " + *reason);
    }
    auto& redeemed = std::get<auth::TicketStore::Redeemed>(outcome);
    identity_ = redeemed.who;
    ticket_id_ = redeemed.ticket_id;
    audit_authenticated(channel_);
    co_return;
}

// Channels this session may not open are taken out of CHANNELS_LIST: spice-gtk opens every
// channel listed, and a refused one shows up as an error in the client.
std::bitset<256> SpiceConnection::hidden_channels() const {
    std::bitset<256> hidden;
    for (unsigned type = 0; type < hidden.size(); ++type) {
        const auto name = spice::channel_name(static_cast<std::uint8_t>(type));
        if (name != "unknown" && name != "main" && !decide(std::string(name)).allowed) hidden.set(type);
    }
    return hidden;
}

// A secondary channel joins a live session of the same principal on the same VM, or nothing.
void SpiceConnection::attach_to_session() {
    session_ = gateway_.sessions.find(vm_->name, link_.connection_id);
    if (!session_)
        refuse(spice::LinkError::bad_connection_id,
               "no live session " + std::to_string(link_.connection_id) + " on " + vm_->name);
    if (!session_->who().same_principal(*identity_)) {
        const std::string owner = session_->who().to_string();
        session_.reset();
        refuse(spice::LinkError::bad_connection_id, "session " + std::to_string(link_.connection_id) +
                                                        " belongs to " + owner + ", not " + identity_->to_string());
    }
}

asio::awaitable<void> SpiceConnection::login_upstream() {
    std::string password;
    try {
        password = read_upstream_password(*vm_->spice);
    } catch (const std::exception& e) {
        refuse(spice::LinkError::error, e.what());
    }
    const auto ciphertext = auth::encrypt_ticket(handshake_->upstream_reply->pub_key, password);
    if (!ciphertext) refuse(spice::LinkError::error, "cannot encrypt the upstream ticket (QEMU key or password length)");
    handshake_->upstream_link->send_ticket(*ciphertext);
    co_await flush_upstream();
    auto event = co_await next_upstream_event();
    if (auto* failed = std::get_if<spice::Failed>(&event))
        refuse(spice::LinkError::error, "QEMU link failed: " + failed->detail);
    const auto code = std::get<spice::Result>(event).code;
    if (code != spice::LinkError::ok)  // the client's own credential was fine: not a password prompt
        refuse(code == spice::LinkError::permission_denied ? spice::LinkError::error : code,
               "QEMU refused the gateway's login: " + std::string(spice::to_string(code)) +
                   login_refusal_hint(*vm_->spice, code));
}

// ---- data phase ------------------------------------------------------------------------------

asio::awaitable<bool> SpiceConnection::open_relay() {
    if (is_main()) {
        main_filter_ = std::make_unique<MainChannelTransform>(
            link_.common_caps.has(spice::CommonCap::mini_header), hidden_channels(),
            [this](std::uint32_t id) { on_main_session_id(id); },
            [this](std::uint16_t type) {
                audit("migration_blocked", {{"vm", vm_->name}, {"message_type", type}});
            });
    } else {
        if (!session_->add_channel(channel_handle(channel_))) {
            close_reason_ = "session ended before the channel opened";
            co_return false;
        }
        audit_channel_open();
    }
    relay_ = std::make_unique<Relay>(executor_, *client_, *upstream_, *traffic_, RelayTransforms{main_filter_.get()},
                                     relay_counters());
    try {
        // Bytes each side sent right behind the handshake belong to the data phase.
        auto early_client = handshake_->client_link->take_excess();
        if (!early_client.empty()) co_await upstream_->write_all(early_client);  // counted when read
        auto early_upstream = handshake_->upstream_link->take_excess();
        if (!early_upstream.empty()) {
            std::vector<std::uint8_t> out;
            if (main_filter_) main_filter_->transform(early_upstream, out); else out = std::move(early_upstream);
            co_await client_->write_all(out);
            traffic_->add_to_client(out.size());
        }
    } catch (const std::exception& e) {
        relay_->stop(std::string("relay failed: ") + e.what());
    }
    release_handshake_state();
    co_return true;
}

void SpiceConnection::relay_ended(const std::string& reason) {
    // vmgate ends a session's channels through posted calls; a channel whose peer reacted to the
    // end first (spice-gtk drops its other channels when main goes) still ended for that reason.
    if (session_ && session_->ended()) close_reason_ = session_->end_text();
    if (close_reason_.empty()) close_reason_ = reason;
    if (is_main()) {
        end_session(session::EndReason::client_closed, "main channel ended: " + close_reason_);
    } else if (session_) {
        session_->remove_channel(id_);
    }
}

void SpiceConnection::on_main_session_id(std::uint32_t spice_session_id) {
    session_->set_spice_session_id(spice_session_id);
    if (ticket_id_) gateway_.tickets.bind_session(*ticket_id_, spice_session_id);
    audit_channel_open();
}

// Only the main channel ends its session; the other channels just leave it.
void SpiceConnection::end_session(session::EndReason reason, const std::string& detail) {
    if (!session_ || !is_main()) return;
    gateway_.sessions.remove(*session_);
    session_->end(reason, detail);
    const auto spice_session_id = session_->spice_session_id();
    if (session_->origin().ticket_id && spice_session_id) gateway_.tickets.session_ended(*spice_session_id);
}

// ---- plumbing --------------------------------------------------------------------------------

[[noreturn]] void SpiceConnection::refuse(spice::LinkError code, std::string reason) {
    link_error_ = code;
    spice::DownstreamLink& client_link = *handshake_->client_link;
    if (client_link.closed()) throw Refusal{std::move(reason)};
    // Before the reply the link error goes in a full-size reply; after it, in the final result.
    if (handshake_->upstream_reply || identity_) client_link.finish(code); else client_link.refuse_link(code);
    throw Refusal{std::move(reason)};
}

asio::awaitable<spice::DownstreamEvent> SpiceConnection::next_client_event() {
    std::array<std::uint8_t, handshake_read_size> buffer;
    for (;;) {
        co_await flush_client();
        if (auto event = handshake_->client_link->next_event()) {
            // The machine has queued the protocol's own error reply, sent by the flush above.
            if (auto* failed = std::get_if<spice::Failed>(&*event)) {
                link_error_ = failed->code;
                throw Refusal{"protocol error: " + failed->detail};
            }
            co_return std::move(*event);
        }
        if (handshake_->client_link->closed()) throw Refusal{"link closed"};
        const std::size_t n = co_await client_->read_some(buffer);
        if (n == 0) throw Refusal{"client closed the connection during the handshake"};
        traffic_->add_from_client(n);
        handshake_->client_link->feed(std::span(buffer.data(), n));
    }
}

asio::awaitable<spice::UpstreamEvent> SpiceConnection::next_upstream_event() {
    std::array<std::uint8_t, handshake_read_size> buffer;
    for (;;) {
        if (auto event = handshake_->upstream_link->next_event()) co_return std::move(*event);
        if (handshake_->upstream_link->closed()) refuse(spice::LinkError::error, "QEMU link closed");
        const std::size_t n = co_await upstream_->read_some(buffer);
        if (n == 0) refuse(spice::LinkError::error, "QEMU closed the connection during the link");
        handshake_->upstream_link->feed(std::span(buffer.data(), n));
    }
}

asio::awaitable<void> SpiceConnection::flush_client() {
    auto out = handshake_->client_link->take_output();
    if (out.empty()) co_return;
    co_await client_->write_all(out);
    traffic_->add_to_client(out.size());
}

asio::awaitable<void> SpiceConnection::flush_upstream() {
    auto out = handshake_->upstream_link->take_output();
    if (!out.empty()) co_await upstream_->write_all(out);
}

// An idle channel should cost little: what only the handshake needed (the Cyrus connection,
// the link machines and their buffers, the decision's texts) goes before the relay starts.
void SpiceConnection::release_handshake_state() {
    handshake_.reset();
    decision_ = {};  // its words live on in the audit log and the session's origin
}

bool SpiceConnection::is_main() const {
    return link_.channel_type == static_cast<std::uint8_t>(spice::ChannelType::main);
}

void SpiceConnection::audit_channel_open() {
    audit("channel_open", {{"vm", vm_->name}, {"channel", channel_}, {"session", session_->id()},
                           {"spice_session", session_->spice_session_id().value_or(0)},
                           {"user", identity_->user}, {"realm", identity_->realm}});
}

void SpiceConnection::add_close_fields(nlohmann::json& fields) const {
    fields["channel"] = channel_;
    if (link_error_) fields["link_error"] = spice::to_string(*link_error_);
    if (http_refusal_) fields["http_status"] = static_cast<unsigned>(*http_refusal_);
}

}  // namespace vmgate::net
