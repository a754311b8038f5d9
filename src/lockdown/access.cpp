#include "lockdown/access.hpp"

#include "core/cidr.hpp"
#include "core/identity.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <set>

namespace vmgate::lockdown {

namespace {

constexpr std::string_view kUnixPrefix = "unix:";
constexpr std::size_t kMaxNameLength = 32;

bool is_ascii_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_ascii_digit(char c) { return c >= '0' && c <= '9'; }

template <typename T>
void sort_unique(std::vector<T>& items) {
    std::sort(items.begin(), items.end());
    items.erase(std::unique(items.begin(), items.end()), items.end());
}

// Why `host` cannot be the address client-side rules name; "" when it can.
std::string host_problem(const std::string& host, bool need_ip) {
    const auto ip = core::IpAddress::parse(host);
    if (ip && core::is_unspecified_host(host))
        return fmt::format("{} means every address of the gateway, which clients cannot connect to", host);
    if (!ip && need_ip) return fmt::format("iptables and nft rules match IP addresses, and \"{}\" is not one", host);
    return "";
}

struct PolicyReader {
    const core::Config& config;
    std::vector<std::string> errors;

    std::string where(const core::VmConfig& vm, std::size_t rule_index, const core::AllowRule& rule) const {
        return fmt::format("{}:{}: vm \"{}\" allow[{}]", config.path, rule.where.line, vm.name, rule_index);
    }

    void add(std::vector<Principal>& out, PrincipalKind kind, const std::string& name, std::string_view written,
             const std::string& location) {
        if (is_portable_name(name)) {
            out.push_back({kind, name});
            return;
        }
        errors.push_back(fmt::format(
            "{}: {} \"{}\" gives the client-side {} name \"{}\", which is not portable (ASCII letters, digits, "
            "'_', '.', '-', starting with a letter or '_', at most {} characters); rename it in the policy or "
            "leave it out of client rules",
            location, kind == PrincipalKind::user ? "user" : "group", written,
            kind == PrincipalKind::user ? "user" : "group", name, kMaxNameLength));
    }

    void add_member(std::vector<Principal>& out, const std::string& member, const std::string& location) {
        if (member.starts_with(kUnixPrefix)) {
            add(out, PrincipalKind::group, member.substr(kUnixPrefix.size()), member, location);
            return;
        }
        add(out, PrincipalKind::user, std::string(core::Identity::split(member).first), member, location);
    }

    std::vector<Principal> principals(const core::VmConfig& vm) {
        std::vector<Principal> out;
        for (std::size_t i = 0; i < vm.allow.size(); ++i) {
            const auto& rule = vm.allow[i];
            const std::string location = where(vm, i, rule);
            for (const auto& user : rule.users) add_member(out, user, location);
            for (const auto& group : rule.groups) {
                const auto members = config.groups.find(group);
                if (members == config.groups.end()) {  // "unix:NAME": the config checked the rest
                    add_member(out, group, location);
                    continue;
                }
                for (const auto& member : members->second) add_member(out, member, location);
            }
        }
        sort_unique(out);
        return out;
    }
};

// Whether `vm` has a console of `protocol` (its own upstream, or libvirt's for an inventory VM).
bool serves(const core::Config& config, const core::VmConfig& vm, core::Protocol protocol) {
    const bool own = protocol == core::Protocol::spice ? vm.spice.has_value() : vm.vnc.has_value();
    return own || config.libvirt.lists(vm.name);
}

struct ListenerReader {
    const core::Config& config;
    const AccessOptions& options;
    std::vector<std::string> errors;

    std::optional<Endpoint> endpoint(std::size_t index, const core::ListenerConfig& listener) {
        const std::string host = options.host.empty() ? listener.host : std::string(core::unbracketed(options.host));
        const std::string problem = host_problem(host, options.need_ip);
        if (problem.empty()) return Endpoint{host, listener.port};
        if (options.host.empty())
            errors.push_back(fmt::format("{}:{}: listener[{}] ({}): {}; give --host with the gateway's IP address "
                                         "as clients reach it",
                                         config.path, listener.where.line, index, listener.address, problem));
        else if (std::find(errors.begin(), errors.end(), "--host: " + problem) == errors.end())
            errors.push_back("--host: " + problem);
        return std::nullopt;
    }
};

Console console_for(const core::ListenerConfig& listener, const Endpoint& endpoint, const std::string& vm) {
    Console console{listener.protocol, listener.route, endpoint, listener.tls, ""};
    if (listener.route == core::Route::sni) console.server_name = vm + listener.sni_suffix;
    return console;
}

}  // namespace

bool Endpoint::is_ipv6() const { return host.find(':') != std::string::npos; }

std::string Endpoint::to_string() const {
    return is_ipv6() ? fmt::format("[{}]:{}", host, port) : fmt::format("{}:{}", host, port);
}

std::vector<Endpoint> VmAccess::endpoints() const {
    std::vector<Endpoint> out;
    for (const auto& console : consoles) out.push_back(console.endpoint);
    sort_unique(out);
    return out;
}

bool is_portable_name(std::string_view name) {
    if (name.empty() || name.size() > kMaxNameLength) return false;
    if (!is_ascii_letter(name.front()) && name.front() != '_') return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
        return is_ascii_letter(c) || is_ascii_digit(c) || c == '_' || c == '.' || c == '-';
    });
}

