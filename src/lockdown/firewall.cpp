#include "lockdown/firewall.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <map>

namespace vmgate::lockdown {

namespace {

constexpr std::string_view kChain = "vmgate-client";
constexpr std::string_view kTable = "vmgate_client";

// How a rule recognises the process that opened a socket.
enum class OwnerMatch {
    uid,            // its user
    gid_any,        // one of its groups, supplementary ones included (iptables only)
    gid_effective,  // its (effective) group: what `sudo -g GROUP` sets
};

// The endpoints one owner may reach.
struct Grant {
    std::string comment;
    OwnerMatch match = OwnerMatch::uid;
    std::string name;
    std::vector<Endpoint> endpoints;
};

bool in_family(const Endpoint& endpoint, FirewallFormat format) {
    switch (format) {
    case FirewallFormat::iptables: return !endpoint.is_ipv6();
    case FirewallFormat::ip6tables: return endpoint.is_ipv6();
    case FirewallFormat::nft: return true;
    }
    return false;
}

std::vector<Endpoint> in_family(const std::vector<Endpoint>& endpoints, FirewallFormat format) {
    std::vector<Endpoint> out;
    for (const auto& endpoint : endpoints)
        if (in_family(endpoint, format)) out.push_back(endpoint);
    return out;
}

std::string principal_text(const Principal& principal) {
    return principal.kind == PrincipalKind::user ? principal.name : "group " + principal.name;
}

std::vector<Grant> principal_grants(const AccessMap& access, FirewallFormat format) {
    std::vector<Grant> grants;
    // nft has no supplementary-group match: skgid is the socket owner's own group.
    const OwnerMatch group_match = format == FirewallFormat::nft ? OwnerMatch::gid_effective : OwnerMatch::gid_any;
    for (const auto& [principal, reach] : access_by_principal(access)) {
        grants.push_back({fmt::format("{}: {}", principal_text(principal), fmt::join(reach.vms, ", ")),
                          principal.kind == PrincipalKind::user ? OwnerMatch::uid : group_match, principal.name,
                          in_family(reach.endpoints, format)});
    }
    return grants;
}

std::vector<Grant> vm_group_grants(const AccessMap& access, const FirewallOptions& options) {
    std::vector<Grant> grants;
    for (const auto& vm : access.vms) {
        if (vm.principals.empty()) continue;  // no sudoers line, so no group process to admit
        const std::string group = vm_group(options.group_prefix, vm.vm);
        grants.push_back({fmt::format("{}: sudo -g {} (the sudoers export)", vm.vm, group), OwnerMatch::gid_effective,
                          group, in_family(vm.endpoints(), options.format)});
    }
    return grants;
}

std::string family_name(FirewallFormat format) { return format == FirewallFormat::ip6tables ? "IPv6" : "IPv4"; }

std::string iptables_owner(const Grant& grant) {
    switch (grant.match) {
    case OwnerMatch::uid: return "--uid-owner " + grant.name;
    case OwnerMatch::gid_any: return "--gid-owner " + grant.name + " --suppl-groups";
    case OwnerMatch::gid_effective: return "--gid-owner " + grant.name;
    }
    return "";
}

std::string iptables_text(const std::vector<Grant>& grants, const std::vector<Endpoint>& ports,
                          const FirewallOptions& options, const std::vector<Endpoint>& elsewhere) {
    const std::string tool = options.format == FirewallFormat::ip6tables ? "ip6tables" : "iptables";
    std::string out = fmt::format(
        "# Load it with `{0}-restore --noflush < FILE` (keeps the other rules), or make it part of a full\n"
        "# rule file such as /etc/iptables/rules.v{1}. Loading it again adds a second jump from OUTPUT:\n"
        "# remove the first with `{0} -D OUTPUT -p tcp -j {2}`.\n",
        tool, options.format == FirewallFormat::ip6tables ? 6 : 4, kChain);
    if (!elsewhere.empty()) {
        std::vector<std::string> names;
        for (const auto& endpoint : elsewhere) names.push_back(endpoint.to_string());
        out += fmt::format("# Gateway ports of the other address family, not covered here (see `vmgate export {}`): {}\n",
                           options.format == FirewallFormat::iptables ? "ip6tables" : "iptables", fmt::join(names, " "));
    }
    out += fmt::format("*filter\n:{0} - [0:0]\n-A OUTPUT -p tcp -j {0}\n", kChain);
    for (const auto& grant : grants) {
        if (grant.endpoints.empty()) continue;
        out += "# " + grant.comment + "\n";
        for (const auto& e : grant.endpoints)
            out += fmt::format("-A {} -d {} -p tcp --dport {} -m owner {} -j ACCEPT\n", kChain, e.host, e.port,
                               iptables_owner(grant));
    }
    // New connections only: packets the kernel sends for a closing socket carry no owner.
    out += "# every other new connection to a gateway port\n";
    for (const auto& e : ports)
        out += fmt::format("-A {} -d {} -p tcp --dport {} --syn -j REJECT --reject-with tcp-reset\n", kChain, e.host,
                           e.port);
    out += "COMMIT\n";
    return out;
}

// "ip daddr 10.0.0.1 tcp dport { 5900, 5901 }", one per host.
std::vector<std::string> nft_destinations(const std::vector<Endpoint>& endpoints) {
    std::map<std::string, std::vector<std::uint16_t>> ports_by_host;
    for (const auto& e : endpoints) ports_by_host[e.host].push_back(e.port);
    std::vector<std::string> out;
    for (const auto& [host, ports] : ports_by_host) {
        const bool v6 = Endpoint{host, 0}.is_ipv6();
        out.push_back(fmt::format("{} daddr {} tcp dport {{ {} }}", v6 ? "ip6" : "ip", host, fmt::join(ports, ", ")));
    }
    return out;
}

std::string nft_text(const std::vector<Grant>& grants, const std::vector<Endpoint>& ports, bool group_caveat) {
    std::string out = fmt::format(
        "# Load it with `nft -f FILE`: it replaces the table inet {0} and leaves every other table alone.\n",
        kTable);
    if (group_caveat)
        out += "# nft matches a group only as the primary (effective) group of the process that opened the\n"
               "# socket (meta skgid); supplementary groups do not count, unlike iptables --suppl-groups.\n";
    out += fmt::format("table inet {0}\ndelete table inet {0}\ntable inet {0} {{\n", kTable);
    out += "\tchain output {\n\t\ttype filter hook output priority filter; policy accept;\n";
    for (const auto& grant : grants) {
        if (grant.endpoints.empty()) continue;
        const std::string owner = grant.match == OwnerMatch::uid ? "meta skuid" : "meta skgid";
        out += "\t\t# " + grant.comment + "\n";
        for (const auto& destination : nft_destinations(grant.endpoints))
            out += fmt::format("\t\t{} {} \"{}\" accept\n", destination, owner, grant.name);
    }
    out += "\t\t# every other new connection to a gateway port\n";
    for (const auto& destination : nft_destinations(ports))
        out += fmt::format("\t\t{} tcp flags & (syn | ack) == syn reject with tcp reset\n", destination);
    out += "\t}\n}\n";
    return out;
}

}  // namespace

std::string_view to_string(FirewallFormat format) {
    switch (format) {
    case FirewallFormat::iptables: return "iptables";
    case FirewallFormat::ip6tables: return "ip6tables";
    case FirewallFormat::nft: return "nft";
    }
    return "";
}

Generated firewall_rules(const AccessMap& access, const FirewallOptions& options) {
    Generated result;
    if (options.match == FirewallMatch::vm_groups) result.errors = vm_group_errors(access, options.group_prefix);
    const auto ports = in_family(access.gateway_ports, options.format);
    if (ports.empty())
        result.errors.push_back(fmt::format(
            "{} has no {} gateway port: its listeners are {}; export {} instead (nft covers both)", access.config_path,
            family_name(options.format), access.gateway_ports.empty() ? "missing" : "of the other family",
            options.format == FirewallFormat::ip6tables ? "iptables" : "ip6tables"));
    if (!result.errors.empty()) return result;

    const auto grants = options.match == FirewallMatch::vm_groups ? vm_group_grants(access, options)
                                                                  : principal_grants(access, options.format);
    result.text = header_comment(to_string(options.format), access);
    if (options.format == FirewallFormat::nft) {
        const bool group_caveat = std::any_of(grants.begin(), grants.end(), [&](const Grant& g) {
            return g.match == OwnerMatch::gid_effective && options.match == FirewallMatch::principals;
        });
        result.text += nft_text(grants, ports, group_caveat);
        return result;
    }
    std::vector<Endpoint> elsewhere;
    for (const auto& endpoint : access.gateway_ports)
        if (!in_family(endpoint, options.format)) elsewhere.push_back(endpoint);
    result.text += iptables_text(grants, ports, options, elsewhere);
    return result;
}

}  // namespace vmgate::lockdown
