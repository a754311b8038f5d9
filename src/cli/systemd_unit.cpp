#include "cli/systemd_unit.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <iostream>

namespace vmgate::cli {

namespace {

namespace fs = std::filesystem;

// Directories systemd creates for the unit (RuntimeDirectory=, LogsDirectory=), owned by vmgate
// and writable under ProtectSystem=strict; anything else the daemon writes needs ReadWritePaths.
constexpr std::string_view kRuntimeDir = "/run/vmgate";
constexpr std::string_view kLogsDir = "/var/log/vmgate";
constexpr std::string_view kStdErr = "-";  // audit_log = "-": the journal, no file
constexpr std::uint16_t kFirstUnprivilegedPort = 1024;

// A system service runs in "/", so that is where the daemon resolves a relative path.
fs::path as_daemon_sees_it(const std::string& path) {
    return (fs::path("/") / path).lexically_normal();
}

bool is_within(const fs::path& path, std::string_view dir) {
    const fs::path relative = path.lexically_relative(dir);
    return !relative.empty() && *relative.begin() != "..";
}

void add_writable_parent(std::vector<std::string>& paths, const std::string& file, std::string_view own_dir) {
    const fs::path parent = as_daemon_sees_it(file).parent_path();
    if (is_within(parent, own_dir)) return;
    if (std::ranges::find(paths, parent.string()) == paths.end()) paths.push_back(parent.string());
}

std::string capability_lines(const UnitSettings& s) {
    if (s.privileged_listeners.empty())
        return "# No capabilities at all: every listener port is 1024 or above. For a configuration that\n"
               "# listens below 1024, `vmgate systemd-unit -c FILE` grants CAP_NET_BIND_SERVICE.\n"
               "CapabilityBoundingSet=\n"
               "AmbientCapabilities=\n";
    std::string why;
    for (const auto& address : s.privileged_listeners) why += " " + address;
    return fmt::format("# CAP_NET_BIND_SERVICE and nothing else, for the listeners below port 1024:{}\n"
                       "CapabilityBoundingSet=CAP_NET_BIND_SERVICE\n"
                       "AmbientCapabilities=CAP_NET_BIND_SERVICE\n",
                       why);
}

std::string writable_lines(const UnitSettings& s) {
    if (s.writable_paths.empty()) return "";
    std::string lines = "# Where the configuration has the daemon write outside /run/vmgate and /var/log/vmgate\n"
                        "# (\"-\": a missing directory is left for vmgate to report by name).\n";
    for (const auto& path : s.writable_paths) lines += "ReadWritePaths=-" + path + "\n";
    return lines;
}

}  // namespace

UnitSettings unit_settings(const core::Config& config, const std::string& config_path, const std::string& binary) {
    UnitSettings s;
    s.binary = binary;
    s.config_path = config_path;
    for (const auto& listener : config.listeners)
        if (listener.port < kFirstUnprivilegedPort) s.privileged_listeners.push_back(listener.address);
    if (config.gateway.audit_log != kStdErr) add_writable_parent(s.writable_paths, config.gateway.audit_log, kLogsDir);
    add_writable_parent(s.writable_paths, config.gateway.admin_socket, kRuntimeDir);
    return s;
}

std::optional<std::string> unit_path_problem(const std::string& path) {
    for (const char c : path) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte <= ' ' || byte == 0x7f)
            return "contains a space or control character, which a unit file would split or mangle";
        if (c == '"' || c == '\'' || c == '\\')
            return fmt::format("contains {}, which systemd would read as quoting", c);
        if (c == '%' || c == '$')
            return fmt::format("contains {}, which systemd would expand (specifier or variable)", c);
    }
    return std::nullopt;
}

std::string render_unit(const UnitSettings& s) {
    return fmt::format(
        R"(# vmgate.service, made by `vmgate systemd-unit`. Regenerate rather than edit:
# `vmgate systemd-unit -c /etc/vmgate/vmgate.toml > /etc/systemd/system/vmgate.service` fits the
# unit to that configuration (a port below 1024, files outside vmgate's own directories).
[Unit]
Description=vmgate: per-user, per-VM gateway to SPICE and VNC consoles
Documentation=man:vmgate(1)
# Listeners may bind one address of the host; libvirt: upstreams and saslauthd logins need
# those daemons (ordering only: neither is required).
Wants=network-online.target
After=network-online.target libvirtd.service saslauthd.service

[Service]
Type=exec
User=vmgate
Group=vmgate
ExecStart={binary} serve --config {config}
# vmgate re-reads its configuration on SIGHUP, as on `vmgate reload`.
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
# One descriptor per client channel and one per upstream connection: systemd's default soft
# limit of 1024 would end at a few hundred sessions.
LimitNOFILE=65536
UMask=0027
# /run/vmgate holds the admin socket (mode 0660: members of group vmgate may use the vmgate
# commands that talk to the daemon). Kept across restarts, as QEMU display sockets may be there.
RuntimeDirectory=vmgate
RuntimeDirectoryMode=0750
RuntimeDirectoryPreserve=yes
StateDirectory=vmgate
StateDirectoryMode=0750
# /var/log/vmgate: the audit log.
LogsDirectory=vmgate
LogsDirectoryMode=0750
{writable}
# Sandbox: vmgate faces the network, so a flaw in it must not reach further than its own files.
{capabilities}NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
# AF_UNIX: QEMU display and QMP sockets, libvirt, saslauthd, the admin socket.
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallErrorNumber=EPERM

[Install]
WantedBy=multi-user.target
)",
        fmt::arg("binary", s.binary), fmt::arg("config", s.config_path), fmt::arg("writable", writable_lines(s)),
        fmt::arg("capabilities", capability_lines(s)));
}

int run_systemd_unit(const SystemdUnitArgs& args) {
    const std::string binary = fs::absolute(args.binary).lexically_normal().string();
    const std::string config_path =
        args.config_path ? fs::absolute(*args.config_path).lexically_normal().string() : default_config_path;
    UnitSettings settings;
    if (args.config_path) {
        const auto result = core::load_config_file(*args.config_path);
        if (!result.config) {
            print_config_errors(result.errors, *args.config_path);
            return 1;
        }
        settings = unit_settings(*result.config, config_path, binary);
    } else {
        settings = unit_settings(core::Config{}, config_path, binary);
    }
    std::vector<std::pair<std::string_view, std::string>> paths{{"--binary", settings.binary},
                                                                  {"--config", settings.config_path}};
    for (const auto& path : settings.writable_paths) paths.emplace_back("a directory the configuration writes to", path);
    for (const auto& [what, path] : paths) {
        if (const auto problem = unit_path_problem(path)) {
            std::cerr << "vmgate: " << what << ": \"" << path << "\" " << *problem
                      << "; use a path without it (a symbolic link will do)\n";
            return 1;
        }
    }
    std::cout << render_unit(settings);
    return 0;
}

}  // namespace vmgate::cli
