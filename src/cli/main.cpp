// vmgate command line: the wiring of every command to its options. The daemon (serve) and
// check-config are here; the commands that talk to the running daemon are in admin_commands,
// policy explain in policy_explain, the demo in demo.
#include "cli/admin_commands.hpp"
#include "cli/config_file.hpp"
#include "cli/demo.hpp"
#include "cli/doctor_command.hpp"
#include "cli/export_command.hpp"
#include "cli/logging.hpp"
#include "cli/man_page.hpp"
#include "cli/policy_explain.hpp"
#include "cli/systemd_unit.hpp"
#include "cli/users_command.hpp"
#include "cli/vv_command.hpp"
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
constexpr int kUsageError = 2;

constexpr const char* kDescription =
    "vmgate: per-user, per-VM access to the SPICE and VNC consoles of KVM/QEMU virtual machines.\n"
    "Clients (remote-viewer, virt-viewer, spicy, gtk-vnc, TigerVNC) connect to vmgate over TLS,\n"
    "authenticate with SASL (SCRAM-SHA-256, PLAIN: sasldb, saslauthd/PAM), a VNC user name and\n"
    "password, a client certificate (VNC) or a one-time ticket, and reach a VM's console only\n"
    "when the configured policy allows that user on that VM now.\n\n"
    "`serve` runs the gateway. `check-config` and `policy explain` read a configuration file and\n"
    "need no daemon. `users` manages the users of the configured sasldb. `ticket`, `sessions` and\n"
    "`reload` ask the running daemon through its admin socket: the one given with --admin-socket,\n"
    "else gateway.admin_socket of --config. `vv` writes a remote-viewer connection file (and asks\n"
    "the daemon for a ticket with --ticket). `export` prints client-side lockdown rules (iptables, nft,\n"
    "sudoers, sshd) made from the policy. `doctor` checks the host around the gateway (key and\n"
    "certificate, sasldb, qemu.conf, running QEMUs, libvirt domains) for ways around it.";

constexpr const char* kFooter =
    "`vmgate COMMAND --help` describes a command and its options.\n"
    "Exit status: 0 done, 1 failed or refused (the reason is on stderr), 2 usage error.";

// Everything the command line can set, one member per command.
struct Options {
    std::string serve_config = cli::default_config_path;
    std::string check_path;
    cli::AdminTarget admin;
    cli::TicketArgs ticket;
    bool sessions_json = false;
    bool vms_json = false;
    cli::KillArgs kill;
    cli::ExplainArgs explain;
    cli::UsersArgs users;
    cli::VvArgs vv;
    cli::ExportArgs export_;
    cli::DemoOptions demo;
    cli::SystemdUnitArgs systemd_unit;
    cli::DoctorArgs doctor;
};

// The file's errors, then the settings this version would not enforce; empty = usable.
core::ConfigResult load_usable_config(const std::string& config_path) {
    auto result = core::load_config_file(config_path);
    if (!result.config) return result;
    result.errors = core::unsupported_settings(*result.config);
    if (!result.errors.empty()) result.config.reset();
    return result;
}

int cmd_serve(const std::string& config_path) {
    cli::log_to_journal_if_connected();
    auto result = load_usable_config(config_path);  // Gateway::start checks too; this prints them all
    if (!result.config) {
        cli::print_config_errors(result.errors, config_path);
        return 1;
    }
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
        cli::print_config_errors(result.errors, config_path);
        return 1;
    }
    const auto& c = *result.config;
    std::cout << config_path << ": ok (" << c.listeners.size() << " listener(s), " << c.vms.size()
              << " VM(s))\n";
    return 0;
}

// -c and --admin-socket, on every command that talks to the daemon.
void add_admin_target(CLI::App& command, cli::AdminTarget& target,
                      const char* config_help = "Configuration file, to find the admin socket") {
    command.add_option("-c,--config", target.config_path, config_help)
        ->capture_default_str();
    command.add_option("--admin-socket", target.socket_path, "Admin socket path (overrides the config file)");
}

