#include "net/gateway.hpp"

#include "admin/admin_server.hpp"
#include "audit/audit_log.hpp"
#include "core/config_support.hpp"
#include "net/gateway_context.hpp"
#include "net/handshake_limiter.hpp"
#include "net/spice_connection.hpp"

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

struct Worker {
    asio::io_context io{1};
    asio::executor_work_guard<asio::io_context::executor_type> guard = asio::make_work_guard(io);
    std::thread thread;
};

std::string host_name() {
    char buf[256] = {};
    ::gethostname(buf, sizeof buf - 1);
    return buf;
}

bool any_listener(const core::Config& c, bool tls, std::optional<core::AuthMethod> method) {
    return std::any_of(c.listeners.begin(), c.listeners.end(), [&](const core::ListenerConfig& l) {
        return l.tls == tls &&
               (!method || std::find(l.auth.begin(), l.auth.end(), *method) != l.auth.end());
    });
}

asio::ip::tcp::endpoint resolve_listen_address(const core::ListenerConfig& l) {
    std::error_code ec;
    auto address = asio::ip::make_address(l.host, ec);
    if (ec) {
        asio::io_context io;
        asio::ip::tcp::resolver resolver(io);
        auto results = resolver.resolve(l.host, std::to_string(l.port), ec);
        if (ec || results.empty())
            throw std::runtime_error("listener " + l.address + ": cannot resolve \"" + l.host + "\"");
        return *results.begin();
    }
    return {address, l.port};
}

}  // namespace

struct Gateway::State {
    explicit State(core::Config c) : config(std::move(c)) {}

    core::Config config;
    asio::io_context main_io{1};
    std::vector<std::unique_ptr<Worker>> workers;
    std::vector<std::unique_ptr<asio::ip::tcp::acceptor>> acceptors;
    std::unique_ptr<audit::AuditLog> audit_log;
    core::SystemClock clock;
    policy::SystemGroupResolver groups;
    std::unique_ptr<policy::Evaluator> evaluator;
    session::Registry sessions;
    auth::TicketStore tickets;
    std::unique_ptr<auth::TicketKeyPool> ticket_keys;
    asio::thread_pool key_generation{1};
    std::shared_ptr<auth::SaslServerContext> sasl;
    std::unique_ptr<TlsServerContext> tls;
    std::unique_ptr<HandshakeLimiter> handshakes;
    std::unique_ptr<GatewayContext> context;
    std::unique_ptr<admin::AdminServer> admin;
    std::unique_ptr<asio::signal_set> signals;
    std::size_t next_worker = 0;
    bool stopping = false;

    std::mutex connections_mutex;
    std::map<std::uint64_t, std::weak_ptr<SpiceConnection>> connections;

    void load_security();
    void bind_listeners();
    asio::awaitable<void> accept_loop(asio::ip::tcp::acceptor& acceptor, const core::ListenerConfig& listener);
    void refuse_at_accept(const core::ListenerConfig& listener, const asio::ip::tcp::endpoint& peer,
                          const std::string& why);
    void spawn(std::shared_ptr<SpiceConnection> connection, asio::io_context& io);
    nlohmann::json admin_request(const nlohmann::json& request);
    nlohmann::json issue_ticket(const nlohmann::json& request);
    void begin_shutdown();
};

void Gateway::State::load_security() {
    if (any_listener(config, true, std::nullopt)) tls = std::make_unique<TlsServerContext>(config.tls);
    if (any_listener(config, true, core::AuthMethod::sasl)) {
        std::string error;
        sasl = auth::SaslServerContext::create(config.sasl, error);
        if (!sasl) throw std::runtime_error("SASL: " + error);
        sasl->set_logger([](auth::SaslLogLevel level, std::string_view message) {
            if (level == auth::SaslLogLevel::error) spdlog::error("sasl: {}", message);
            else if (level == auth::SaslLogLevel::warning) spdlog::warn("sasl: {}", message);
            else spdlog::debug("sasl: {}", message);
        });
    }
    if (any_listener(config, true, core::AuthMethod::ticket)) ticket_keys = std::make_unique<auth::TicketKeyPool>();
    const std::string realm = sasl ? sasl->default_realm()  // the configured one, else Cyrus's
                              : config.sasl.default_realm.empty() ? host_name() : config.sasl.default_realm;
    evaluator = std::make_unique<policy::Evaluator>(config, groups, realm);
}

void Gateway::State::bind_listeners() {
    for (const auto& l : config.listeners) {
        auto acceptor = std::make_unique<asio::ip::tcp::acceptor>(main_io);
        const auto endpoint = resolve_listen_address(l);
        std::error_code ec;
        acceptor->open(endpoint.protocol(), ec);
        if (!ec) acceptor->set_option(asio::socket_base::reuse_address(true), ec);
        if (!ec) acceptor->bind(endpoint, ec);
        if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
        if (ec) throw std::runtime_error("cannot listen on " + l.address + ": " + ec.message());
        acceptors.push_back(std::move(acceptor));
        asio::co_spawn(main_io, accept_loop(*acceptors.back(), l), asio::detached);
        spdlog::info("listening on {} ({} spice{}{})", l.address, l.tls ? "TLS" : "plain",
                     l.route == core::Route::sni ? ", VM by SNI" : ", VM " + l.vm,
                     l.tls ? "" : ", answers NEED_SECURED");
    }
}

