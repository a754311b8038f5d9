// Metric labels stay bounded whatever a client sends, and the families render as Prometheus reads them.
#include "metrics/registry.hpp"
#include "net/gateway_metrics.hpp"

#include <gtest/gtest.h>

namespace vmgate::net {
namespace {

TEST(MechanismLabel, AnOfferedMechanismIsItsOwnLabel) {
    EXPECT_EQ(mechanism_label("SCRAM-SHA-256", "SCRAM-SHA-256,PLAIN"), "SCRAM-SHA-256");
    EXPECT_EQ(mechanism_label("PLAIN", "SCRAM-SHA-256,PLAIN"), "PLAIN");
    EXPECT_EQ(mechanism_label("PLAIN", "SCRAM-SHA-256 PLAIN"), "PLAIN");
}

TEST(MechanismLabel, AnythingElseTheClientNamesIsOther) {
    EXPECT_EQ(mechanism_label("SCRAM-SHA", "SCRAM-SHA-256,PLAIN"), "other");
    EXPECT_EQ(mechanism_label("PLAI", "PLAIN"), "other");
    EXPECT_EQ(mechanism_label("GSSAPI", "PLAIN"), "other");
    EXPECT_EQ(mechanism_label("", "PLAIN,"), "other");
    EXPECT_EQ(mechanism_label("PLAIN", ""), "other");
    EXPECT_EQ(mechanism_label("PLAIN\"} 1\nfake 2", "PLAIN"), "other");
}

TEST(GatewayMetrics, EveryFamilyIsDeclaredWithItsType) {
    metrics::Registry registry;
    GatewayMetrics m(registry);
    m.connections.with({"spice", "127.0.0.1:5901"}).add();
    m.handshake_time.with({"vnc"}).observe(0.02);
    const std::string text = registry.render();
    for (const char* line : {"# TYPE vmgate_connections_total counter", "# TYPE vmgate_auth_total counter",
                             "# TYPE vmgate_decisions_total counter", "# TYPE vmgate_relay_bytes_total counter",
                             "# TYPE vmgate_handshake_duration_seconds histogram",
                             "# TYPE vmgate_upstream_errors_total counter",
                             "vmgate_connections_total{protocol=\"spice\",listener=\"127.0.0.1:5901\"} 1",
                             "vmgate_handshake_duration_seconds_bucket{protocol=\"vnc\",le=\"0.025\"} 1",
                             "vmgate_handshake_duration_seconds_bucket{protocol=\"vnc\",le=\"0.01\"} 0"})
        EXPECT_NE(text.find(line), std::string::npos) << line;
}

}  // namespace
}  // namespace vmgate::net
