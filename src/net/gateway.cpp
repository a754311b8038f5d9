#include "net/gateway.hpp"

#include "admin/admin_server.hpp"
#include "audit/audit_log.hpp"
#include "core/config_support.hpp"
#include "net/gateway_context.hpp"
#include "net/generation.hpp"
#include "net/handshake_limiter.hpp"
#include "net/metrics_server.hpp"
#include "net/resolve.hpp"
#include "net/session_control.hpp"
#include "net/spice_connection.hpp"
#include "net/vm_catalog.hpp"
#include "net/vnc_connection.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/redirect_error.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <asio/thread_pool.hpp>
#include <asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <thread>

namespace vmgate::net {
namespace {

// How long connections get to write their last records when the gateway stops.
constexpr auto shutdown_grace = std::chrono::seconds(2);
// Longest ticket lifetime the admin socket issues: tickets are for "open the console now".
constexpr auto max_ticket_ttl = std::chrono::hours(24);
// How often running sessions are checked against their time windows and limits.
constexpr auto supervise_interval = std::chrono::seconds(1);

struct Worker {
    asio::io_context io{1};
    asio::executor_work_guard<asio::io_context::executor_type> guard = asio::make_work_guard(io);
    std::thread thread;
};

// Whether a TLS listener (of `protocol`, when given) offers `method` (any, when not given).
bool any_tls_listener(const core::Config& c, std::optional<core::AuthMethod> method,
                      std::optional<core::Protocol> protocol = std::nullopt) {
    return std::any_of(c.listeners.begin(), c.listeners.end(), [&](const core::ListenerConfig& l) {
        return l.tls && (!method || l.offers(*method)) && (!protocol || l.protocol == *protocol);
    });
}


// [gateway] settings a running daemon only reads at start.
std::vector<std::string> settings_needing_restart(const core::GatewayConfig& now, const core::GatewayConfig& next) {
    std::vector<std::string> out;
    auto check = [&](bool changed, const char* key) {
        if (changed) out.emplace_back(std::string("gateway.") + key);
    };
    check(now.state_dir != next.state_dir, "state_dir");
    check(now.audit_log != next.audit_log, "audit_log");
    check(now.admin_socket != next.admin_socket, "admin_socket");
    check(now.max_handshakes != next.max_handshakes, "max_handshakes");
    check(now.max_handshakes_per_source != next.max_handshakes_per_source, "max_handshakes_per_source");
    check(now.workers != next.workers, "workers");
    check(now.ticket_key_stock != next.ticket_key_stock, "ticket_key_stock");
    return out;
}

// How the startup log describes a listener's choice of VM.
std::string route_text(const core::ListenerConfig& l) {
    switch (l.route) {
        case core::Route::fixed: return ", VM " + l.vm;
        case core::Route::sni: return ", VM by SNI";
        case core::Route::connect: return ", HTTP CONNECT proxy, VM by CONNECT host";
    }
    return "";
}

// Live sessions per VM: every configured VM (0 when idle, so a scrape sees sessions end), and
// any VM a reload removed while it still has sessions.
std::vector<metrics::Sample> sessions_per_vm(const core::Config& config, const session::Registry& sessions) {
    std::map<std::string, double> count;
    for (const auto& vm : config.vms) count[vm.name] = 0;
    for (const auto& s : sessions.live()) ++count[s->vm()];
    std::vector<metrics::Sample> out;
    for (auto& [vm, n] : count) out.push_back({{vm}, n});
    return out;
}

}  // namespace

// A bound listening socket. It outlives reloads that keep its address; the settings its
// connections get are those of the listener with that address in the current generation.
struct ListenerBinding {
    asio::ip::tcp::endpoint endpoint;
    asio::ip::tcp::acceptor acceptor;
    std::shared_ptr<const Generation> generation;
    const core::ListenerConfig* listener = nullptr;  // in *generation
};

struct Gateway::State {
    explicit State(core::Config c) : initial_config(std::move(c)) {}

