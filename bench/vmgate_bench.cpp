// vmgate_bench: the load tool behind `make bench` (bench/run.py drives it). `sink` is the
// upstream every path ends in; the other modes are clients that print one JSON line of figures.
// Run `vmgate_bench MODE --help` for the options.
#include "channel.hpp"
#include "load.hpp"
#include "sink.hpp"

#include <CLI/CLI.hpp>
#include <sys/resource.h>

#include <csignal>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>

namespace {

using namespace vmgate::bench;

struct ClientOptions {
    std::string connect;
    bool tls = false;
    std::string ca;
    std::string spice_ticket;
    bool vnc = false;
    std::string vnc_user;
    std::string vnc_password;
    std::string vnc_ticket;
    unsigned concurrency = 8;
};

void add_client_options(CLI::App& mode, ClientOptions& options) {
    mode.add_option("--connect", options.connect, "HOST:PORT or unix:PATH")->required();
    auto* ca = mode.add_option("--ca", options.ca, "CA certificate that signed the server's");
    mode.add_flag("--tls", options.tls, "TLS 1.3 to the server")->needs(ca);
}

CLI::Option* add_ticket_option(CLI::App& mode, ClientOptions& options) {
    return mode.add_option("--spice-ticket", options.spice_ticket, "log into vmgate over SPICE with this ticket first");
}

// Bulk and ping-pong only: the VNC path is measured for throughput and latency.
void add_vnc_options(CLI::App& mode, ClientOptions& options, CLI::Option* spice_ticket) {
    auto* vnc = mode.add_flag("--vnc", options.vnc,
                              "be a VNC client, data framed as RFB; security None unless --vnc-user or --vnc-ticket");
    vnc->excludes(spice_ticket);
    auto* user = mode.add_option("--vnc-user", options.vnc_user, "log into vmgate with VeNCrypt X509Plain")->needs(vnc);
    auto* password = mode.add_option("--vnc-password", options.vnc_password, "the --vnc-user's password");
    user->needs(password);
    password->needs(user);
    mode.add_option("--vnc-ticket", options.vnc_ticket, "log into vmgate with VeNCrypt X509Vnc and this ticket")
        ->needs(vnc)
        ->excludes(user);
}

Login login_from(const ClientOptions& options) {
    Login login{options.spice_ticket, std::nullopt};
    if (!options.vnc) return login;
    using vmgate::vnc::VencryptSubtype;
    if (!options.vnc_user.empty())
        login.vnc = VncLogin{VencryptSubtype::x509_plain, options.vnc_user, options.vnc_password};
    else if (!options.vnc_ticket.empty())
        login.vnc = VncLogin{VencryptSubtype::x509_vnc, "", options.vnc_ticket};
    else
        login.vnc = VncLogin{};  // security None: the sink, directly or through a TLS terminator
    return login;
}

// The sink and the idle client hold one descriptor per channel: 10,000 channels need more than
// the usual soft limit of 1024.
void raise_descriptor_limit() {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &limit);
    }
}

std::vector<std::string> read_lines(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot read " + path);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);)
        if (!line.empty()) lines.push_back(line);
    return lines;
}

struct Options {
    SinkOptions sink;
    ClientOptions client;
    std::uint64_t bytes = 0;
    std::size_t count = 20000;
    std::size_t limit = 0;
    std::string tickets_file;
    double seconds = 5;
    std::size_t channels = 0;
    bool hold = false;
};

struct Modes {
    CLI::App* sink;
    CLI::App* bulk;
    CLI::App* pingpong;
    CLI::App* handshakes;
    CLI::App* idle;
};

Modes declare_modes(CLI::App& app, Options& o) {
    Modes m{};
    m.sink = app.add_subcommand("sink", "upstream sink on a unix socket (stands in for QEMU)");
    m.sink->add_option("--unix", o.sink.unix_path, "socket path")->required();
    const std::map<std::string, SinkProtocol> protocols = {
        {"raw", SinkProtocol::raw}, {"spice", SinkProtocol::spice}, {"rfb", SinkProtocol::rfb}};
    m.sink->add_option("--protocol", o.sink.protocol, "what to play before the data phase: raw (default), spice or rfb")
        ->transform(CLI::CheckedTransformer(protocols).description(""));
    m.sink->add_flag("--echo", o.sink.echo, "echo everything (default: consume bulk transfers)");

    m.bulk = app.add_subcommand("bulk", "(a) send BYTES through, timed to the sink's ack");
    add_client_options(*m.bulk, o.client);
    add_vnc_options(*m.bulk, o.client, add_ticket_option(*m.bulk, o.client));
    m.bulk->add_option("--bytes", o.bytes, "bytes to send")->required();

    m.pingpong = app.add_subcommand("pingpong", "(b) 64-byte round trips");
    add_client_options(*m.pingpong, o.client);
    add_vnc_options(*m.pingpong, o.client, add_ticket_option(*m.pingpong, o.client));
    m.pingpong->add_option("--count", o.count, "timed round trips")->capture_default_str();

    m.handshakes = app.add_subcommand("handshakes", "(c) new channels per second");
    add_client_options(*m.handshakes, o.client);
    m.handshakes->add_option("--tickets", o.tickets_file,
                             "one SPICE login per line: TICKET (at --connect) or HOST:PORT TICKET; thread t takes "
                             "lines t, t + concurrency, ...");
    m.handshakes->add_option("--seconds", o.seconds, "how long to run")->capture_default_str();
    m.handshakes->add_option("--limit", o.limit, "stop after this many new channels (0: no limit; with --tickets, "
                                                 "also when they run out)")->capture_default_str();
    m.handshakes->add_option("--concurrency", o.client.concurrency, "client threads")->capture_default_str();

    m.idle = app.add_subcommand("idle", "(d) open idle channels, print \"ready\"");
    add_client_options(*m.idle, o.client);
    add_ticket_option(*m.idle, o.client);
    m.idle->add_option("--channels", o.channels, "how many")->required();
    m.idle->add_option("--concurrency", o.client.concurrency, "client threads")->capture_default_str();
    m.idle->add_flag("--hold", o.hold, "keep them open until stdin closes");
    return m;
}

nlohmann::json run_client(const Modes& m, const Options& o) {
    std::optional<TlsClientContext> tls;
    if (o.client.tls) tls.emplace(o.client.ca);
    const Target target{Endpoint::parse(o.client.connect), tls ? &*tls : nullptr};
    const std::string& ticket = o.client.spice_ticket;
    if (*m.bulk) return run_bulk(target, login_from(o.client), o.bytes);
    if (*m.pingpong) return run_pingpong(target, login_from(o.client), o.count);
    if (*m.idle) return run_idle(target, ticket, o.channels, o.client.concurrency, o.hold);
    const auto tickets = o.tickets_file.empty() ? std::vector<std::string>{} : read_lines(o.tickets_file);
    return run_handshakes(target, tickets, std::chrono::duration<double>(o.seconds), o.client.concurrency, o.limit);
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app("vmgate benchmark load tool");
    app.require_subcommand(1);
    Options options;
    const Modes modes = declare_modes(app, options);
    CLI11_PARSE(app, argc, argv);
    raise_descriptor_limit();
    std::signal(SIGPIPE, SIG_IGN);  // a peer that closed is an error to report, not a reason to die
    try {
        if (*modes.sink) {
            run_sink(options.sink);
            return 0;
        }
        std::cout << run_client(modes, options).dump() << std::endl;
    } catch (const std::exception& e) {
        std::cerr << "vmgate_bench: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
