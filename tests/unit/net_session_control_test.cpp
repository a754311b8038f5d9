// Live sessions judged again after they started: time windows closing, limits running out and
// a reloaded policy, with the clock injected (civil time and steady time both passed in).
#include "net/session_control.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace vmgate::net {
namespace {

using namespace std::chrono_literals;

class NoUnixGroups final : public policy::GroupResolver {
public:
    bool user_in_unix_group(std::string_view, std::string_view) const override { return false; }
};

const NoUnixGroups no_groups;
const session::SteadyTime t0{};

// Monday 2026-11-23, at HH:MM.
core::CivilTime monday(int hour, int minute = 0) {
    return {core::Date{2026, 11, 23}, core::Weekday::mon, hour * 60 + minute};
}

std::shared_ptr<const Generation> generation(const std::string& toml) {
    auto parsed = core::parse_config(toml, "test.toml");
    EXPECT_TRUE(parsed.config) << (parsed.errors.empty() ? "" : parsed.errors[0].to_string());
    auto g = std::make_shared<Generation>();
    g->config = std::move(*parsed.config);
    g->policy.emplace(g->config, no_groups, "example");
    return g;
}

const std::string vm1_rules = R"([[vm]]
name = "vm1"
spice = "unix:/run/vm1.sock"
idle_timeout = "10m"
max_session = "8h"
  [[vm.allow]]
  users = ["alice"]
  hours = "09:00-17:00"
  [[vm.allow]]
  users = ["olaf"]
  view_only = true
)";

struct Channel {
    std::shared_ptr<session::Traffic> traffic = std::make_shared<session::Traffic>();
    std::shared_ptr<std::vector<std::string>> closed = std::make_shared<std::vector<std::string>>();
    session::ChannelHandle handle(std::uint64_t conn, std::string name) const {
        return {conn, std::move(name), traffic, [log = closed](const std::string& r) { log->push_back(r); }};
    }
};

struct SessionControlTest : ::testing::Test {
    std::vector<std::pair<std::uint64_t, session::EndReason>> ended;
    session::Registry registry{[this](const session::Session& s, session::EndReason r, const std::string&) {
        ended.emplace_back(s.id(), r);
    }};

    std::shared_ptr<session::Session> open(const std::string& who, bool view_only = false) {
        session::Origin o;
        o.vm = "vm1";
        o.who = core::Identity::parse(who, "PLAIN");
        o.started = t0;
        o.view_only = view_only;
        return std::get<session::Registry::Claimed>(registry.claim(std::move(o), core::SeatPolicy::takeover)).session;
    }
};

TEST_F(SessionControlTest, WindowClosingEndsTheSessionAtThatMinute) {
    const auto g = generation(vm1_rules);
    auto alice = open("alice");
    Channel main;
    alice->add_channel(main.handle(1, "main"));
    supervise(*g, registry.live(), monday(16, 59), t0 + 1min);
    EXPECT_FALSE(alice->ended());
    supervise(*g, registry.live(), monday(17, 0), t0 + 2min);
    ASSERT_TRUE(alice->ended());
    ASSERT_EQ(ended.size(), 1u);
    EXPECT_EQ(ended[0].second, session::EndReason::window_closed);
    ASSERT_EQ(main.closed->size(), 1u);
    EXPECT_EQ(main.closed->front().rfind("window-closed: ", 0), 0u) << main.closed->front();
    EXPECT_NE(main.closed->front().find("17:00"), std::string::npos) << main.closed->front();
}

TEST_F(SessionControlTest, IdleAndMaxSessionComeFromTheVmLimits) {
    const auto g = generation(vm1_rules);
    auto alice = open("alice");
    Channel inputs;
    alice->add_channel(inputs.handle(1, "inputs"));
    inputs.traffic->add_from_client(8);
    supervise(*g, registry.live(), monday(10), t0 + 5min);  // input seen at +5 min
    supervise(*g, registry.live(), monday(10), t0 + 14min);
    EXPECT_FALSE(alice->ended()) << "9 minutes since the last input";
    supervise(*g, registry.live(), monday(10), t0 + 15min);
    ASSERT_TRUE(alice->ended());
    EXPECT_EQ(ended.back().second, session::EndReason::idle_timeout);

    auto olaf = open("olaf", true);  // view-only: never idle, but max_session holds
    supervise(*g, registry.live(), monday(10), t0 + 7h);
    EXPECT_FALSE(olaf->ended());
    supervise(*g, registry.live(), monday(10), t0 + 8h);
    ASSERT_TRUE(olaf->ended());
    EXPECT_EQ(ended.back().second, session::EndReason::max_session);
}