CLI::App* add_serve(CLI::App& app, Options& o) {
    auto* serve = app.add_subcommand("serve", "Run the gateway in the foreground until SIGINT/SIGTERM; SIGHUP\n"
                                              "re-reads the configuration file (see `reload`). Logs to stderr,\n"
                                              "or to the systemd journal when stderr is the journal's stream;\n"
                                              "gateway.metrics serves Prometheus metrics at /metrics");
    serve->add_option("-c,--config", o.serve_config, "Configuration file (TOML)")->capture_default_str();
    return serve;
}

CLI::App* add_check_config(CLI::App& app, Options& o) {
    auto* check = app.add_subcommand(
        "check-config", "Validate a configuration file; print FILE:LINE:COL: KEY: problem for each error");
    check->add_option("file", o.check_path, "Configuration file (TOML)")->required();
    return check;
}

CLI::App* add_ticket(CLI::App& app, Options& o) {
    auto* ticket = app.add_subcommand(
        "ticket",
        "Ask the running daemon for a one-time ticket: it logs USER into VM once (SPICE: all channels of\n"
        "one session; VNC: one connection, the ticket being the 8-character VNC password), through a\n"
        "listener that offers tickets, and expires after --ttl if unused");
    add_admin_target(*ticket, o.admin);
    ticket->add_option("-u,--user", o.ticket.user, "User the ticket logs in as (user or user@realm)")->required();
    ticket->add_option("--vm", o.ticket.vm, "VM the ticket is valid for")->required();
    ticket->add_option("--ttl", o.ticket.ttl, "How long the ticket stays valid if unused (e.g. 60s, 5m)")
        ->capture_default_str();
    ticket->add_option("--protocol", o.ticket.protocol, "Console the ticket opens: spice or vnc")
        ->check(CLI::IsMember({"spice", "vnc"}))
        ->capture_default_str();
    return ticket;
}

CLI::App* add_sessions(CLI::App& app, Options& o) {
    auto* sessions = app.add_subcommand(
        "sessions",
        "List the running daemon's live sessions, one line each: ID (for `sessions kill`), VM, USER\n"
        "(user@realm), MECH (how they authenticated), SOURCE (client address and port), SINCE (start,\n"
        "local time), CHANNELS (open SPICE channels, or vnc), IN and OUT (bytes from and to the client)");
    sessions->require_subcommand(0, 1);
    add_admin_target(*sessions, o.admin);
    sessions->add_flag("--json", o.sessions_json,
                       "Print the daemon's session objects as one JSON array instead (times in UTC, bytes exact)");
    return sessions;
}

CLI::App* add_kill(CLI::App& sessions, Options& o) {
    auto* kill = sessions.add_subcommand(
        "kill",
        "End live sessions and disconnect their clients: one by ID, every session on a VM (--vm) or\n"
        "every session of a user (--user); give exactly one. The policy is unchanged, so the user may\n"
        "connect again: to keep them out, change the configuration and `reload`. Exit 1 when no\n"
        "session matched");
    kill->add_option("ID", o.kill.id, "Session ID, as `vmgate sessions` lists it");
    kill->add_option("--vm", o.kill.vm, "End every session on this VM");
    kill->add_option("--user", o.kill.user, "End every session of this user (name, or name@realm for one realm)");
    add_admin_target(*kill, o.admin);
    return kill;
}

CLI::App* add_reload(CLI::App& app, Options& o) {
    auto* reload = app.add_subcommand(
        "reload",
        "Make the running daemon re-read its configuration file (sending it SIGHUP does the same).\n"
        "Live sessions the new policy no longer allows are ended (revoked), the others are kept;\n"
        "listeners are added and removed, the metrics endpoint follows gateway.metrics; settings\n"
        "that only a restart can apply are listed. A file with any error is refused whole, the\n"
        "errors are printed, and nothing changes (exit 1)");
    add_admin_target(*reload, o.admin);
    return reload;
}

