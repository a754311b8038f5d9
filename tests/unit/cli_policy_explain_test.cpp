// What `vmgate policy explain` prints for a decision of the real evaluator on a parsed file.
#include "cli/policy_explain.hpp"

#include <gtest/gtest.h>

#include <set>

namespace vmgate::cli {
namespace {

using nlohmann::json;

constexpr std::string_view kConfig = R"([tls]
cert = "/nonexistent/cert.pem"
key = "/nonexistent/key.pem"

[[listener]]
protocol = "spice"
address = "127.0.0.1:5901"
vm = "vm1"

[[vm]]
name = "vm1"
spice = "unix:/nonexistent/vm1.sock"
  [[vm.allow]]
  users = ["bob"]
  hours = "18:00-23:00"
  sources = ["10.0.0.0/8"]
  view_only = true
  deny_channels = ["usbredir"]
)";

class NoUnixGroups final : public policy::GroupResolver {
public:
    bool user_in_unix_group(std::string_view, std::string_view) const override { return false; }
};

// Monday 2026-11-23 at HH:MM.
core::CivilTime monday(int hour, int minute) {
    return {core::Date{2026, 11, 23}, core::Weekday::mon, hour * 60 + minute};
}

class PolicyExplain : public ::testing::Test {
protected:
    PolicyExplain() : parsed_(core::parse_config(kConfig, "explain.toml")) {}

    policy::Request request(std::string_view user, core::CivilTime at, std::string_view from = "",
                            std::string channel = "") {
        return {core::Identity::parse(user), "vm1", std::move(channel), at,
                from.empty() ? std::nullopt : core::IpAddress::parse(from)};
    }

    policy::Decision decide(const policy::Request& r) {
        EXPECT_TRUE(parsed_.errors.empty()) << parsed_.errors.front().to_string();
        return policy::Evaluator(*parsed_.config, groups_, "example.com").decide(r);
    }

    core::ConfigResult parsed_;
    NoUnixGroups groups_;
};

TEST_F(PolicyExplain, AllowedNamesRuleTimeAndSource) {
    const auto r = request("bob", monday(19, 30), "10.1.2.3");
    EXPECT_EQ(explain_text(r, decide(r)),
              "allowed: bob may use vm1 (allow[0], 18:00-23:00, only from 10.0.0.0/8, view only)\n"
              "rule: vm1 allow[0] (line 13)\n"
              "at: 2026-11-23 Monday 19:30\n"
              "from: 10.1.2.3\n");
}

TEST_F(PolicyExplain, DeniedWithoutDecidingRuleHasNoRuleLine) {
    const auto r = request("bob", monday(9, 5), "10.1.2.3");
    EXPECT_EQ(explain_text(r, decide(r)),
              "denied: bob may use vm1 18:00-23:00 only from 10.0.0.0/8; it is 09:05\n"
              "at: 2026-11-23 Monday 09:05\n"
              "from: 10.1.2.3\n");
}

TEST_F(PolicyExplain, NoFromLineWithoutSource) {
    const auto r = request("carol", monday(19, 30));
    EXPECT_EQ(explain_text(r, decide(r)),
              "denied: no allow rule of vm1 names carol\n"
              "at: 2026-11-23 Monday 19:30\n");
}

TEST_F(PolicyExplain, ChannelRefusalKeepsItsRule) {
    const auto r = request("bob", monday(19, 30), "10.1.2.3", "inputs");
    const std::string text = explain_text(r, decide(r));
    EXPECT_EQ(text.substr(0, text.find('\n')), "denied: view-only access: the inputs channel is refused");
    EXPECT_NE(text.find("\nrule: vm1 allow[0] (line 13)\n"), std::string::npos) << text;
}

TEST_F(PolicyExplain, JsonHasTheDecisionAndWhatWasAsked) {
    const auto r = request("bob@example.com", monday(19, 30), "10.1.2.3");
    EXPECT_EQ(explain_json(r, decide(r)),
              (json{{"allowed", true},
                    {"reason",
                     "bob@example.com may use vm1 (allow[0], 18:00-23:00, only from 10.0.0.0/8, view only)"},
                    {"rule", "vm1 allow[0] (line 13)"},
                    {"view_only", true},
                    {"deny_channels", {"usbredir"}},
                    {"user", "bob"},
                    {"realm", "example.com"},
                    {"vm", "vm1"},
                    {"at", "2026-11-23 Monday 19:30"}}));
}

TEST_F(PolicyExplain, JsonOfADenialWithoutRule) {
    const auto r = request("bob@other.org", monday(19, 30), "10.1.2.3");
    const json j = explain_json(r, decide(r));
    EXPECT_EQ(j["allowed"], false);
    EXPECT_EQ(j["rule"], "");
    EXPECT_EQ(j["realm"], "other.org");
    EXPECT_EQ(j["reason"], "no allow rule of vm1 names bob@other.org");
}

TEST(CivilText, DateWeekdayAndMinute) {
    EXPECT_EQ(civil_text({core::Date{2027, 1, 2}, core::Weekday::sat, 5}), "2027-01-02 Saturday 00:05");
}

}  // namespace
}  // namespace vmgate::cli
