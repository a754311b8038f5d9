// Settings the configuration format has but this version of vmgate does not enforce yet.
// A gateway that silently ignored a VNC listener or a metrics address would do other than the admin
// wrote, so `serve` and `check-config` refuse such files instead.
#pragma once

#include "core/config.hpp"

#include <vector>

namespace vmgate::core {

std::vector<ConfigError> unsupported_settings(const Config& config);

}  // namespace vmgate::core