CLI::App* add_vms(CLI::App& app, Options& o) {
    auto* vms = app.add_subcommand(
        "vms",
        "List the VMs the running daemon knows: its [[vm]] sections and, with [libvirt] vms, the\n"
        "domains of the libvirt inventory (name, UUID, state; a domain without a [[vm]] section is\n"
        "listed but nobody may use it). For each display (spice, vnc) the upstream and whether the\n"
        "daemon can reach it now: it opens a display connection the way a client's would and closes\n"
        "it before any handshake (all at once, at most 6 s). Exit 0 when every display is reachable,\n"
        "1 when one is not or the daemon cannot be asked");
    add_admin_target(*vms, o.admin);
    vms->add_flag("--json", o.vms_json, "Print the daemon's reply as JSON instead");
    return vms;
}

CLI::App* add_policy_explain(CLI::App& app, Options& o) {
    auto* policy = app.add_subcommand("policy", "Questions about the access policy of a configuration file");
    policy->require_subcommand(1);
    auto* explain = policy->add_subcommand(
        "explain",
        "Say whether USER may use VM at a time (default: now), from an address, for a channel, which\n"
        "allow rule decides and why, from the configuration file alone (no daemon is asked).\n"
        "Exit 0 allowed, 1 denied, 2 usage or configuration error");
    auto& e = o.explain;
    explain->add_option("USER", e.user, "user, or user@realm; a bare name is in the default realm\n"
                                        "([sasl] default_realm, else this host's name)")->required();
    explain->add_option("VM", e.vm, "VM name, as in [[vm]] name")->required();
    explain->add_option("-c,--config", e.config_path, "Configuration file (TOML)")->capture_default_str();
    explain->add_option("--at", e.at, "Local date and time to judge, \"YYYY-MM-DD HH:MM\" (time zone from TZ,\n"
                                      "as the daemon reads it); default: now");
    explain->add_option("--from", e.from, "Client IP address; without it, rules limited to sources do not match");
    explain->add_option("--channel", e.channel, "SPICE channel (main, display, inputs, usbredir, ...); default:\n"
                                                "the VM as a whole, as a main channel is judged");
    explain->add_flag("--json", e.json, "Print one JSON object with the decision instead");
    return explain;
}

// The sub-subcommands of `users`, in the order `vmgate users --help` lists them.
struct UsersCommands {
    CLI::App* add;
    CLI::App* passwd;
    CLI::App* del;
    CLI::App* list;
};

void add_users_options(CLI::App& command, cli::UsersArgs& args, bool names_user) {
    command.add_option("-c,--config", args.config_path, "Configuration file: [sasl] names the sasldb and the default realm")
        ->capture_default_str();
    if (names_user) {
        command.add_option("USER", args.user, "User name, without '@'")->required();
        command.add_option("--realm", args.realm, "Realm of the user (default: [sasl] default_realm, else this\n"
                                                   "host's name, as saslpasswd2 without -u)");
    } else {
        command.add_option("--realm", args.realm, "List only the users of this realm (default: every realm)");
    }
}

UsersCommands add_users(CLI::App& app, Options& o) {
    auto* users = app.add_subcommand(
        "users",
        "Manage the users of the sasldb in [sasl] sasldb (Cyrus SASL; the file stays one that saslpasswd2\n"
        "and sasldblistusers2 read and change). Passwords are read from standard input, never from the\n"
        "command line: from a terminal, asked twice without echo; from a pipe or file, its first line.\n"
        "Refused with pwcheck_method = \"saslauthd\", whose passwords live elsewhere");
    users->require_subcommand(1);
    const auto sub = [&](const char* name, const char* help, bool names_user) {
        auto* command = users->add_subcommand(name, help);
        add_users_options(*command, o.users, names_user);
        return command;
    };
    return {sub("add", "Create USER with a new password; exit 1 if USER already exists", true),
            sub("passwd", "Set a new password for USER; exit 1 if USER does not exist", true),
            sub("del", "Remove USER and every secret stored for them; exit 1 if USER does not exist", true),
            sub("list", "Print every user as user@realm, one a line, sorted (sasldblistusers2 without properties)",
                false)};
}

