// `vmgate export iptables|ip6tables|nft`: OUTPUT rules for client machines that let each local
// user reach only the gateway ports of their VMs (matched by the owner of the socket) and reset
// every other new connection to a gateway port.
#pragma once

#include "lockdown/access.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace vmgate::lockdown {

enum class FirewallFormat { iptables, ip6tables, nft };
std::string_view to_string(FirewallFormat format);

// Whom the rules name: the users and Unix groups of the policy, or the per-VM groups of the
// sudoers export (then only `sudo -g vmgate-VM remote-viewer ...` reaches a VM's ports).
enum class FirewallMatch { principals, vm_groups };

struct FirewallOptions {
    FirewallFormat format = FirewallFormat::iptables;
    FirewallMatch match = FirewallMatch::principals;
    std::string group_prefix = "vmgate-";
};

// iptables/ip6tables: iptables-restore input (filter table, chain vmgate-client jumped to from
// OUTPUT). nft: `nft -f` input replacing the table inet vmgate_client.
Generated firewall_rules(const AccessMap& access, const FirewallOptions& options);

}  // namespace vmgate::lockdown
