#include "core/config_support.hpp"

namespace vmgate::core {
namespace {

ConfigError at(const Config& c, SourceLocation where, std::string key, std::string message) {
    return {c.path, where.line, where.column, std::move(key), std::move(message)};
}

void check_vm(const Config& c, std::size_t i, std::vector<ConfigError>& out) {
    const VmConfig& vm = c.vms[i];
    const std::string key = "vm[" + std::to_string(i) + "]";
    if (vm.seat != SeatPolicy::takeover)
        out.push_back(at(c, vm.where, key + ".seat",
                         "seat = \"" + std::string(to_string(vm.seat)) +
                             "\" is not enforced by this version of vmgate (a newcomer always takes the "
                             "seat, as QEMU does); remove the key or set \"takeover\""));
    if (vm.idle_timeout.count() > 0)
        out.push_back(at(c, vm.where, key + ".idle_timeout", "idle_timeout is not enforced by this version of vmgate; remove it"));
    if (vm.max_session.count() > 0)
        out.push_back(at(c, vm.where, key + ".max_session", "max_session is not enforced by this version of vmgate; remove it"));
}

}  // namespace

std::vector<ConfigError> unsupported_settings(const Config& c) {
    std::vector<ConfigError> out;
    for (std::size_t i = 0; i < c.listeners.size(); ++i)
        if (c.listeners[i].protocol == Protocol::vnc)
            out.push_back(at(c, c.listeners[i].where, "listener[" + std::to_string(i) + "].protocol",
                             "VNC listeners are not served by this version of vmgate; only \"spice\""));
    for (std::size_t i = 0; i < c.vms.size(); ++i) check_vm(c, i, out);
    if (c.tls.client_cert != ClientCertMode::none)
        out.push_back(at(c, {}, "tls.client_cert", "client certificates are not supported by this version of vmgate; set \"none\""));
    if (!c.gateway.metrics.empty())
        out.push_back(at(c, {}, "gateway.metrics", "the metrics endpoint is not served by this version of vmgate; remove the key"));
    return out;
}

}  // namespace vmgate::core