    core::Config initial_config;  // until start() turns it into the first generation
    asio::io_context main_io{1};
    std::vector<std::unique_ptr<Worker>> workers;
    std::vector<std::shared_ptr<ListenerBinding>> bindings;  // main_io only
    std::unique_ptr<audit::AuditLog> audit_log;
    core::SystemClock clock;
    policy::SystemGroupResolver groups;
    std::shared_ptr<const Generation> generation;  // main_io only
    // What the process runs with until a restart, whatever later files say (see reload()).
    core::GatewayConfig gateway_in_effect;
    std::optional<core::SaslConfig> sasl_in_effect;
    session::Registry sessions{[this](const session::Session& s, session::EndReason r, const std::string& d) {
        record_session_end(s, r, d);
    }};
    auth::TicketStore tickets;
    asio::thread_pool key_generation{1};
    // Reset before the workers go: its pending requests hold coroutines of the workers' io_contexts.
    std::unique_ptr<QmpUpstreams> qmp_upstreams = std::make_unique<QmpUpstreams>();
    std::unique_ptr<LibvirtUpstreams> libvirt_upstreams = std::make_unique<LibvirtUpstreams>();
    std::unique_ptr<HandshakeLimiter> handshakes;
    metrics::Registry metrics_registry;
    GatewayMetrics metrics{metrics_registry};
    std::unique_ptr<GatewayContext> context;
    std::unique_ptr<admin::AdminServer> admin;
    std::unique_ptr<MetricsServer> metrics_server;  // main_io only
    std::unique_ptr<asio::signal_set> signals;  // SIGINT, SIGTERM
    std::unique_ptr<asio::signal_set> hangups;  // SIGHUP
    std::unique_ptr<asio::steady_timer> supervisor;
    std::size_t next_worker = 0;
    bool stopping = false;

    std::mutex connections_mutex;
    std::map<std::uint64_t, std::weak_ptr<Connection>> connections;

