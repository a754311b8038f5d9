// Settings this version parses but does not enforce are refused, each with its place.
#include "core/config.hpp"
#include "core/config_support.hpp"

#include <gtest/gtest.h>

#include <filesystem>

namespace vmgate::core {
namespace {

Config parse(std::string_view text) {
    auto result = parse_config(text, "t.toml");
    EXPECT_TRUE(result.config) << (result.errors.empty() ? "" : result.errors[0].to_string());
    return result.config ? *result.config : Config{};
}

TEST(UnsupportedSettings, ShippedExampleUsesOnlyWhatIsEnforced) {
    const auto path = std::filesystem::path(__FILE__).parent_path().parent_path().parent_path() / "examples" / "office.toml";
    auto result = load_config_file(path.string());
    ASSERT_TRUE(result.config);
    EXPECT_TRUE(unsupported_settings(*result.config).empty());
}

TEST(UnsupportedSettings, MetricsEndpointAndVncListenersAreEnforced) {
    const Config c = parse(R"([gateway]
metrics = "127.0.0.1:9464"
[tls]
cert = "c.pem"
key = "k.pem"
[[listener]]
protocol = "vnc"
address = "127.0.0.1:5906"
vm = "a"
[[vm]]
name = "a"
vnc = "unix:/run/a.sock"
seat = "deny"
idle_timeout = "30m"
max_session = "2h"
)");
    EXPECT_EQ(c.gateway.metrics, "127.0.0.1:9464");
    EXPECT_TRUE(unsupported_settings(c).empty());
}

TEST(UnsupportedSettings, SeatPoliciesAndSessionLimitsAreEnforced) {
    const Config c = parse(R"([[vm]]
name = "a"
spice = "unix:/run/a.sock"
seat = "same-user"
idle_timeout = "30m"
max_session = "2h"
)");
    EXPECT_TRUE(unsupported_settings(c).empty());
}

TEST(UnsupportedSettings, ClientCertificatesAreEnforced) {
    const Config c = parse(R"([tls]
client_ca = "ca.pem"
client_cert = "required"
client_identity = "email"
)");
    EXPECT_TRUE(unsupported_settings(c).empty());
}

}  // namespace
}  // namespace vmgate::core
