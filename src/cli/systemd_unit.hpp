// `vmgate systemd-unit`: the systemd service unit that runs the gateway as the unprivileged user
// vmgate with the strictest sandbox it works in. What the unit needs from a configuration (a
// capability for ports below 1024, write access outside vmgate's own directories) is worked out
// here from the parsed file; packaging/vmgate.service is this output for the default settings.
#pragma once

#include "cli/config_file.hpp"
#include "core/config.hpp"

#include <optional>
#include <string>
#include <vector>

namespace vmgate::cli {

inline constexpr const char* default_binary_path = "/usr/bin/vmgate";

// What the unit says that depends on the installation and the configuration.
struct UnitSettings {
    std::string binary = default_binary_path;       // absolute
    std::string config_path = default_config_path;  // absolute
    // Listeners on a port below 1024 ("ADDRESS" as written): they need CAP_NET_BIND_SERVICE.
    std::vector<std::string> privileged_listeners;
    // Directories the daemon writes outside the unit's RuntimeDirectory and LogsDirectory.
    std::vector<std::string> writable_paths;
};

// The settings for running `config` (read from config_path) with the binary at `binary`.
UnitSettings unit_settings(const core::Config& config, const std::string& config_path, const std::string& binary);

// Why a path cannot be written into a unit file as is (whitespace, quotes, backslashes and
// control characters would need systemd's quoting), or nullopt when it can.
std::optional<std::string> unit_path_problem(const std::string& path);

// The unit file text. Every path must have passed unit_path_problem.
std::string render_unit(const UnitSettings& settings);

struct SystemdUnitArgs {
    std::optional<std::string> config_path;  // nullopt: the default settings, no file is read
    std::string binary = default_binary_path;
};

// Prints the unit on stdout. Exit code: 0 done, 1 configuration or path error.
int run_systemd_unit(const SystemdUnitArgs& args);

}  // namespace vmgate::cli
