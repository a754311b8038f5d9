// The configuration file as every command that reads it sees it: the same default path, and
// its problems reported alike, so a file refused by `serve` reads the same in `check-config`,
// `ticket` or `policy explain`.
#pragma once

#include "core/config.hpp"

#include <string>
#include <vector>

namespace vmgate::cli {

inline constexpr const char* default_config_path = "/etc/vmgate/vmgate.toml";

// Each error as FILE:LINE:COL: KEY: message, then "N error(s) in PATH", on stderr.
void print_config_errors(const std::vector<core::ConfigError>& errors, const std::string& path);

}  // namespace vmgate::cli