    std::shared_ptr<const Generation> build_generation(core::Config config, std::vector<std::string>& restart_needed);
    std::shared_ptr<auth::SaslServerContext> sasl_for(const core::Config& config, std::vector<std::string>& restart_needed);
    struct ListenerChanges {
        std::vector<std::string> added, removed;
    };
    ListenerChanges apply_listeners(const std::shared_ptr<const Generation>& next);
    std::unique_ptr<MetricsServer> bind_metrics(const std::string& address);
    asio::awaitable<void> accept_loop(std::shared_ptr<ListenerBinding> binding);
    void refuse_at_accept(const core::ListenerConfig& listener, const asio::ip::tcp::endpoint& peer,
                          const std::string& why);
    void spawn(std::shared_ptr<Connection> connection, asio::io_context& io);
    asio::awaitable<void> supervise_loop();
    void record_session_end(const session::Session& s, session::EndReason reason, const std::string& detail);
    void listen_for_hangup();
    asio::awaitable<nlohmann::json> admin_request(nlohmann::json request);
    nlohmann::json issue_ticket(const nlohmann::json& request);
    nlohmann::json list_sessions();
    nlohmann::json kill_sessions(const nlohmann::json& request);
    nlohmann::json reload(const std::string& trigger);
    void begin_shutdown();
};

// Everything a configuration needs before it can serve: the policy, a TLS context from the
// current key and certificate files (a reload picks up renewed ones), SASL and the ticket keys.
// Throws std::runtime_error when something cannot be loaded.
std::shared_ptr<const Generation> Gateway::State::build_generation(core::Config config,
                                                                   std::vector<std::string>& restart_needed) {
    auto next = std::make_shared<Generation>();
    next->config = std::move(config);
    const core::Config& c = next->config;
    if (any_tls_listener(c, std::nullopt)) next->tls = std::make_shared<const TlsServerContext>(c.tls);
    if (any_tls_listener(c, core::AuthMethod::sasl) || any_tls_listener(c, core::AuthMethod::password))
        next->sasl = sasl_for(c, restart_needed);
    // VNC tickets need no key: VNC auth is a DES challenge, not an encrypted password.
    if (generation && generation->ticket_keys) next->ticket_keys = generation->ticket_keys;
    else if (any_tls_listener(c, core::AuthMethod::ticket, core::Protocol::spice))
        next->ticket_keys = std::make_shared<auth::TicketKeyPool>(c.gateway.ticket_key_stock);
    next->default_realm = next->sasl ? next->sasl->default_realm()  // the configured one, else Cyrus's
                                     : c.sasl.realm_or_host_name();
    next->policy.emplace(c, groups, next->default_realm);
    return next;
}

// Cyrus is configured once per process: changed [sasl] options wait for a restart.
std::shared_ptr<auth::SaslServerContext> Gateway::State::sasl_for(const core::Config& config,
                                                                  std::vector<std::string>& restart_needed) {
    if (generation && generation->sasl && sasl_in_effect != config.sasl) {
        restart_needed.emplace_back("[sasl]");
        return generation->sasl;
    }
    std::string error;
    auto sasl = auth::SaslServerContext::create(config.sasl, error);
    if (!sasl) throw std::runtime_error("SASL: " + error);
    sasl_in_effect = config.sasl;
    sasl->set_logger([](auth::SaslLogLevel level, std::string_view message) {
        if (level == auth::SaslLogLevel::error) spdlog::error("sasl: {}", message);
        else if (level == auth::SaslLogLevel::warning) spdlog::warn("sasl: {}", message);
        else spdlog::debug("sasl: {}", message);
    });
    return sasl;
}

std::unique_ptr<MetricsServer> Gateway::State::bind_metrics(const std::string& address) {
    if (address.empty()) return nullptr;
    return std::make_unique<MetricsServer>(main_io, address, [this] { return metrics_registry.render(); });
}

// Listeners are matched by address: a kept address keeps its socket (and every connection
// accepted on it) and takes the new settings; new addresses are bound before anything changes,
// so a port that cannot be bound fails the reload as a whole.
Gateway::State::ListenerChanges Gateway::State::apply_listeners(const std::shared_ptr<const Generation>& next) {
    std::vector<std::pair<std::shared_ptr<ListenerBinding>, const core::ListenerConfig*>> plan;
    std::vector<std::shared_ptr<ListenerBinding>> fresh;
    for (const auto& l : next->config.listeners) {
        const auto endpoint = resolve_endpoint(l.host, l.port, "listener " + l.address);
        auto kept = std::find_if(bindings.begin(), bindings.end(), [&](const auto& b) { return b->endpoint == endpoint; });
        if (kept != bindings.end()) {
            plan.emplace_back(*kept, &l);
            continue;
        }
        auto binding = std::make_shared<ListenerBinding>(ListenerBinding{endpoint, asio::ip::tcp::acceptor(main_io), next, &l});
        std::error_code ec;
        binding->acceptor.open(endpoint.protocol(), ec);
        if (!ec) binding->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
        if (!ec) binding->acceptor.bind(endpoint, ec);
        if (!ec) binding->acceptor.listen(asio::socket_base::max_listen_connections, ec);
        if (ec) throw std::runtime_error("cannot listen on " + l.address + ": " + ec.message());
        plan.emplace_back(binding, &l);
        fresh.push_back(binding);
    }
    ListenerChanges changes;
    for (const auto& b : bindings) {
        const bool kept = std::any_of(plan.begin(), plan.end(), [&](const auto& p) { return p.first == b; });
        if (kept) continue;
        changes.removed.push_back(b->listener->address);
        b->listener = nullptr;
        std::error_code ignored;
        b->acceptor.close(ignored);
    }
    bindings.clear();
    for (auto& [binding, listener] : plan) {
        binding->generation = next;
        binding->listener = listener;
        bindings.push_back(binding);
    }
    for (const auto& b : fresh) {
        changes.added.push_back(b->listener->address);
        asio::co_spawn(main_io, accept_loop(b), asio::detached);
        const auto& l = *b->listener;
        spdlog::info("listening on {} ({} {}{}{})", l.address, l.tls ? "TLS" : "plain", core::to_string(l.protocol),
                     route_text(l),
                     l.tls ? "" : ", answers NEED_SECURED");
    }
    for (const auto& address : changes.removed) spdlog::info("stopped listening on {}", address);
    return changes;
}

asio::awaitable<void> Gateway::State::accept_loop(std::shared_ptr<ListenerBinding> binding) {
    for (;;) {
        Worker& worker = *workers[next_worker++ % workers.size()];
        std::error_code ec;
        auto socket = co_await binding->acceptor.async_accept(worker.io, asio::redirect_error(asio::use_awaitable, ec));
        if (ec == asio::error::operation_aborted || stopping || !binding->listener) co_return;
        const core::ListenerConfig& listener = *binding->listener;
        if (ec) {
            // Out of descriptors or memory: back off instead of spinning on the same error.
            spdlog::error("accept on {}: {}", listener.address, ec.message());
            asio::steady_timer pause(main_io, std::chrono::milliseconds(100));
            co_await pause.async_wait(asio::use_awaitable);
            continue;
        }
        std::error_code ignored;
        const auto peer = socket.remote_endpoint(ignored);
        std::string why;
        auto slot = handshakes->try_acquire(peer.address().to_string(), why);
        if (!slot) {
            refuse_at_accept(listener, peer, why);
            continue;  // the socket closes here: no protocol has started, so no reply is owed
        }
        try {
            std::shared_ptr<Connection> connection;
            if (listener.protocol == core::Protocol::vnc)
                connection = std::make_shared<VncConnection>(*context, binding->generation, listener,
                                                             std::move(socket), std::move(*slot));
            else
                connection = std::make_shared<SpiceConnection>(*context, binding->generation, listener,
                                                               std::move(socket), std::move(*slot));
            spawn(std::move(connection), worker.io);
        } catch (const std::exception& e) {
            spdlog::error("connection on {}: {}", listener.address, e.what());
        }
    }
}

void Gateway::State::refuse_at_accept(const core::ListenerConfig& listener, const asio::ip::tcp::endpoint& peer,
                                      const std::string& why) {
    const std::uint64_t id = context->next_connection_id++;
    const std::string peer_text = peer.address().to_string() + ":" + std::to_string(peer.port());
    metrics.connections.with({std::string(core::to_string(listener.protocol)), listener.address}).add();
    audit_log->record("accept", {{"conn", id}, {"listener", listener.address}, {"peer", peer_text}, {"tls", listener.tls},
                                 {"protocol", core::to_string(listener.protocol)}});
    audit_log->record("close", {{"conn", id}, {"peer", peer_text}, {"reason", why},
                                {"bytes_from_client", 0}, {"bytes_to_client", 0}, {"duration_ms", 0}});
}

void Gateway::State::spawn(std::shared_ptr<Connection> connection, asio::io_context& io) {
    static std::atomic<std::uint64_t> next_key{1};
    const std::uint64_t key = next_key++;
    {
        std::lock_guard lock(connections_mutex);
        connections.emplace(key, connection);
    }
    // The entry goes when the connection has ended: for a relaying one, after run() returned.
    const auto forget = [this, key] {
        std::lock_guard lock(connections_mutex);
        connections.erase(key);
    };
    connection->on_finished(forget);
    asio::co_spawn(io, [connection, forget]() -> asio::awaitable<void> {
        try {
            co_await connection->run();
        } catch (const std::exception& e) {
            spdlog::error("connection ended unexpectedly: {}", e.what());
            forget();
        }
    }, asio::detached);
}

// Time windows close and limits run out while sessions run: checked once a second.
asio::awaitable<void> Gateway::State::supervise_loop() {
    while (!stopping) {
        supervisor->expires_after(supervise_interval);
        std::error_code ec;
        co_await supervisor->async_wait(asio::redirect_error(asio::use_awaitable, ec));
        if (ec || stopping) co_return;
        supervise(*generation, sessions.live(), clock.civil_now(), std::chrono::steady_clock::now());
    }
}

void Gateway::State::record_session_end(const session::Session& s, session::EndReason reason,
                                        const std::string& detail) {
    using namespace std::chrono;
    audit_log->record("session_end",
                      {{"session", s.id()}, {"vm", s.vm()}, {"user", s.who().user}, {"realm", s.who().realm},
                       {"reason", session::to_string(reason)}, {"detail", detail},
                       {"duration_ms", duration_cast<milliseconds>(steady_clock::now() - s.origin().started).count()}});
}

void Gateway::State::listen_for_hangup() {
    hangups->async_wait([this](std::error_code ec, int) {
        if (ec || stopping) return;
        const auto outcome = reload("SIGHUP");
        if (outcome.value("ok", false)) spdlog::info("configuration reloaded (SIGHUP)");
        else spdlog::error("reload refused, nothing changed: {}", outcome.value("error", ""));
        listen_for_hangup();
    });
}

asio::awaitable<nlohmann::json> Gateway::State::admin_request(nlohmann::json request) {
    const std::string op = request.value("op", "");
    if (op == "ping") co_return nlohmann::json{{"ok", true}};
    if (op == "ticket") co_return issue_ticket(request);
    if (op == "sessions") co_return list_sessions();
    if (op == "kill") co_return kill_sessions(request);
    if (op == "reload") co_return reload("admin socket");
    if (op == "vms") {
        const UpstreamBrokers brokers{*qmp_upstreams, *libvirt_upstreams};
        nlohmann::json listing = co_await describe_vms(generation, brokers);
        co_return listing;
    }
    co_return nlohmann::json{{"ok", false},
                             {"error", "unknown op \"" + op + "\"; known: ping, ticket, sessions, kill, reload, vms"}};
}

nlohmann::json Gateway::State::issue_ticket(const nlohmann::json& request) {
    const std::string user = request.value("user", "");
    const std::string vm_name = request.value("vm", "");
    const std::string protocol_name = request.value("protocol", "spice");
    const auto ttl = std::chrono::seconds(request.value("ttl_seconds", 60));
    if (user.empty()) return {{"ok", false}, {"error", "user is required"}};
    if (protocol_name != "spice" && protocol_name != "vnc")
        return {{"ok", false}, {"error", "protocol must be \"spice\" or \"vnc\""}};
    const bool vnc = protocol_name == "vnc";
    const core::VmConfig* vm = generation->config.find_vm(vm_name);
    if (!vm) return {{"ok", false}, {"error", "no VM named \"" + vm_name + "\""}};
    if (!(vnc ? vm->vnc : vm->spice))
        return {{"ok", false}, {"error", "VM \"" + vm_name + "\" has no " + protocol_name + " console"}};
    if (ttl <= std::chrono::seconds(0) || ttl > max_ticket_ttl)
        return {{"ok", false}, {"error", "ttl must be between 1 s and 24 h"}};
    const auto protocol = vnc ? core::Protocol::vnc : core::Protocol::spice;
    if (!any_tls_listener(generation->config, core::AuthMethod::ticket, protocol))
        return {{"ok", false}, {"error", "no " + protocol_name + " listener offers tickets (auth = [\"ticket\"])"}};
    // A bare name is the default realm's user, as a SASL login or a certificate makes it: the
    // ticket's sessions are then the same principal's for seats and session binding.
    core::Identity who = core::Identity::parse(user);  // the store marks it "ticket"
    if (who.realm.empty()) who.realm = generation->default_realm;
    const std::string secret = tickets.issue(who, vm_name, ttl, std::chrono::steady_clock::now(),
                                             vnc ? auth::TicketStore::Protocol::vnc : auth::TicketStore::Protocol::spice);
    audit_log->record("ticket_issued", {{"user", who.user}, {"realm", who.realm}, {"vm", vm_name},
                                        {"protocol", protocol_name}, {"ttl_s", ttl.count()}});
    return {{"ok", true}, {"ticket", secret}, {"ttl_seconds", ttl.count()}};
}

nlohmann::json Gateway::State::list_sessions() {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& s : sessions.live()) list.push_back(describe(*s));
    return {{"ok", true}, {"sessions", std::move(list)}};
}