TEST_F(SessionControlTest, ReloadRevokesOnlySessionsThatLostTheirRule) {
    auto alice = open("alice");
    session::Origin olaf_origin;
    olaf_origin.vm = "vm1";  // not in the registry: only the rules matter here
    olaf_origin.who = core::Identity::parse("olaf");
    auto olaf = std::make_shared<session::Session>(99, olaf_origin, nullptr);
    const auto before = generation(vm1_rules);
    EXPECT_FALSE(why_revoked(*before, *alice, monday(10)));
    EXPECT_FALSE(why_revoked(*before, *olaf, monday(10)));

    std::string without_alice = vm1_rules;
    without_alice.replace(without_alice.find("alice"), 5, "bob");
    const auto after = generation(without_alice);
    const auto why = why_revoked(*after, *alice, monday(10));
    ASSERT_TRUE(why);
    EXPECT_NE(why->find("alice"), std::string::npos) << *why;
    EXPECT_FALSE(why_revoked(*after, *olaf, monday(10)));
}

TEST_F(SessionControlTest, AChannelTheNewRulesRefuseRevokesTheSession) {
    auto alice = open("alice");
    Channel main, inputs;
    alice->add_channel(main.handle(1, "main"));
    alice->add_channel(inputs.handle(2, "inputs"));
    std::string view_only = vm1_rules;
    view_only.replace(view_only.find("hours = \"09:00-17:00\""), 21, "view_only = true");
    const auto why = why_revoked(*generation(view_only), *alice, monday(10));
    ASSERT_TRUE(why);
    EXPECT_NE(why->find("inputs"), std::string::npos) << *why;
}

TEST_F(SessionControlTest, AVmRemovedByReloadRevokesItsSessions) {
    auto alice = open("alice");
    const auto why = why_revoked(*generation(R"([[vm]]
name = "vm2"
spice = "unix:/run/vm2.sock"
)"), *alice, monday(10));
    ASSERT_TRUE(why);
    EXPECT_NE(why->find("vm1"), std::string::npos) << *why;
}

TEST_F(SessionControlTest, DescribeShowsWhatTheAdminListNeeds) {
    session::Origin o;
    o.vm = "vm1";
    o.who = core::Identity::parse("alice@example", "SCRAM-SHA-256");
    o.source_text = "192.0.2.7:50000";
    o.since = std::chrono::system_clock::time_point(std::chrono::seconds(1795462205));  // 2026-11-23T19:30:05Z
    o.rule = "vm1 allow[0] (line 7)";
    auto s = std::get<session::Registry::Claimed>(registry.claim(o, core::SeatPolicy::takeover)).session;
    Channel main;
    s->add_channel(main.handle(1, "main"));
    main.traffic->add_to_client(4096);
    s->set_spice_session_id(77);
    const auto j = describe(*s);
    EXPECT_EQ(j["id"], s->id());
    EXPECT_EQ(j["user"], "alice");
    EXPECT_EQ(j["realm"], "example");
    EXPECT_EQ(j["mechanism"], "SCRAM-SHA-256");
    EXPECT_EQ(j["source"], "192.0.2.7:50000");
    EXPECT_EQ(j["since"], "2026-11-23T19:30:05Z");
    EXPECT_EQ(j["channels"], nlohmann::json::array({"main"}));
    EXPECT_EQ(j["bytes_to_client"], 4096);
    EXPECT_EQ(j["spice_session"], 77);
    EXPECT_EQ(j["rule"], "vm1 allow[0] (line 7)");
}

}  // namespace
}  // namespace vmgate::net
