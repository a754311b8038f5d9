#include "cli/export_command.hpp"

#include "lockdown/access.hpp"
#include "lockdown/firewall.hpp"
#include "lockdown/sshd.hpp"
#include "lockdown/sudoers.hpp"

#include <iostream>
#include <optional>

namespace vmgate::cli {

namespace {

constexpr int kUsageError = 2;

std::optional<lockdown::FirewallFormat> firewall_format(const std::string& format) {
    if (format == "iptables") return lockdown::FirewallFormat::iptables;
    if (format == "ip6tables") return lockdown::FirewallFormat::ip6tables;
    if (format == "nft") return lockdown::FirewallFormat::nft;
    return std::nullopt;
}

// Options that would silently do nothing with this format are refused instead.
std::string misplaced_option(const ExportArgs& args, bool firewall) {
    if (args.by_vm_group && !firewall) return "--by-vm-group applies to iptables, ip6tables and nft";
    const bool sudoers = args.format == "sudoers";
    if (!sudoers && (args.viewer != ExportArgs{}.viewer || !args.viewer_args.empty()))
        return "--viewer and --viewer-arg apply to sudoers";
    if (!sudoers && !args.by_vm_group && args.group_prefix != ExportArgs{}.group_prefix)
        return "--group-prefix applies to sudoers and to --by-vm-group";
    return "";
}

lockdown::Generated generate(const lockdown::AccessMap& access, const ExportArgs& args) {
    if (const auto format = firewall_format(args.format)) {
        const auto match = args.by_vm_group ? lockdown::FirewallMatch::vm_groups : lockdown::FirewallMatch::principals;
        return lockdown::firewall_rules(access, {*format, match, args.group_prefix});
    }
    if (args.format == "sudoers") return lockdown::sudoers_rules(access, {args.viewer, args.viewer_args, args.group_prefix});
    return lockdown::sshd_rules(access);
}

int failed(const std::vector<std::string>& errors) {
    for (const auto& error : errors) std::cerr << "vmgate export: " << error << "\n";
    return 1;
}

}  // namespace

int run_export(const ExportArgs& args) {
    const bool firewall = firewall_format(args.format).has_value();
    if (const auto problem = misplaced_option(args, firewall); !problem.empty()) {
        std::cerr << "vmgate export " << args.format << ": " << problem << "\n";
        return kUsageError;
    }
    const auto loaded = core::load_config_file(args.config_path);
    if (!loaded.config) {
        print_config_errors(loaded.errors, args.config_path);
        return 1;
    }
    const auto access = lockdown::build_access(*loaded.config, {args.host, firewall});
    if (!access.access) return failed(access.errors);
    const auto generated = generate(*access.access, args);
    if (!generated.errors.empty()) return failed(generated.errors);
    std::cout << generated.text;
    return 0;
}

}  // namespace vmgate::cli