CLI::App* add_vv(CLI::App& app, Options& o) {
    auto* vv = app.add_subcommand(
        "vv",
        "Write a remote-viewer connection file (.vv) for VM's SPICE console through this gateway: host and\n"
        "tls-port of a SPICE TLS listener that reaches VM, the CA that signs [tls] cert, the certificate's\n"
        "subject as host-subject, secure-channels=all. Without --ticket the file stays valid: the user\n"
        "logs in with their own SASL user name and password. With --ticket it carries a one-time ticket\n"
        "from the running daemon as password (and asks remote-viewer to delete it once read); that needs\n"
        "a listener that offers tickets alone (auth = [\"ticket\"]). `remote-viewer FILE` opens it");
    auto& a = o.vv;
    vv->add_option("VM", a.vm, "VM name, as in [[vm]] name")->required();
    auto* user = vv->add_option("-u,--user", a.user, "User name written as username= (remote-viewer fills it in); with\n"
                                                     "--ticket, the user the ticket logs in (user or user@realm)");
    auto* ticket = vv->add_flag("--ticket", a.ticket, "Put a one-time ticket from the running daemon in the file");
    ticket->needs(user);
    vv->add_option("--ttl", a.ttl, "How long the ticket stays valid if unused (e.g. 60s, 5m)")
        ->capture_default_str()
        ->needs(ticket);
    vv->add_option("-o,--out", a.out, "Write the file here, mode 0600 (default: standard output)");
    vv->add_option("--host", a.host, "Host name or address clients connect to (default: the listener's address;\n"
                                     "for 0.0.0.0 or [::], the first DNS name of [tls] cert; route \"sni\":\n"
                                     "always VM + sni_suffix; with --proxy, the proxy's host)");
    vv->add_flag("--proxy", a.proxy, "Go through a route = \"connect\" listener: the file says host=VM and\n"
                                     "proxy=http://GATEWAY:PORT, so clients need no DNS name per VM and no SNI\n"
                                     "(an IP address as --host works). Without it such a listener is used only\n"
                                     "when no fixed or sni listener reaches VM");
    vv->add_option("--ca", a.ca, "CA certificate (PEM) that signs [tls] cert, for the file's ca=; needed unless\n"
                                 "[tls] cert holds the chain up to its self-signed root");
    add_admin_target(*vv, o.admin, "Configuration file: the VM, its listeners, [tls] cert and, for --ticket,\n"
                                   "the admin socket");
    return vv;
}

CLI::App* add_export(CLI::App& app, Options& o) {
    auto* command = app.add_subcommand(
        "export",
        "Print client-side lockdown rules made from the policy, for the machines users run their viewers\n"
        "on (defence in depth: the gateway still decides every connection). Time windows, source\n"
        "addresses, view-only and channel rules cannot be expressed there and are left out. A rule's user\n"
        "\"anne@REALM\" is the client's Unix account \"anne\"; unix:NAME is the client's group NAME.\n"
        "  iptables, ip6tables  iptables-restore input: chain vmgate-client, jumped to from OUTPUT, lets\n"
        "                       each user (--uid-owner) or group (--gid-owner --suppl-groups) reach the\n"
        "                       gateway ports of their VMs and resets every other new connection to a\n"
        "                       gateway port. Install: iptables-restore --noflush < FILE\n"
        "  nft                  the same as table inet vmgate_client (meta skuid/skgid; skgid sees only\n"
        "                       the primary group). Install: nft -f FILE (replaces that table only)\n"
        "  sudoers              a group per VM (--group-prefix + VM, create it with groupadd --system):\n"
        "                       the VM's users may run --viewer with exactly the arguments that open the\n"
        "                       VM, with that group: sudo -g vmgate-vm1 /usr/bin/remote-viewer\n"
        "                       'spice://10.0.0.1?tls-port=5901'. Combine with --by-vm-group rules.\n"
        "                       Install: visudo -c -f FILE && install -m 0440 FILE /etc/sudoers.d/vmgate\n"
        "  sshd                 Match User/Group blocks for an SSH host users tunnel through: PermitOpen\n"
        "                       only their gateway ports, no shell, TTY or other forwarding. Install:\n"
        "                       append to the end of sshd_config, then sshd -t\n"
        "User and group names must exist on the machine that loads iptables and nft rules.");
    auto& a = o.export_;
    command->add_option("FORMAT", a.format, "iptables, ip6tables, nft, sudoers or sshd")
        ->required()
        ->check(CLI::IsMember(std::vector<std::string>(std::begin(cli::export_formats), std::end(cli::export_formats))));
    command->add_option("-c,--config", a.config_path, "Configuration file (TOML)")->capture_default_str();
    command->add_option("--host", a.host, "The gateway's address as clients reach it (default: each listener's\n"
                                          "address; iptables and nft need an IP address, and 0.0.0.0 or [::]\n"
                                          "always needs --host)");
    command->add_flag("--by-vm-group", a.by_vm_group, "iptables, ip6tables, nft: admit each VM's group from the\n"
                                                      "sudoers export instead of the policy's users and groups");
    command->add_option("--group-prefix", a.group_prefix, "sudoers and --by-vm-group: a VM's group is this + its name")
        ->capture_default_str();
    command->add_option("--viewer", a.viewer, "sudoers: the viewer's absolute path")->capture_default_str();
    command->add_option("--viewer-arg", a.viewer_args, "sudoers: an argument the viewer gets before the URI (repeat\n"
                                                       "for several, in order); one that starts with '-' is given with '=':\n"
                                                       "--viewer-arg=--spice-ca-file=/etc/vmgate/ca.pem");
    return command;
}