asio::awaitable<void> Gateway::State::accept_loop(asio::ip::tcp::acceptor& acceptor,
                                                  const core::ListenerConfig& listener) {
    for (;;) {
        Worker& worker = *workers[next_worker++ % workers.size()];
        std::error_code ec;
        auto socket = co_await acceptor.async_accept(worker.io, asio::redirect_error(asio::use_awaitable, ec));
        if (ec == asio::error::operation_aborted || stopping) co_return;
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
            spawn(std::make_shared<SpiceConnection>(*context, listener, std::move(socket), std::move(*slot)),
                  worker.io);
        } catch (const std::exception& e) {
            spdlog::error("connection on {}: {}", listener.address, e.what());
        }
    }
}

void Gateway::State::refuse_at_accept(const core::ListenerConfig& listener, const asio::ip::tcp::endpoint& peer,
                                      const std::string& why) {
    const std::uint64_t id = context->next_connection_id++;
    const std::string peer_text = peer.address().to_string() + ":" + std::to_string(peer.port());
    audit_log->record("accept", {{"conn", id}, {"listener", listener.address}, {"peer", peer_text}, {"tls", listener.tls}});
    audit_log->record("close", {{"conn", id}, {"peer", peer_text}, {"reason", why},
                                {"bytes_from_client", 0}, {"bytes_to_client", 0}, {"duration_ms", 0}});
}

void Gateway::State::spawn(std::shared_ptr<SpiceConnection> connection, asio::io_context& io) {
    static std::atomic<std::uint64_t> next_key{1};
    const std::uint64_t key = next_key++;
    {
        std::lock_guard lock(connections_mutex);
        connections.emplace(key, connection);
    }
    asio::co_spawn(io, [this, connection, key]() -> asio::awaitable<void> {
        try {
            co_await connection->run();
        } catch (const std::exception& e) {
            spdlog::error("connection ended unexpectedly: {}", e.what());
        }
        std::lock_guard lock(connections_mutex);
        connections.erase(key);
    }, asio::detached);
}

nlohmann::json Gateway::State::admin_request(const nlohmann::json& request) {
    const std::string op = request.value("op", "");
    if (op == "ping") return {{"ok", true}};
    if (op == "ticket") return issue_ticket(request);
    return {{"ok", false}, {"error", "unknown op \"" + op + "\"; known: ping, ticket"}};
}

nlohmann::json Gateway::State::issue_ticket(const nlohmann::json& request) {
    const std::string user = request.value("user", "");
    const std::string vm = request.value("vm", "");
    const auto ttl = std::chrono::seconds(request.value("ttl_seconds", 60));
    if (user.empty()) return {{"ok", false}, {"error", "user is required"}};
    if (!config.find_vm(vm)) return {{"ok", false}, {"error", "no VM named \"" + vm + "\""}};
    if (ttl <= std::chrono::seconds(0) || ttl > max_ticket_ttl)
        return {{"ok", false}, {"error", "ttl must be between 1 s and 24 h"}};
    if (!ticket_keys) return {{"ok", false}, {"error", "no TLS listener offers tickets (auth = [\"ticket\"])"}};
    const core::Identity who = core::Identity::parse(user);  // the store marks it "ticket"
    const std::string secret = tickets.issue(who, vm, ttl, std::chrono::steady_clock::now());
    audit_log->record("ticket_issued", {{"user", who.user}, {"realm", who.realm}, {"vm", vm}, {"ttl_s", ttl.count()}});
    return {{"ok", true}, {"ticket", secret}, {"ttl_seconds", ttl.count()}};
}

void Gateway::State::begin_shutdown() {
    if (stopping) return;
    stopping = true;
    spdlog::info("shutting down");
    for (auto& a : acceptors) a->close();
    if (admin) admin->stop();
    if (signals) signals->cancel();
    std::vector<std::shared_ptr<SpiceConnection>> live;
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
    // Connections still parked in a worker refer to the shared state: they go first.
    state_->workers.clear();
}

void Gateway::start() {
    State& s = *state_;
    if (const auto unsupported = core::unsupported_settings(s.config); !unsupported.empty()) {
        std::string message = "the configuration asks for what this version does not enforce:";
        for (const auto& e : unsupported) message += "\n  " + e.to_string();
        throw std::runtime_error(message);
    }
    s.audit_log = std::make_unique<audit::AuditLog>(s.config.gateway.audit_log);
    s.load_security();
    s.context = std::unique_ptr<GatewayContext>(new GatewayContext{
        s.config, *s.audit_log, s.clock, *s.evaluator, s.sessions, s.tickets, s.ticket_keys.get(),
        s.key_generation.get_executor(), s.sasl, s.tls.get()});
    s.handshakes = std::make_unique<HandshakeLimiter>(s.config.gateway.max_handshakes,
                                                      s.config.gateway.max_handshakes_per_source);
    unsigned n = s.config.gateway.workers;
    if (n == 0) n = std::max(1u, std::thread::hardware_concurrency());
    for (unsigned i = 0; i < n; ++i) s.workers.push_back(std::make_unique<Worker>());
    // Before any port opens: a SIGTERM from then on is an orderly shutdown, never a kill.
    s.signals = std::make_unique<asio::signal_set>(s.main_io, SIGINT, SIGTERM);
    s.bind_listeners();
    if (!s.config.gateway.admin_socket.empty())
        s.admin = std::make_unique<admin::AdminServer>(
            s.main_io, s.config.gateway.admin_socket, [&s](const nlohmann::json& r) { return s.admin_request(r); });
    for (auto& w : s.workers) w->thread = std::thread([&io = w->io] { io.run(); });
    s.audit_log->record("start", {{"listeners", s.acceptors.size()}, {"vms", s.config.vms.size()},
                                  {"config", s.config.path}});
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
