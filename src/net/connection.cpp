#include "net/connection.hpp"

#include <asio/post.hpp>

#include <algorithm>
#include <cctype>
#include <utility>

namespace vmgate::net {

namespace {

bool same_letter(char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
}

}  // namespace

std::string endpoint_text(const asio::ip::tcp::endpoint& e) {
    const auto a = e.address();
    return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(e.port());
}

std::string cyrus_address(const asio::ip::tcp::endpoint& e) {
    return e.address().to_string() + ";" + std::to_string(e.port());
}

std::string vm_from_server_name(std::string name, const std::string& suffix) {
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    if (suffix.empty()) return name.substr(0, name.find('.'));
    if (name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
        return "";
    name.resize(name.size() - suffix.size());
    return name.find('.') == std::string::npos ? name : "";
}

std::string vm_from_connect_host(const std::string& host, const std::string& suffix) {
    if (suffix.empty() || host.size() <= suffix.size()) return host;
    const bool suffixed = std::equal(suffix.rbegin(), suffix.rend(), host.rbegin(), same_letter);
    return suffixed ? host.substr(0, host.size() - suffix.size()) : host;
}

std::optional<std::span<const std::uint8_t>> as_span(const std::optional<std::vector<std::uint8_t>>& data) {
    if (!data) return std::nullopt;
    return std::span<const std::uint8_t>(*data);
}

Connection::Connection(GatewayContext& gateway, std::shared_ptr<const Generation> generation,
                       const core::ListenerConfig& listener, asio::ip::tcp::socket& socket,
                       HandshakeLimiter::Slot slot)
    : gateway_(gateway), generation_(std::move(generation)), listener_(listener), id_(gateway.next_connection_id++),
      executor_(socket.get_executor()), deadline_(socket.get_executor()), handshake_slot_(std::move(slot)) {
    std::error_code ignored;
    peer_ = socket.remote_endpoint(ignored);
    local_ = socket.local_endpoint(ignored);
}

asio::awaitable<void> Connection::run() {
    audit("accept", {{"listener", listener_.address}, {"peer", endpoint_text(peer_)}, {"tls", listener_.tls},
                     {"protocol", core::to_string(listener_.protocol)}});
    gateway_.metrics.connections.with({std::string(core::to_string(listener_.protocol)), listener_.address}).add();
    arm_handshake_deadline();
    bool established = false;
    std::optional<Refusal> refusal;
    try {
        co_await handshake();
        established = true;
    } catch (const Refusal& r) {
        refusal = r;
    } catch (const std::exception& e) {
        close_reason_ = deadline_passed_ ? "handshake deadline of " +
                                               std::to_string(generation_->config.gateway.handshake_timeout.count()) +
                                               " s passed"
                                         : std::string("handshake failed: ") + e.what();
    }
    if (refusal) {
        close_reason_ = refusal->reason;
        try {
            co_await flush_client();  // the protocol's own refusal (a link error, a failure reason)
        } catch (const std::exception&) {
            // The client is gone; the refusal is recorded all the same.
        }
    }
    // After the flush: ending the session closes this connection's streams too.
    if (!established) end_session(session::EndReason::handshake_failed, close_reason_);
    deadline_.cancel();
    handshake_slot_.reset();
    if (established) {
        const std::chrono::duration<double> handshake_time = std::chrono::steady_clock::now() - started_;
        gateway_.metrics.handshake_time.with({std::string(core::to_string(listener_.protocol))})
            .observe(handshake_time.count());
        if (co_await open_relay()) {
            // No coroutine of this connection outlives this point: an idle channel is only its
            // objects and the relay's pending waits.
            relay_->start(weak_from_this(), [this](const std::string& reason) {
                relay_ended(reason);
                finish();
            });
            co_return;
        }
    }
    finish();
}

void Connection::finish() {
    close_streams();
    audit_close();
    if (on_finished_) std::exchange(on_finished_, nullptr)();
}

void Connection::close(const std::string& reason) {
    asio::post(executor_, [self = shared_from_this(), reason] {
        if (self->relay_) {
            self->relay_->stop(reason);
        } else {
            if (self->close_reason_.empty()) self->close_reason_ = reason;
            self->close_streams();
        }
    });
}

// Names from the network (SNI, CONNECT hosts) arrive lowercased while a [[vm]] may be "VM1".
// A [[vm]] may name a libvirt domain by its UUID while clients ask for the domain's name, or
// the other way round: the libvirt inventory knows both.
const core::VmConfig* Connection::find_vm(const std::string& name) const {
    const core::Config& config = generation_->config;
    if (const core::VmConfig* vm = config.find_vm(name)) return vm;
    const auto named = [&name](const core::VmConfig& vm) {
        return std::equal(vm.name.begin(), vm.name.end(), name.begin(), name.end(), same_letter);
    };
    if (auto it = std::find_if(config.vms.begin(), config.vms.end(), named); it != config.vms.end()) return &*it;
    const auto domain = gateway_.libvirt_upstreams.find(name);
    if (!domain) return nullptr;
    if (const core::VmConfig* vm = config.find_vm(domain->description.name)) return vm;
    return config.find_vm(domain->description.uuid);
}

std::string Connection::why_no_vm(const std::string& vm_name, std::string_view protocol) const {
    if (listener_.route == core::Route::sni && server_name_.empty())
        return "no TLS server name (SNI) to choose a VM by";
    if (listener_.route == core::Route::sni && vm_name.empty())
        return "TLS server name \"" + server_name_ + "\" is not of the form VM" + listener_.sni_suffix;
    if (gateway_.libvirt_upstreams.find(vm_name))
        return "libvirt domain \"" + vm_name + "\" has no [[vm]] section with allow rules: nobody may use it";
    return "no " + std::string(protocol) + " VM named \"" + vm_name + "\"";
}

policy::Decision Connection::decide(const std::string& channel) const {
    return generation_->policy->decide({*identity_, vm_->name, channel, gateway_.clock.civil_now(),
                                        core::IpAddress::parse(peer_.address().to_string())});
}

std::optional<std::string> Connection::authorize(const std::string& channel) {
    decision_ = decide(channel);
    audit("decision", {{"vm", vm_->name}, {"channel", channel}, {"user", identity_->user},
                       {"realm", identity_->realm}, {"allowed", decision_.allowed}, {"rule", decision_.rule},
                       {"reason", decision_.reason}});
    gateway_.metrics.decisions.with({decision_.allowed ? "allowed" : "denied", std::string(policy::to_string(decision_.cause))})
        .add();
    if (decision_.allowed) return std::nullopt;
    return decision_.reason;
}

// Seats are decided here, before QEMU hears of the newcomer: QEMU would otherwise let it in and
// drop (SPICE) or share with (VNC) the current client, whatever the seat policy says.
std::optional<std::string> Connection::claim_seat(const std::string& channel, std::optional<std::uint64_t> ticket_id) {
    session::Origin origin{vm_->name,
                           *identity_,
                           core::IpAddress::parse(peer_.address().to_string()),
                           endpoint_text(peer_),
                           gateway_.clock.now(),
                           std::chrono::steady_clock::now(),
                           ticket_id,
                           decision_.view_only,
                           decision_.rule};
    auto outcome = gateway_.sessions.claim(std::move(origin), vm_->seat);
    if (auto* refused = std::get_if<session::Registry::Refused>(&outcome)) {
        const session::Session& holder = *refused->holder;
        audit("seat_denied", {{"vm", vm_->name}, {"user", identity_->user}, {"realm", identity_->realm},
                              {"seat", core::to_string(vm_->seat)}, {"holder", holder.who().to_string()},
                              {"holder_session", holder.id()}});
        gateway_.metrics.decisions.with({"denied", std::string(seat_taken_reason)}).add();
        return "the seat of " + vm_->name + " is held by " + holder.who().to_string() + " (session " +
               std::to_string(holder.id()) + ", seat = \"" + std::string(core::to_string(vm_->seat)) + "\")";
    }
    auto& claimed = std::get<session::Registry::Claimed>(outcome);
    session_ = std::move(claimed.session);
    if (!session_->add_channel(channel_handle(channel)))  // a newcomer took the seat in the meantime
        return "the session ended while it was being set up";
    for (const auto& old : claimed.replaced)
        audit("session_replaced", {{"vm", vm_->name}, {"session", old->id()}, {"user", old->who().user},
                                   {"realm", old->who().realm}, {"by", identity_->to_string()},
                                   {"by_session", session_->id()}});
    return std::nullopt;
}

// How the session registry ends this connection, from any thread.
session::ChannelHandle Connection::channel_handle(const std::string& channel) {
    return {id_, channel, traffic_, [self = weak_from_this()](const std::string& reason) {
                if (auto s = self.lock()) s->close(reason);
            }};
}

void Connection::audit_authenticated(const std::string& channel) {
    audit("auth", {{"result", "ok"}, {"vm", vm_ ? vm_->name : ""}, {"channel", channel},
                   {"mechanism", identity_->mechanism}, {"user", identity_->user}, {"realm", identity_->realm}});
    count_auth(identity_->mechanism, AuthResult::ok);  // the mechanism that succeeded is one offered
}

void Connection::count_auth(std::string mechanism, AuthResult result) {
    gateway_.metrics.auth
        .with({std::string(core::to_string(listener_.protocol)), std::move(mechanism),
               result == AuthResult::ok ? "ok" : "failed"})
        .add();
}

void Connection::count_upstream_error() {
    gateway_.metrics.upstream_errors.with({std::string(core::to_string(listener_.protocol)), vm_->name}).add();
}

RelayCounters Connection::relay_counters() {
    auto& bytes = gateway_.metrics.relay_bytes;
    return {&bytes.with({vm_->name, "to_client"}), &bytes.with({vm_->name, "to_vm"})};
}

void Connection::audit(std::string_view event, nlohmann::json fields) {
    fields["conn"] = id_;
    gateway_.audit.record(event, std::move(fields));
}

void Connection::close_streams() {
    if (client_) client_->close();
    if (upstream_) upstream_->close();
}

// No protocol sets a deadline of its own in its handshake; a client that stalls anywhere before
// the relay starts is closed when the configured handshake_timeout passes.
void Connection::arm_handshake_deadline() {
    deadline_.expires_after(generation_->config.gateway.handshake_timeout);
    deadline_.async_wait([self = shared_from_this()](std::error_code ec) {
        if (ec) return;
        self->deadline_passed_ = true;
        self->close_streams();
    });
}

void Connection::audit_close() {
    using namespace std::chrono;
    nlohmann::json fields = {
        {"reason", close_reason_.empty() ? "closed" : close_reason_},
        {"peer", endpoint_text(peer_)},
        {"bytes_from_client", traffic_->from_client()},
        {"bytes_to_client", traffic_->to_client()},
        {"duration_ms", duration_cast<milliseconds>(steady_clock::now() - started_).count()}};
    if (vm_) fields["vm"] = vm_->name;
    if (identity_) {
        fields["user"] = identity_->user;
        fields["realm"] = identity_->realm;
        fields["mechanism"] = identity_->mechanism;
    }
    if (session_) fields["session"] = session_->id();
    add_close_fields(fields);
    audit("close", std::move(fields));
}

}  // namespace vmgate::net
