// vmgate command line: the daemon (serve), its tools (check-config, ticket) and the demo.
#include "admin/admin_server.hpp"
#include "cli/demo.hpp"
#include "core/config.hpp"
#include "core/config_support.hpp"
#include "net/gateway.hpp"

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <csignal>
#include <iostream>

namespace {

using namespace vmgate;

constexpr const char* version = "0.1.0";

int print_config_errors(const core::ConfigResult& result) {
    for (const auto& e : result.errors) std::cerr << e.to_string() << "\n";
    return result.errors.empty() ? 0 : 1;
}

// The file's errors, then the settings this version would not enforce; empty = usable.
core::ConfigResult load_usable_config(const std::string& config_path) {
    auto result = core::load_config_file(config_path);
    if (!result.config) return result;
    result.errors = core::unsupported_settings(*result.config);
    if (!result.errors.empty()) result.config.reset();
    return result;
}

int cmd_serve(const std::string& config_path) {
    auto result = load_usable_config(config_path);  // Gateway::start checks too; this prints them all
    if (!result.config) return print_config_errors(result);
    try {
        net::Gateway gateway(std::move(*result.config));
        gateway.start();
        return gateway.run_until_signal();
    } catch (const std::exception& e) {
        spdlog::critical("{}", e.what());
        return 1;
    }
}

int cmd_check_config(const std::string& config_path) {
    auto result = load_usable_config(config_path);
    if (!result.config) {
        print_config_errors(result);
        std::cerr << result.errors.size() << " error(s) in " << config_path << "\n";
        return 1;
    }
    const auto& c = *result.config;
    std::cout << config_path << ": ok (" << c.listeners.size() << " listener(s), " << c.vms.size()
              << " VM(s))\n";
    return 0;
}

int cmd_ticket(const std::string& config_path, std::string socket_path, const std::string& user,
               const std::string& vm, const std::string& ttl_text) {
    if (socket_path.empty()) {
        auto result = core::load_config_file(config_path);
        if (!result.config) return print_config_errors(result);
        socket_path = result.config->gateway.admin_socket;
    }
    const auto ttl = core::parse_duration(ttl_text);
    if (!ttl) {
        std::cerr << "--ttl: expected a duration such as 60s, 5m or 1h, got \"" << ttl_text << "\"\n";
        return 2;
    }
    try {
        const auto reply = admin::call(socket_path, {{"op", "ticket"}, {"user", user}, {"vm", vm},
                                                     {"ttl_seconds", ttl->count()}});
        if (!reply.value("ok", false)) {
            std::cerr << "vmgate: " << reply.value("error", "the daemon refused") << "\n";
            return 1;
        }
        std::cout << reply.value("ticket", "") << "\n";
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "vmgate: " << e.what() << "\n";
        return 1;
    }
}

}  // namespace

int main(int argc, char** argv) {
    // OpenSSL writes to sockets with write(2): a vanished client must not kill the daemon.
    std::signal(SIGPIPE, SIG_IGN);

    CLI::App app{"vmgate: per-user, per-VM access to the SPICE consoles of KVM/QEMU virtual machines.\n"
                 "Clients (remote-viewer, virt-viewer, spicy) connect to vmgate over TLS, authenticate with\n"
                 "SASL (SCRAM-SHA-256, PLAIN: sasldb, saslauthd/PAM) or a one-time ticket, and reach a VM's\n"
                 "console only when the configured policy allows that user on that VM now.",
                 "vmgate"};
    app.set_version_flag("--version", version);
    app.require_subcommand(1);

    std::string config_path = "/etc/vmgate/vmgate.toml";

    auto* serve = app.add_subcommand("serve", "Run the gateway in the foreground until SIGINT/SIGTERM");
    serve->add_option("-c,--config", config_path, "Configuration file (TOML)")->capture_default_str();

    std::string check_path;
    auto* check = app.add_subcommand("check-config",
                                     "Validate a configuration file; print FILE:LINE:COL: KEY: problem for each error");
    check->add_option("file", check_path, "Configuration file (TOML)")->required();

    std::string socket_path, user, vm, ttl = "60s";
    auto* ticket = app.add_subcommand(
        "ticket",
        "Ask the running daemon for a one-time SPICE ticket: it logs USER into VM once (all channels of one\n"
        "session), through a listener that offers tickets, and expires after --ttl if unused");
    ticket->add_option("-c,--config", config_path, "Configuration file, to find the admin socket")
        ->capture_default_str();
    ticket->add_option("--admin-socket", socket_path, "Admin socket path (overrides the config file)");
    ticket->add_option("-u,--user", user, "User the ticket logs in as (user or user@realm)")->required();
    ticket->add_option("--vm", vm, "VM the ticket is valid for")->required();
    ticket->add_option("--ttl", ttl, "How long the ticket stays valid if unused (e.g. 60s, 5m)")
        ->capture_default_str();

    cli::DemoOptions demo_options;
    auto* demo = app.add_subcommand(
        "demo", "Start two small QEMU VMs and a gateway in front of them on loopback, print how to connect\n"
                "(remote-viewer commands, demo users and passwords), run until Ctrl-C");
    demo->add_option("--state-dir", demo_options.state_dir, "Where certificates, sasldb, logs and demo.json go")
        ->capture_default_str();
    demo->add_option("--qemu", demo_options.qemu_binary, "QEMU binary the demo VMs run on (TCG, no disk)")
        ->capture_default_str();

    CLI11_PARSE(app, argc, argv);

    if (*serve) return cmd_serve(config_path);
    if (*check) return cmd_check_config(check_path);
    if (*ticket) return cmd_ticket(config_path, socket_path, user, vm, ttl);
    if (*demo) return cli::run_demo(demo_options);
    return 2;
}