CLI::App* add_demo(CLI::App& app, Options& o) {
    auto* demo = app.add_subcommand(
        "demo", "Start two small QEMU VMs and a gateway in front of them on loopback, print how to connect\n"
                "(remote-viewer commands, demo users and passwords), run until Ctrl-C");
    demo->add_option("--state-dir", o.demo.state_dir, "Where certificates, sasldb, logs and demo.json go")
        ->capture_default_str();
    demo->add_option("--qemu", o.demo.qemu_binary, "QEMU binary the demo VMs run on (TCG, no disk)")
        ->capture_default_str();
    return demo;
}

CLI::App* add_systemd_unit(CLI::App& app, Options& o) {
    auto* unit = app.add_subcommand(
        "systemd-unit",
        "Print the systemd service unit that runs `vmgate serve` as the user vmgate in a strict sandbox\n"
        "(read-only system, no home directories, no devices, no capabilities, system calls of services\n"
        "only). Without --config: the unit for the default settings, as installed (vmgate.service).\n"
        "With --config: the unit for that file, which it runs: CAP_NET_BIND_SERVICE when a listener's\n"
        "port is below 1024, ReadWritePaths for an audit log or admin socket outside /var/log/vmgate\n"
        "and /run/vmgate. Install it as /etc/systemd/system/vmgate.service, then `systemctl daemon-reload`");
    unit->add_option_function<std::string>(
        "-c,--config", [&o](const std::string& path) { o.systemd_unit.config_path = path; },
        "Configuration file the unit runs and is fitted to (default: none, the default settings and\n"
        "/etc/vmgate/vmgate.toml)");
    unit->add_option("--binary", o.systemd_unit.binary, "Path of the vmgate binary the unit starts")->capture_default_str();
    return unit;
}

// Hidden (no group): the build makes vmgate.1 with it; people read the page, not this command.
CLI::App* add_man(CLI::App& app) {
    return app.add_subcommand("man", "Print the manual page vmgate.1 (roff), made from this help text")->group("");
}

