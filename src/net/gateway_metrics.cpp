#include "net/gateway_metrics.hpp"

namespace vmgate::net {
namespace {

// Accept to relay start: TLS and a SASL exchange take milliseconds on a LAN, a ticket key made
// on demand or a slow QEMU take seconds; the handshake deadline caps it.
const std::vector<double> handshake_bounds{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

}  // namespace

GatewayMetrics::GatewayMetrics(metrics::Registry& r)
    : connections(r.counter("vmgate_connections_total", "Connections accepted, by protocol and listener address.",
                            {"protocol", "listener"})),
      auth(r.counter("vmgate_auth_total",
                     "Authentications by protocol, mechanism (SASL mechanism, ticket, VeNCrypt subtype) and result.",
                     {"protocol", "mechanism", "result"})),
      decisions(r.counter("vmgate_decisions_total",
                          "Access decisions after authentication: allowed or denied, and what the decision rests on.",
                          {"decision", "reason"})),
      relay_bytes(r.counter("vmgate_relay_bytes_total",
                            "Bytes relayed in the data phase, by VM and direction (to_client, to_vm).",
                            {"vm", "direction"})),
      handshake_time(r.histogram("vmgate_handshake_duration_seconds",
                                 "Time from accepting a connection to the start of its relay.", {"protocol"},
                                 handshake_bounds)),
      upstream_errors(r.counter("vmgate_upstream_errors_total",
                                "Connections refused because the VM's display could not be reached or refused the gateway.",
                                {"protocol", "vm"})) {}

std::string mechanism_label(std::string_view chosen, std::string_view offered) {
    while (!offered.empty()) {
        const auto end = offered.find_first_of(" ,");
        if (!chosen.empty() && offered.substr(0, end) == chosen) return std::string(chosen);
        if (end == std::string_view::npos) break;
        offered.remove_prefix(end + 1);
    }
    return "other";
}

}  // namespace vmgate::net