std::string vm_group(std::string_view prefix, std::string_view vm) { return std::string(prefix) + std::string(vm); }

std::vector<std::string> vm_group_errors(const AccessMap& access, std::string_view prefix) {
    std::vector<std::string> errors;
    for (const auto& vm : access.vms) {
        const std::string group = vm_group(prefix, vm.vm);
        if (vm.principals.empty() || is_portable_name(group)) continue;
        errors.push_back(fmt::format(
            "VM \"{}\": its group would be \"{}\", which is not a portable group name (ASCII letters, digits, "
            "'_', '.', '-', starting with a letter or '_', at most {} characters); choose another --group-prefix",
            vm.vm, group, kMaxNameLength));
    }
    return errors;
}

AccessResult build_access(const core::Config& config, const AccessOptions& options) {
    AccessMap access;
    access.config_path = config.path;
    ListenerReader listeners{config, options, {}};
    PolicyReader policy{config, {}};

    // Fixed listeners reach their VM; every other route (SNI) picks the VM per connection, so
    // it reaches every VM that has a console of its protocol.
    std::map<std::string, std::vector<Console>> consoles;
    for (std::size_t i = 0; i < config.listeners.size(); ++i) {
        const auto& listener = config.listeners[i];
        const auto endpoint = listeners.endpoint(i, listener);
        if (!endpoint) continue;
        access.gateway_ports.push_back(*endpoint);
        if (listener.route == core::Route::fixed) {
            consoles[listener.vm].push_back(console_for(listener, *endpoint, listener.vm));
            continue;
        }
        access.shared_ports.push_back(*endpoint);
        for (const auto& vm : config.vms)
            if (serves(config, vm, listener.protocol))
                consoles[vm.name].push_back(console_for(listener, *endpoint, vm.name));
    }
    for (const auto& vm : config.vms) {
        VmAccess entry{vm.name, consoles[vm.name], policy.principals(vm)};
        sort_unique(entry.consoles);
        access.vms.push_back(std::move(entry));
    }
    std::sort(access.vms.begin(), access.vms.end(), [](const auto& a, const auto& b) { return a.vm < b.vm; });
    sort_unique(access.gateway_ports);
    sort_unique(access.shared_ports);

    AccessResult result;
    result.errors = std::move(listeners.errors);
    result.errors.insert(result.errors.end(), policy.errors.begin(), policy.errors.end());
    if (result.errors.empty()) result.access = std::move(access);
    return result;
}

std::map<Principal, PrincipalAccess> access_by_principal(const AccessMap& access) {
    std::map<Principal, PrincipalAccess> out;
    for (const auto& vm : access.vms) {
        const auto endpoints = vm.endpoints();
        for (const auto& principal : vm.principals) {
            auto& entry = out[principal];
            entry.endpoints.insert(entry.endpoints.end(), endpoints.begin(), endpoints.end());
            entry.vms.push_back(vm.vm);
        }
    }
    for (auto& [principal, entry] : out) {
        sort_unique(entry.endpoints);
        sort_unique(entry.vms);
    }
    return out;
}

std::string header_comment(std::string_view format, const AccessMap& access) {
    std::string out = fmt::format(
        "# vmgate client lockdown ({}), made by `vmgate export {}` from {}.\n"
        "# Defence in depth for client machines: who may reach which gateway port at all. Make it again\n"
        "# whenever the policy changes; edits by hand are lost.\n"
        "# Not expressed here: time windows (days, hours, from, until), source addresses, view-only and\n"
        "# channel rules. The gateway still decides every connection.\n"
        "# A rule's user \"anne\" or \"anne@REALM\" is the client's Unix account \"anne\" (the realm is\n"
        "# dropped); \"unix:NAME\" is the client's Unix group NAME; [groups] are expanded to their members.\n",
        format, format, access.config_path);
    if (!access.shared_ports.empty()) {
        std::vector<std::string> ports;
        for (const auto& endpoint : access.shared_ports) ports.push_back(endpoint.to_string());
        out += fmt::format(
            "# Shared ports (route = \"sni\": every VM behind one port): {}. Anyone with at least one VM\n"
            "# with a console of that port's protocol may reach them; the gateway decides which VM they get.\n",
            fmt::join(ports, " "));
    }
    return out;
}

}  // namespace vmgate::lockdown
