#include "lockdown/sudoers.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

namespace vmgate::lockdown {

namespace {

constexpr std::string_view kSudoersSpecial = ",:=#";
constexpr std::string_view kGlobSpecial = "*?[]";

bool is_plain_path_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("/_.+-").find(c) != std::string_view::npos;
}

// "VMGATE_VM1" for vm1: alias names are upper case; VM names never hold '_', so '-' -> '_' is
// one to one.
std::string alias_name(std::string_view vm) {
    std::string out = "VMGATE_";
    for (const char c : vm) out += c == '-' ? '_' : static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
    return out;
}

std::string uri_host(const Console& console) {
    if (console.route == core::Route::sni) return console.server_name;
    return console.endpoint.is_ipv6() ? "[" + console.endpoint.host + "]" : console.endpoint.host;
}

std::vector<std::string> option_errors(const SudoersOptions& options) {
    std::vector<std::string> errors;
    if (!options.viewer.starts_with('/') ||
        !std::all_of(options.viewer.begin(), options.viewer.end(), is_plain_path_char))
        errors.push_back(fmt::format("--viewer \"{}\": give the viewer's absolute path, made of letters, digits and "
                                     "/ _ . + - (sudoers matches commands by full path)",
                                     options.viewer));
    for (const auto& argument : options.viewer_args)
        if (!sudoers_argument(argument))
            errors.push_back(fmt::format("--viewer-arg \"{}\": sudoers cannot match an argument with white space or "
                                         "control characters exactly; leave it out",
                                         argument));
    return errors;
}

// "VIEWER ARGS... URI" for every console of `vm` a viewer can open.
std::vector<std::string> commands(const VmAccess& vm, const SudoersOptions& options) {
    std::vector<std::string> prefix{options.viewer};
    for (const auto& argument : options.viewer_args) prefix.push_back(*sudoers_argument(argument));
    std::vector<std::string> out;
    for (const auto& console : vm.consoles) {
        const auto uri = viewer_uri(console);
        if (!uri) continue;
        out.push_back(fmt::format("{} {}", fmt::join(prefix, " "), *sudoers_argument(*uri)));
    }
    return out;
}

std::string user_list(const std::vector<Principal>& principals) {
    std::vector<std::string> names;
    for (const auto& p : principals) names.push_back(p.kind == PrincipalKind::group ? "%" + p.name : p.name);
    return fmt::format("{}", fmt::join(names, ", "));
}

std::string vm_entry(const VmAccess& vm, const SudoersOptions& options) {
    if (vm.principals.empty()) return fmt::format("\n# {}: nobody may use it\n", vm.vm);
    const auto lines = commands(vm, options);
    if (lines.empty()) return fmt::format("\n# {}: no TLS console that a viewer opens by URI\n", vm.vm);
    const std::string alias = alias_name(vm.vm);
    const std::string group = vm_group(options.group_prefix, vm.vm);
    return fmt::format("\n# {0} (group {1})\nCmnd_Alias {2} = \\\n\t{3}\n"
                       "Defaults!{2} env_keep += \"WAYLAND_DISPLAY XDG_RUNTIME_DIR\"\n"
                       "{4} ALL = (:{1}) NOPASSWD: {2}\n",
                       vm.vm, group, alias, fmt::join(lines, ", \\\n\t"), user_list(vm.principals));
}

}  // namespace

std::optional<std::string> viewer_uri(const Console& console) {
    // Only fixed and SNI listeners are opened by URI alone.
    if (console.route != core::Route::fixed && console.route != core::Route::sni) return std::nullopt;
    if (console.protocol == core::Protocol::vnc)
        return fmt::format("vnc://{}:{}", uri_host(console), console.endpoint.port);
    if (!console.tls) return std::nullopt;
    return fmt::format("spice://{}?tls-port={}", uri_host(console), console.endpoint.port);
}

std::optional<std::string> sudoers_argument(std::string_view argument) {
    std::string out;
    for (std::size_t i = 0; i < argument.size(); ++i) {
        const char c = argument[i];
        const auto byte = static_cast<unsigned char>(c);
        if (byte <= 0x20 || byte == 0x7f) return std::nullopt;
        if (c == '\\') {  // sudoers reads "\\\\" as "\\", which fnmatch reads as '\'
            out += "\\\\\\\\";
            continue;
        }
        if (kSudoersSpecial.find(c) != std::string_view::npos || kGlobSpecial.find(c) != std::string_view::npos ||
                 (c == '^' && i == 0))
            out += '\\';
        out += c;
    }
    return out;
}

Generated sudoers_rules(const AccessMap& access, const SudoersOptions& options) {
    Generated result;
    result.errors = option_errors(options);
    const auto group_errors = vm_group_errors(access, options.group_prefix);
    result.errors.insert(result.errors.end(), group_errors.begin(), group_errors.end());
    if (!result.errors.empty()) return result;

    result.text = header_comment("sudoers", access);
    result.text += fmt::format(
        "# Check and install: visudo -c -f FILE && install -m 0440 FILE /etc/sudoers.d/vmgate\n"
        "# Each VM has a group of its own with no members (create it once: groupadd --system {0}VM).\n"
        "# Its users may run the viewer with exactly the arguments below, and only with that group:\n"
        "#   sudo -g {0}VM {1} ...\n"
        "# `vmgate export iptables --by-vm-group` (or nft) then lets only that group reach the VM's ports.\n"
        "# DISPLAY and XAUTHORITY pass by sudo's default; env_keep adds what Wayland needs.\n",
        options.group_prefix, options.viewer);
    for (const auto& vm : access.vms) result.text += vm_entry(vm, options);
    return result;
}

}  // namespace vmgate::lockdown
