// `vmgate vv VM`: a remote-viewer connection file for VM's SPICE console through the gateway,
// from the configuration file (listener, host, certificate) and, with --ticket, a one-time
// ticket from the running daemon. Without a ticket the file stays valid for good: the user
// logs in with their own SASL user name and password each time. Exit codes: 0 written,
// 1 refused or failed ("vmgate: ..." on stderr), 2 usage error.
#pragma once

#include "cli/admin_commands.hpp"

#include <string>

namespace vmgate::cli {

struct VvArgs {
    std::string vm;
    std::string user;     // written as username=; with ticket, whom the ticket logs in
    bool ticket = false;  // a one-time ticket as password=, and delete-this-file=1
    std::string ttl = "60s";
    std::string out;   // "" = standard output; a file is written with mode 0600
    std::string host;  // the host clients connect to, instead of the listener's
    std::string ca;    // the CA certificate file; "" = the root at the end of [tls] cert's chain
    bool proxy = false;  // through a route = "connect" listener: host=VM, proxy=http://GATEWAY:PORT
};

// The configuration file and the admin socket come from target.
int run_vv(const AdminTarget& target, const VvArgs& args);

}  // namespace vmgate::cli