// One selector: "id", "vm" or "user" ("name" matches the name in any realm, "name@realm" exactly).
nlohmann::json Gateway::State::kill_sessions(const nlohmann::json& request) {
    const int selectors = int(request.contains("id")) + int(request.contains("vm")) + int(request.contains("user"));
    if (selectors != 1) return {{"ok", false}, {"error", "give exactly one of id, vm, user"}};
    auto matches = [&](const session::Session& s) {
        if (request.contains("id")) return request["id"].is_number_unsigned() && s.id() == request["id"].get<std::uint64_t>();
        if (request.contains("vm")) return request["vm"].is_string() && s.vm() == request["vm"].get<std::string>();
        if (!request["user"].is_string()) return false;
        const auto wanted = core::Identity::parse(request["user"].get<std::string>());
        return wanted.realm.empty() ? s.who().user == wanted.user : s.who().same_principal(wanted);
    };
    nlohmann::json killed = nlohmann::json::array();
    for (const auto& s : sessions.live()) {
        if (!matches(*s)) continue;
        auto shown = describe(*s);
        if (s->end(session::EndReason::killed, "ended by the admin (vmgate sessions kill)")) killed.push_back(std::move(shown));
    }
    return {{"ok", true}, {"killed", std::move(killed)}};
}

// The new file is checked in full before anything changes; then listeners, TLS files and the
// policy switch over, and every live session is decided again under the new policy.
nlohmann::json Gateway::State::reload(const std::string& trigger) {
    auto refuse = [&](const std::string& error) {
        audit_log->record("reload", {{"ok", false}, {"trigger", trigger}, {"error", error}});
        return nlohmann::json{{"ok", false}, {"error", error}};
    };
    const std::string path = generation->config.path;
    auto loaded = core::load_config_file(path);
    if (loaded.config) loaded.errors = core::unsupported_settings(*loaded.config);
    if (!loaded.errors.empty()) {
        std::string error = path + " has " + std::to_string(loaded.errors.size()) + " error(s):";
        for (const auto& e : loaded.errors) error += "\n  " + e.to_string();
        return refuse(error);
    }
    std::vector<std::string> restart_needed = settings_needing_restart(gateway_in_effect, loaded.config->gateway);
    ListenerChanges changes;
    const std::string metrics_address = loaded.config->gateway.metrics;
    const bool metrics_moved = metrics_address != (metrics_server ? metrics_server->address() : "");
    try {
        auto next = build_generation(std::move(*loaded.config), restart_needed);
        // Like a new listener, a new metrics address is bound before anything changes, so one
        // that cannot be bound fails the reload as a whole; the old one closes after the switch.
        std::unique_ptr<MetricsServer> next_metrics;
        if (metrics_moved) next_metrics = bind_metrics(metrics_address);
        changes = apply_listeners(next);
        if (metrics_moved) metrics_server = std::move(next_metrics);
        generation = std::move(next);
        libvirt_upstreams->follow(generation->config.libvirt);
    } catch (const std::exception& e) {
        return refuse(e.what());
    }
    std::vector<std::uint64_t> revoked, kept;
    const auto at = clock.civil_now();
    for (const auto& s : sessions.live()) {
        if (auto why = why_revoked(*generation, *s, at); why && s->end(session::EndReason::policy_reload, *why))
            revoked.push_back(s->id());
        else
            kept.push_back(s->id());
    }
    nlohmann::json outcome = {{"ok", true},          {"config", path},
                              {"revoked", revoked},   {"kept", kept},
                              {"listeners_added", changes.added}, {"listeners_removed", changes.removed},
                              {"restart_needed", restart_needed}};
    if (metrics_moved) outcome["metrics"] = metrics_address;
    auto record = outcome;
    record["trigger"] = trigger;
    audit_log->record("reload", std::move(record));
    return outcome;
}

