// `vmgate doctor`: the host around the gateway checked for ways around it and for what would stop
// it (src/doctor/ does the checking; this reads the configuration and prints).
#pragma once

#include "cli/config_file.hpp"

#include <string>

namespace vmgate::cli {

struct DoctorArgs {
    std::string config_path;  // "" = default_config_path, under --root
    std::string libvirt_uri;  // "" = no libvirt connection
    std::string root;         // "" = this host
    std::string user;         // "" = vmgate, else the current user
    bool json = false;
};

// Exit status: 0 nothing found, 1 warnings only, 2 errors (also: invalid configuration, no such
// user).
int run_doctor(const DoctorArgs& args);

}  // namespace vmgate::cli
