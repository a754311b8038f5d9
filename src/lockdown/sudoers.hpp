// `vmgate export sudoers`: each VM gets a dedicated group (vmgate-VM, with no members), and the
// users its rules admit may run the viewer with exactly the arguments that open that VM, with that
// group: `sudo -g vmgate-VM /usr/bin/remote-viewer spice://HOST?tls-port=N`. The firewall exports
// with FirewallMatch::vm_groups then let only processes of that group reach the VM's ports.
#pragma once

#include "lockdown/access.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vmgate::lockdown {

struct SudoersOptions {
    std::string viewer = "/usr/bin/remote-viewer";
    std::vector<std::string> viewer_args;  // given before the URI, in this order
    std::string group_prefix = "vmgate-";
};

Generated sudoers_rules(const AccessMap& access, const SudoersOptions& options);

// The URI a viewer opens `console` with ("spice://10.0.0.1?tls-port=5901", "vnc://[::1]:5902",
// "spice://vm1.vms.example.com?tls-port=5900" for SNI); nullopt for a console no viewer URI opens
// by itself (a plain SPICE port only ever answers "use TLS").
std::optional<std::string> viewer_uri(const Console& console);

// One command-line argument written so that sudoers matches exactly it: sudoers' own special
// characters (, : = \ #) and fnmatch's (* ? [ ]) escaped, a backslash twice (both levels read
// it), a leading ^ escaped (it would start a regular expression). nullopt for an argument with
// white space or control characters, which a sudoers argument cannot match exactly.
std::optional<std::string> sudoers_argument(std::string_view argument);

}  // namespace vmgate::lockdown