void Gateway::State::begin_shutdown() {
    if (stopping) return;
    stopping = true;
    spdlog::info("shutting down");
    for (auto& b : bindings) {
        std::error_code ignored;
        b->acceptor.close(ignored);
    }
    if (admin) admin->stop();
    if (metrics_server) metrics_server->stop();
    if (signals) signals->cancel();
    if (hangups) hangups->cancel();
    if (supervisor) supervisor->cancel();
    for (const auto& s : sessions.live()) s->end(session::EndReason::gateway_stopping, "vmgate is shutting down");
    std::vector<std::shared_ptr<Connection>> live;
    {
        std::lock_guard lock(connections_mutex);
        for (auto& [key, weak] : connections)
            if (auto c = weak.lock()) live.push_back(std::move(c));
    }
    for (auto& c : live) c->close("gateway shutting down");
    auto timer = std::make_shared<asio::steady_timer>(main_io, shutdown_grace);
    timer->async_wait([this, timer](std::error_code) {
        for (auto& w : workers) w->guard.reset();
        main_io.stop();
    });
}

Gateway::Gateway(core::Config config) : state_(std::make_unique<State>(std::move(config))) {}

Gateway::~Gateway() {
    if (!state_) return;
    for (auto& w : state_->workers) {
        w->guard.reset();
        w->io.stop();
        if (w->thread.joinable()) w->thread.join();
    }
    // QMP and libvirt requests still pending hold coroutines of the workers' io_contexts: they go
    // first, then the connections still parked in a worker, which refer to the shared state.
    state_->qmp_upstreams.reset();
    state_->libvirt_upstreams.reset();
    state_->workers.clear();
}

