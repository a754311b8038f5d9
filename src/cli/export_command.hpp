// `vmgate export FORMAT`: client-side lockdown rules from the policy of a configuration file
// (src/lockdown/): iptables, ip6tables and nft OUTPUT rules, sudoers lines, sshd Match blocks.
// Exit codes: 0 printed, 1 the file or the policy cannot be exported (why, on stderr), 2 usage.
#pragma once

#include "cli/config_file.hpp"

#include <string>
#include <vector>

namespace vmgate::cli {

struct ExportArgs {
    std::string format;  // iptables, ip6tables, nft, sudoers, sshd
    std::string config_path = default_config_path;
    std::string host;    // the gateway as clients reach it; "" = each listener's address
    bool by_vm_group = false;
    std::string group_prefix = "vmgate-";
    std::string viewer = "/usr/bin/remote-viewer";
    std::vector<std::string> viewer_args;
};

inline constexpr const char* export_formats[] = {"iptables", "ip6tables", "nft", "sudoers", "sshd"};

int run_export(const ExportArgs& args);

}  // namespace vmgate::cli
