#include "core/config_support.hpp"

namespace vmgate::core {
namespace {

ConfigError at(const Config& c, SourceLocation where, std::string key, std::string message) {
    return {c.path, where.line, where.column, std::move(key), std::move(message)};
}

}  // namespace

std::vector<ConfigError> unsupported_settings(const Config& c) {
    std::vector<ConfigError> out;
    if (!c.gateway.metrics.empty())
        out.push_back(at(c, {}, "gateway.metrics", "the metrics endpoint is not served by this version of vmgate; remove the key"));
    return out;
}

}  // namespace vmgate::core
