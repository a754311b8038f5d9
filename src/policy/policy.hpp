// Authorization: who may use which VM, when, from where, and which channels.
// A pure function of (config, identity, vm, channel, civil time, source); deny by default.
#pragma once

#include "core/cidr.hpp"
#include "core/civil_time.hpp"
#include "core/config.hpp"
#include "core/identity.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vmgate::policy {

// Answers "is USER a member of the local Unix group GROUP" for `unix:` group entries.
class GroupResolver {
public:
    virtual ~GroupResolver() = default;
    virtual bool user_in_unix_group(std::string_view user, std::string_view group) const = 0;
};

// Local accounts: member if listed in the group (getgrnam_r) or it is the user's primary group.
class SystemGroupResolver final : public GroupResolver {
public:
    bool user_in_unix_group(std::string_view user, std::string_view group) const override;
};

struct Request {
    core::Identity who;
    std::string vm;
    std::string channel;  // SPICE channel name ("main", "display", ...); "" = the VM as a whole
    core::CivilTime at;
    std::optional<core::IpAddress> source;
};

// What a decision rests on, in one bounded word (a metric label; `reason` has the words). A
// denial by a rule that names the user but failed on several limits names the first of them in
// the order below.
enum class Cause {
    allowed,
    no_vm,           // the VM has no [[vm]] section
    no_rule,         // no allow rule names the user
    wrong_day,       // days
    outside_hours,   // hours
    not_yet_valid,   // from
    expired,         // until
    source,          // sources
    channel_denied,  // deny_channels
    view_only,       // an input channel under a view-only rule
};
std::string_view to_string(Cause cause);

struct Decision {
    bool allowed = false;
    Cause cause = Cause::no_rule;
    std::optional<std::size_t> rule_index;  // index into VmConfig::allow of the deciding rule
    std::string rule;    // "leaptest allow[1] (line 41)" or "" when no rule decided
    std::string reason;  // in words: "anne may use leaptest on Wed-Thu; today is Friday"
    bool view_only = false;
    std::vector<std::string> deny_channels;
};

class Evaluator {
public:
    // default_realm: the realm a bare user name in a rule stands for (config value, or host name).
    Evaluator(const core::Config& config, const GroupResolver& groups, std::string default_realm);

    Decision decide(const Request& request) const;

private:
    const core::Config& config_;
    const GroupResolver& groups_;
    std::string default_realm_;
};

}  // namespace vmgate::policy