CLI::App* add_doctor(CLI::App& app, Options& o) {
    auto* doctor = app.add_subcommand(
        "doctor",
        "Check this host for ways around the gateway and for what would stop it, each finding with a\n"
        "one-line fix: [tls] key and sasldb ownership and permissions, the certificate's readability,\n"
        "expiry and names (listener hosts, *.sni_suffix), libvirt's qemu.conf (spice_listen/vnc_listen,\n"
        "QEMU's SASL mech_list with DIGEST-MD5), running QEMU command lines (-spice/-vnc on TCP off\n"
        "loopback, a plain port beside the TLS port, disable-ticketing), libvirt domain XMLs (TCP\n"
        "listeners, defaultMode='any'), the PAM services saslauthd needs. Reads only, changes nothing.\n"
        "Exit 0 nothing found, 1 warnings only, 2 errors (or an invalid configuration)");
    auto& d = o.doctor;
    doctor->add_option("-c,--config", d.config_path, "Configuration file (TOML); default /etc/vmgate/vmgate.toml,\n"
                                                     "under --root when given")
        ->type_name("FILE");
    doctor->add_option("--libvirt", d.libvirt_uri, "Also read every domain of this libvirt URI (read-only\n"
                                                   "connection), e.g. qemu:///system")
        ->type_name("URI");
    doctor->add_option("--root", d.root, "Read every host file under DIR instead of /: etc/libvirt/qemu.conf,\n"
                                         "etc/libvirt/qemu/*.xml, etc/sasl2, etc/pam.d, proc/PID/cmdline and the\n"
                                         "configuration's absolute paths (for an image or a test tree)")
        ->type_name("DIR");
    doctor->add_option("--user", d.user, "User vmgate runs as, who must be able to read the key and sasldb\n"
                                         "(default: vmgate if that user exists, else the current user)")
        ->type_name("USER");
    doctor->add_flag("--json", d.json, "Print one JSON object {findings: [{severity, id, area, subject,\n"
                                       "problem, fix}], errors, warnings, checked} instead");
    return doctor;
}

}  // namespace

int main(int argc, char** argv) {
    // OpenSSL writes to sockets with write(2): a vanished client must not kill the daemon.
    std::signal(SIGPIPE, SIG_IGN);

    CLI::App app{kDescription, "vmgate"};
    app.set_version_flag("--version", version);
    app.require_subcommand(1);

    Options o;
    auto* serve = add_serve(app, o);
    auto* check = add_check_config(app, o);
    auto* ticket = add_ticket(app, o);
    auto* sessions = add_sessions(app, o);
    auto* kill = add_kill(*sessions, o);
    auto* reload = add_reload(app, o);
    auto* vms = add_vms(app, o);
    auto* explain = add_policy_explain(app, o);
    const auto users = add_users(app, o);
    auto* vv = add_vv(app, o);
    auto* export_command = add_export(app, o);
    auto* demo = add_demo(app, o);
    auto* systemd_unit = add_systemd_unit(app, o);
    auto* man = add_man(app);
    auto* doctor = add_doctor(app, o);
    app.footer(kFooter);  // after the subcommands, which would inherit it

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        // CLI11's own codes (106, 109, ...) mean nothing to scripts; 2 is the usual usage error.
        return app.exit(e) == 0 ? 0 : kUsageError;
    }

    if (*serve) return cmd_serve(o.serve_config);
    if (*check) return cmd_check_config(o.check_path);
    if (*ticket) return cli::run_ticket(o.admin, o.ticket);
    if (*kill) return cli::run_kill(o.admin, o.kill);
    if (*sessions) return cli::run_sessions(o.admin, o.sessions_json);
    if (*reload) return cli::run_reload(o.admin);
    if (*vms) return cli::run_vms(o.admin, o.vms_json);
    if (*explain) return cli::run_policy_explain(o.explain);
    if (*users.add) return cli::run_users_add(o.users);
    if (*users.passwd) return cli::run_users_passwd(o.users);
    if (*users.del) return cli::run_users_del(o.users);
    if (*users.list) return cli::run_users_list(o.users);
    if (*vv) return cli::run_vv(o.admin, o.vv);
    if (*export_command) return cli::run_export(o.export_);
    if (*demo) return cli::run_demo(o.demo);
    if (*systemd_unit) return cli::run_systemd_unit(o.systemd_unit);
    if (*man) {
        std::cout << cli::render_man_page(app, version);
        return 0;
    }
    if (*doctor) return cli::run_doctor(o.doctor);
    return kUsageError;
}
