#include "lockdown/sshd.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <map>

namespace vmgate::lockdown {

namespace {

// Everything a tunnel-only account must not get besides its local forwardings.
constexpr std::string_view kTunnelOnly =
    "\tAllowAgentForwarding no\n"
    "\tAllowStreamLocalForwarding no\n"
    "\tX11Forwarding no\n"
    "\tPermitTunnel no\n"
    "\tPermitTTY no\n"
    "\tPermitUserRC no\n"
    "\tForceCommand /usr/sbin/nologin\n";

struct Block {
    std::vector<std::string> names;  // sorted
    std::vector<std::string> vms;
    std::vector<Endpoint> endpoints;
};

// Principals of one kind grouped by the ports they may open, ordered by their first name.
std::vector<Block> blocks(const std::map<Principal, PrincipalAccess>& reach, PrincipalKind kind) {
    std::map<std::vector<Endpoint>, Block> by_ports;
    for (const auto& [principal, access] : reach) {
        if (principal.kind != kind || access.endpoints.empty()) continue;
        auto& block = by_ports[access.endpoints];
        block.names.push_back(principal.name);
        block.vms.insert(block.vms.end(), access.vms.begin(), access.vms.end());
        block.endpoints = access.endpoints;
    }
    std::vector<Block> out;
    for (auto& [ports, block] : by_ports) {
        std::sort(block.vms.begin(), block.vms.end());
        block.vms.erase(std::unique(block.vms.begin(), block.vms.end()), block.vms.end());
        out.push_back(std::move(block));
    }
    std::sort(out.begin(), out.end(), [](const Block& a, const Block& b) { return a.names < b.names; });
    return out;
}

std::string block_text(const Block& block, std::string_view keyword) {
    std::vector<std::string> opens;
    for (const auto& endpoint : block.endpoints) opens.push_back(endpoint.to_string());
    return fmt::format("\n# {}\nMatch {} {}\n\tAllowTcpForwarding local\n\tPermitOpen {}\n{}", fmt::join(block.vms, ", "),
                       keyword, fmt::join(block.names, ","), fmt::join(opens, " "), kTunnelOnly);
}

}  // namespace

Generated sshd_rules(const AccessMap& access) {
    Generated result;
    result.text = header_comment("sshd", access);
    result.text +=
        "# Append it to the end of /etc/ssh/sshd_config on the SSH host users tunnel through (every Match\n"
        "# block lasts until the next one), check with `sshd -t`, then reload sshd.\n"
        "# PermitOpen compares the host exactly as the client writes it in -L.\n"
        "# sshd takes the first value it finds for each keyword: a user named in a Match User block gets\n"
        "# that block's ports only, whatever their groups; a user in several groups below gets the first\n"
        "# group's. Users matched by no block keep what the rest of sshd_config allows them.\n";
    const auto reach = access_by_principal(access);
    for (const auto& block : blocks(reach, PrincipalKind::user)) result.text += block_text(block, "User");
    for (const auto& block : blocks(reach, PrincipalKind::group)) result.text += block_text(block, "Group");
    return result;
}

}  // namespace vmgate::lockdown