void Gateway::start() {
    State& s = *state_;
    if (const auto unsupported = core::unsupported_settings(s.initial_config); !unsupported.empty()) {
        std::string message = "the configuration asks for what this version does not enforce:";
        for (const auto& e : unsupported) message += "\n  " + e.to_string();
        throw std::runtime_error(message);
    }
    s.audit_log = std::make_unique<audit::AuditLog>(s.initial_config.gateway.audit_log);
    std::vector<std::string> restart_needed;  // nothing runs yet
    auto first = s.build_generation(std::move(s.initial_config), restart_needed);
    const core::GatewayConfig& g = first->config.gateway;
    s.gateway_in_effect = g;
    s.context = std::unique_ptr<GatewayContext>(
        new GatewayContext{*s.audit_log, s.clock, s.sessions, s.tickets, s.key_generation.get_executor(),
                           *s.qmp_upstreams, *s.libvirt_upstreams, s.metrics});
    s.handshakes = std::make_unique<HandshakeLimiter>(g.max_handshakes, g.max_handshakes_per_source);
    unsigned n = g.workers;
    if (n == 0) n = std::max(1u, std::thread::hardware_concurrency());
    for (unsigned i = 0; i < n; ++i) s.workers.push_back(std::make_unique<Worker>());
    // Before any port opens: a SIGTERM from then on is an orderly shutdown, never a kill.
    s.signals = std::make_unique<asio::signal_set>(s.main_io, SIGINT, SIGTERM);
    s.hangups = std::make_unique<asio::signal_set>(s.main_io, SIGHUP);
    s.metrics_registry.computed_gauge("vmgate_sessions_active", "Live sessions, by VM.", {"vm"},
                                      [&s] { return sessions_per_vm(s.generation->config, s.sessions); });
    s.metrics_server = s.bind_metrics(g.metrics);
    s.apply_listeners(first);
    s.generation = first;
    s.libvirt_upstreams->follow(first->config.libvirt);
    if (!g.admin_socket.empty())
        s.admin = std::make_unique<admin::AdminServer>(
            s.main_io, g.admin_socket, [&s](const nlohmann::json& r) { return s.admin_request(r); });
    for (auto& w : s.workers) w->thread = std::thread([&io = w->io] { io.run(); });
    s.supervisor = std::make_unique<asio::steady_timer>(s.main_io);
    asio::co_spawn(s.main_io, s.supervise_loop(), asio::detached);
    s.listen_for_hangup();
    s.audit_log->record("start", {{"listeners", s.bindings.size()}, {"vms", first->config.vms.size()},
                                  {"config", first->config.path}});
}

int Gateway::run_until_signal() {
    State& s = *state_;
    s.signals->async_wait([&s](std::error_code ec, int signal) {
        if (ec) return;
        spdlog::info("signal {} received", signal);
        s.begin_shutdown();
    });
    s.main_io.run();
    for (auto& w : s.workers) {
        w->io.stop();
        if (w->thread.joinable()) w->thread.join();
    }
    s.audit_log->record("stop", nlohmann::json::object());
    return 0;
}

void Gateway::stop() {
    asio::post(state_->main_io, [s = state_.get()] { s->begin_shutdown(); });
}

}  // namespace vmgate::net
