#include "core/config_support.hpp"

namespace vmgate::core {

// Every setting of the format is enforced in this version; the check stays for the next one
// that is parsed before it is served.
std::vector<ConfigError> unsupported_settings(const Config&) { return {}; }

}  // namespace vmgate::core
