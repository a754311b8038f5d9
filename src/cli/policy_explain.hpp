// `vmgate policy explain`: the decision the gateway would make for a user on a VM, at a time,
// from an address, for a channel, worked out from the configuration file alone (no daemon), with
// the deciding rule and the reason in the same words the audit log uses.
#pragma once

#include "cli/config_file.hpp"
#include "policy/policy.hpp"

#include <nlohmann/json.hpp>

#include <string>

namespace vmgate::cli {

struct ExplainArgs {
    std::string config_path = default_config_path;
    std::string user;     // "name" or "name@realm"
    std::string vm;
    std::string at;       // "YYYY-MM-DD HH:MM" local time; "" = now
    std::string from;     // source IP address; "" = unknown
    std::string channel;  // SPICE channel name; "" = the VM as a whole
    bool json = false;
};

// Exit code: 0 allowed, 1 denied, 2 usage or configuration error.
int run_policy_explain(const ExplainArgs& args);

// ---- what it prints (pure) ----

// "allowed: REASON" or "denied: REASON", then "rule: ...", "at: ...", "from: ..." lines.
std::string explain_text(const policy::Request& request, const policy::Decision& decision);

// {"allowed","reason","rule","view_only","deny_channels","user","realm","vm","at"}
nlohmann::json explain_json(const policy::Request& request, const policy::Decision& decision);

// "2026-11-23 Monday 19:30"
std::string civil_text(const core::CivilTime& at);

}  // namespace vmgate::cli
