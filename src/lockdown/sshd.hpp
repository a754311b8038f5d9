// `vmgate export sshd`: Match blocks for an SSH host that users tunnel through to the gateway
// (`ssh -N -L 5901:GATEWAY:5901 host`): each user or Unix group may open forwardings to the
// gateway ports of their VMs and nothing else, without a shell, a TTY or any other forwarding.
#pragma once

#include "lockdown/access.hpp"

namespace vmgate::lockdown {

// One `Match User a,b` block per distinct set of ports, then one `Match Group g` block per set;
// meant to be appended to the end of sshd_config (a Match block lasts until the next one).
Generated sshd_rules(const AccessMap& access);

}  // namespace vmgate::lockdown
