#include "doctor/qemu_conf.hpp"

#include "core/cidr.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <sstream>

namespace vmgate::doctor {
namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return s;
}

// The text before a "#" that is not inside quotes.
std::string_view without_comment(std::string_view line) {
    char quote = 0;
    for (std::size_t i = 0; i < line.size(); ++i) {
        const char c = line[i];
        if (quote) {
            if (c == quote) quote = 0;
        } else if (c == '"' || c == '\'') {
            quote = c;
        } else if (c == '#') {
            return line.substr(0, i);
        }
    }
    return line;
}

std::string_view display_name(Display d) { return d == Display::spice ? "spice" : "vnc"; }

std::string upper(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    return out;
}

bool is_on(const std::map<std::string, std::string>& conf, const std::string& key) {
    const auto it = conf.find(key);
    return it != conf.end() && it->second == "1";
}

}  // namespace

std::map<std::string, std::string> parse_libvirt_conf(std::string_view text) {
    std::map<std::string, std::string> out;
    int list_depth = 0;  // inside a multi-line [ ... ] value
    std::istringstream lines{std::string(text)};
    for (std::string raw; std::getline(lines, raw);) {
        const std::string_view line = trim(without_comment(raw));
        if (list_depth > 0) {
            list_depth += static_cast<int>(std::count(line.begin(), line.end(), '[')) -
                          static_cast<int>(std::count(line.begin(), line.end(), ']'));
            continue;
        }
        const std::size_t eq = line.find('=');
        if (eq == std::string_view::npos) continue;
        const std::string key(trim(line.substr(0, eq)));
        const std::string_view value = trim(line.substr(eq + 1));
        if (key.empty() || value.empty()) continue;
        if (value.front() == '[') {
            list_depth = static_cast<int>(std::count(value.begin(), value.end(), '[')) -
                         static_cast<int>(std::count(value.begin(), value.end(), ']'));
            continue;
        }
        if ((value.front() == '"' || value.front() == '\'') && value.size() >= 2 && value.back() == value.front())
            out[key] = std::string(value.substr(1, value.size() - 2));
        else
            out[key] = std::string(value);
    }
    return out;
}

std::optional<std::string> sasl_mech_list(std::string_view text) {
    std::optional<std::string> found;
    std::istringstream lines{std::string(text)};
    for (std::string raw; std::getline(lines, raw);) {
        const std::string_view line = trim(raw);
        if (line.empty() || line.front() == '#') continue;
        const std::size_t colon = line.find(':');
        if (colon == std::string_view::npos) continue;
        if (trim(line.substr(0, colon)) == "mech_list") found = std::string(trim(line.substr(colon + 1)));
    }
    return found;  // Cyrus keeps the last one
}

std::string qemu_sasl_file(const std::map<std::string, std::string>& conf, Display display) {
    const std::string name(display_name(display));
    if (!is_on(conf, name + "_sasl")) return "";
    const auto dir = conf.find(name + "_sasl_dir");
    const std::string base = dir != conf.end() && !dir->second.empty() ? dir->second : std::string(default_sasl_dir);
    return base + "/qemu-" + name + ".conf";
}

Findings check_qemu_conf(const std::map<std::string, std::string>& conf, const std::string& path) {
    Findings out;
    for (const Display d : {Display::spice, Display::vnc}) {
        const std::string name(display_name(d));
        const auto listen = conf.find(name + "_listen");
        if (listen == conf.end() || core::is_loopback_host(listen->second)) continue;  // libvirt's default: 127.0.0.1
        const std::string clear = is_on(conf, name + "_tls") ? "" : fmt::format(", and in clear text ({}_tls is off)", name);
        out.push_back({Severity::error, Area::qemu_conf, "qemu-conf-listen", path,
                       fmt::format("{}_listen = \"{}\": every {} display libvirt starts on TCP without an address "
                                   "of its own listens there, reachable from other hosts around vmgate{}",
                                   name, listen->second, upper(name), clear),
                       fmt::format("set {}_listen = \"127.0.0.1\" in {} (and give domains <listen type='socket'/>), "
                                   "then restart libvirtd and the domains",
                                   name, path)});
    }
    return out;
}

Findings check_qemu_sasl(Display display, const std::string& path, const std::optional<std::string>& text) {
    const std::string name(display_name(display));
    const std::optional<std::string> mechs = text ? sasl_mech_list(*text) : std::nullopt;
    const std::string fix = fmt::format("write \"mech_list: scram-sha-256\" (or gssapi) in {}", path);
    if (!mechs)
        return {{Severity::warning, Area::qemu_conf, "qemu-sasl-mech-list", path,
                 fmt::format("{}_sasl = 1 in qemu.conf and {} has no mech_list: Cyrus offers every installed "
                             "mechanism to QEMU's {} clients, DIGEST-MD5 too when its plugin is installed",
                             name, text ? "the file" : "there is no such file", upper(name)),
                 fix}};
    std::istringstream words{*mechs};
    for (std::string word; words >> word;)
        if (upper(word) == "DIGEST-MD5")
            return {{Severity::error, Area::qemu_conf, "qemu-sasl-digest-md5", path,
                     fmt::format("mech_list offers DIGEST-MD5 to QEMU's {} clients ({}_sasl = 1): obsolete (RFC "
                                 "6331), its password database holds plaintext-equivalent secrets",
                                 upper(name), name),
                     fmt::format("remove DIGEST-MD5 from mech_list in {} (scram-sha-256 or gssapi instead)", path)}};
    return {};
}

}  // namespace vmgate::doctor
