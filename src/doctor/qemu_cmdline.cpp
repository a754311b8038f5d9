#include "doctor/qemu_cmdline.hpp"

#include "core/cidr.hpp"

#include <fmt/format.h>

namespace vmgate::doctor {
namespace {

bool is_on(const std::map<std::string, std::string>& options, const std::string& key) {
    const auto it = options.find(key);
    return it != options.end() && (it->second == "on" || it->second == "yes" || it->second == "true");
}

std::string value_or(const std::map<std::string, std::string>& options, const std::string& key,
                     const std::string& fallback = "") {
    const auto it = options.find(key);
    return it == options.end() ? fallback : it->second;
}

// A TCP port option that opens a port: present and not 0.
bool opens_port(const std::map<std::string, std::string>& options, const std::string& key) {
    const std::string value = value_or(options, key);
    return !value.empty() && value != "0";
}

std::string where_text(const std::string& host) {
    return core::is_unspecified_host(host) ? "every address" : host;
}

constexpr const char* socket_fix_spice =
    "start QEMU with -spice unix=on,addr=PATH (libvirt: <listen type='socket'/>) and reach it only through vmgate";
constexpr const char* socket_fix_vnc =
    "start QEMU with -vnc unix:PATH (libvirt: <listen type='socket'/>) and reach it only through vmgate";

Findings check_spice(const QemuProcess& p, const std::string& text) {
    const auto o = parse_qemu_options(text);
    if (is_on(o, "unix")) return {};
    const bool plain = opens_port(o, "port");
    const bool tls = opens_port(o, "tls-port");
    if (!plain && !tls) return {};
    Findings out;
    const std::string subject = process_subject(p);
    const std::string host = value_or(o, "addr");
    std::string ports = plain ? "port " + value_or(o, "port") : "";
    if (tls) ports += (plain ? ", " : "") + std::string("TLS port ") + value_or(o, "tls-port");
    if (!core::is_loopback_host(host))
        out.push_back({Severity::error, Area::qemu_process, "qemu-display-exposed", subject,
                       fmt::format("SPICE listens on {} ({}): reachable from other hosts around vmgate",
                                   where_text(host), ports),
                       socket_fix_spice});
    if (plain && tls)
        out.push_back({Severity::warning, Area::qemu_process, "qemu-spice-plain-port", subject,
                       fmt::format("SPICE has a plain port {} beside its TLS port {}: channels may cross in clear",
                                   value_or(o, "port"), value_or(o, "tls-port")),
                       "drop port= from -spice (libvirt: port='-1' with a tlsPort, defaultMode='secure')"});
    if (is_on(o, "disable-ticketing"))
        out.push_back({Severity::error, Area::qemu_process, "qemu-spice-no-password", subject,
                       fmt::format("SPICE on TCP ({}) with disable-ticketing=on: anyone who reaches the port gets the "
                                   "console without a password",
                                   ports),
                       socket_fix_spice});
    return out;
}

// "HOST:D", "[V6]:D", ":D" (every address), "unix:PATH", "none".
Findings check_vnc(const QemuProcess& p, const std::string& text) {
    const auto o = parse_qemu_options(text, "vnc");
    const std::string target = value_or(o, "vnc");
    if (target.empty() || target == "none" || target.starts_with("unix:")) return {};
    const std::size_t colon = target.rfind(':');
    if (colon == std::string::npos) return {};  // not a TCP display
    const std::string host = target.substr(0, colon);
    const std::string display = target.substr(colon + 1);
    const std::string subject = process_subject(p);
    if (!core::is_loopback_host(host))
        return {{Severity::error, Area::qemu_process, "qemu-display-exposed", subject,
                 fmt::format("VNC listens on {} (display {}): reachable from other hosts around vmgate",
                             where_text(host), display),
                 socket_fix_vnc}};
    if (!is_on(o, "password") && !is_on(o, "sasl"))
        return {{Severity::error, Area::qemu_process, "qemu-vnc-no-password", subject,
                 fmt::format("VNC listens on {} (display {}) without password=on or sasl=on: every local user "
                             "gets the console",
                             host, display),
                 socket_fix_vnc}};
    return {};
}

}  // namespace

std::vector<std::string> split_cmdline(std::string_view raw) {
    std::vector<std::string> argv;
    while (!raw.empty()) {
        const std::size_t nul = raw.find('\0');
        argv.emplace_back(raw.substr(0, nul));
        if (nul == std::string_view::npos) break;
        raw.remove_prefix(nul + 1);
    }
    return argv;
}

bool is_qemu(const std::vector<std::string>& argv) {
    if (argv.empty()) return false;
    const std::string& path = argv[0];
    const std::string base = path.substr(path.rfind('/') == std::string::npos ? 0 : path.rfind('/') + 1);
    return base.starts_with("qemu-system-") || base == "qemu-kvm" || base == "kvm";
}

std::vector<std::string> option_values(const std::vector<std::string>& argv, std::string_view name) {
    std::vector<std::string> values;
    for (std::size_t i = 1; i + 1 < argv.size(); ++i) {
        std::string_view arg = argv[i];
        if (arg.starts_with("--")) arg.remove_prefix(1);
        if (arg.size() > 1 && arg.front() == '-' && arg.substr(1) == name) values.push_back(argv[++i]);
    }
    return values;
}

std::map<std::string, std::string> parse_qemu_options(std::string_view text, std::string_view implied_key) {
    std::vector<std::string> items(1);
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] != ',') {
            items.back() += text[i];
        } else if (i + 1 < text.size() && text[i + 1] == ',') {
            items.back() += ',';
            ++i;
        } else {
            items.emplace_back();
        }
    }
    std::map<std::string, std::string> options;
    for (std::size_t i = 0; i < items.size(); ++i) {
        const std::string& item = items[i];
        if (item.empty()) continue;
        const std::size_t eq = item.find('=');
        if (eq != std::string::npos)
            options[item.substr(0, eq)] = item.substr(eq + 1);
        else if (i == 0 && !implied_key.empty())
            options[std::string(implied_key)] = item;
        else
            options[item] = "on";
    }
    return options;
}

std::string process_subject(const QemuProcess& process) {
    const auto names = option_values(process.argv, "name");
    if (names.empty()) return "process " + process.pid;
    const auto o = parse_qemu_options(names.front(), "guest");
    return fmt::format("process {} (guest {})", process.pid, value_or(o, "guest", "?"));
}

Findings check_qemu_process(const QemuProcess& process) {
    Findings out;
    for (const auto& spice : option_values(process.argv, "spice")) {
        auto found = check_spice(process, spice);
        out.insert(out.end(), found.begin(), found.end());
    }
    for (const auto& vnc : option_values(process.argv, "vnc")) {
        auto found = check_vnc(process, vnc);
        out.insert(out.end(), found.begin(), found.end());
    }
    return out;
}

}  // namespace vmgate::doctor
