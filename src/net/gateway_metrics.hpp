// The gateway's Prometheus metrics: the families connections update, and what they count. Label
// values stay bounded: protocols, listener addresses and VM names come from the configuration,
// mechanisms from what the gateway offers, decision causes from a fixed list. Never user names
// or client addresses.
#pragma once

#include "metrics/registry.hpp"

#include <string>
#include <string_view>

namespace vmgate::net {

enum class AuthResult { ok, failed };

struct GatewayMetrics {
    explicit GatewayMetrics(metrics::Registry& registry);

    metrics::Family<metrics::Counter>& connections;      // protocol, listener
    metrics::Family<metrics::Counter>& auth;             // protocol, mechanism, result
    metrics::Family<metrics::Counter>& decisions;        // decision, reason
    metrics::Family<metrics::Counter>& relay_bytes;      // vm, direction
    metrics::Family<metrics::Histogram>& handshake_time;  // protocol
    metrics::Family<metrics::Counter>& upstream_errors;  // protocol, vm
};

// The "reason" label of a seat refusal, next to the policy's causes.
inline constexpr std::string_view seat_taken_reason = "seat_taken";

// The mechanism label of an authentication: `chosen` when it is one of the space-separated
// mechanisms the gateway `offered` (separated by spaces or commas,
// as Cyrus lists them), else "other". A client names its SASL mechanism itself, and
// an arbitrary name must not become a new time series.
std::string mechanism_label(std::string_view chosen, std::string_view offered);

}  // namespace vmgate::net
