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
#include <optional>

namespace {

using namespace vmgate::bench;

struct ClientOptions {
    std::string connect;
    bool tls = false;
    std::string ca;
    std::string spice_ticket;
    unsigned concurrency = 8;
};

void add_client_options(CLI::App& mode, ClientOptions& options) {
    mode.add_option("--connect", options.connect, "HOST:PORT or unix:PATH")->required();
    auto* ca = mode.add_option("--ca", options.ca, "CA certificate that signed the server's");
    mode.add_flag("--tls", options.tls, "TLS 1.3 to the server")->needs(ca);
}

void add_ticket_option(CLI::App& mode, ClientOptions& options) {
    mode.add_option("--spice-ticket", options.spice_ticket, "log into vmgate over SPICE with this ticket first");
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
    m.sink->add_flag("--spice", o.sink.spice, "play spice-server's link and login first");
    m.sink->add_flag("--echo", o.sink.echo, "echo everything (default: consume bulk transfers)");

    m.bulk = app.add_subcommand("bulk", "(a) send BYTES through, timed to the sink's ack");
    add_client_options(*m.bulk, o.client);
    add_ticket_option(*m.bulk, o.client);
    m.bulk->add_option("--bytes", o.bytes, "bytes to send")->required();

    m.pingpong = app.add_subcommand("pingpong", "(b) 64-byte round trips");
    add_client_options(*m.pingpong, o.client);
    add_ticket_option(*m.pingpong, o.client);
    m.pingpong->add_option("--count", o.count, "timed round trips")->capture_default_str();

    m.handshakes = app.add_subcommand("handshakes", "(c) new channels per second");
    add_client_options(*m.handshakes, o.client);
    m.handshakes->add_option("--tickets", o.tickets_file, "one ticket per line: SPICE logins, one ticket each");
    m.handshakes->add_option("--seconds", o.seconds, "how long to run")->capture_default_str();
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
    if (*m.bulk) return run_bulk(target, ticket, o.bytes);
    if (*m.pingpong) return run_pingpong(target, ticket, o.count);
    if (*m.idle) return run_idle(target, ticket, o.channels, o.client.concurrency, o.hold);
    const auto tickets = o.tickets_file.empty() ? std::vector<std::string>{} : read_lines(o.tickets_file);
    return run_handshakes(target, tickets, std::chrono::duration<double>(o.seconds), o.client.concurrency);
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
