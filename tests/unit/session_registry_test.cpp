// Seats and session ends, with hand-made channels and an injected clock.
#include "session/expiry.hpp"
#include "session/registry.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

namespace vmgate::session {
namespace {

using namespace std::chrono_literals;
using core::SeatPolicy;

const SteadyTime t0{};

Origin origin(const std::string& vm, const std::string& principal, bool view_only = false) {
    Origin o;
    o.vm = vm;
    o.who = core::Identity::parse(principal, "PLAIN");
    o.started = t0;
    o.view_only = view_only;
    return o;
}

// A channel that records the reasons it was closed with.
struct FakeChannel {
    std::shared_ptr<Traffic> traffic = std::make_shared<Traffic>();
    std::shared_ptr<std::vector<std::string>> closed = std::make_shared<std::vector<std::string>>();

    ChannelHandle handle(std::uint64_t conn, std::string name) const {
        return {conn, std::move(name), traffic, [log = closed](const std::string& r) { log->push_back(r); }};
    }
};

struct Ended {
    std::uint64_t session;
    EndReason reason;
    std::string detail;
};

struct RegistryTest : ::testing::Test {
    std::vector<Ended> ended;
    Registry registry{[this](const Session& s, EndReason r, const std::string& d) { ended.push_back({s.id(), r, d}); }};

    std::shared_ptr<Session> claim_ok(const std::string& vm, const std::string& who, SeatPolicy seat) {
        auto outcome = registry.claim(origin(vm, who), seat);
        auto* claimed = std::get_if<Registry::Claimed>(&outcome);
        EXPECT_NE(claimed, nullptr) << who << " should get the seat of " << vm;
        return claimed ? claimed->session : nullptr;
    }
};

TEST_F(RegistryTest, TakeoverEndsEveryChannelOfTheOldSessionWithTheReason) {
    auto alice = claim_ok("vm1", "alice", SeatPolicy::takeover);
    FakeChannel main, display;
    ASSERT_TRUE(alice->add_channel(main.handle(1, "main")));
    ASSERT_TRUE(alice->add_channel(display.handle(2, "display")));

    auto outcome = registry.claim(origin("vm1", "bob"), SeatPolicy::takeover);
    auto& claimed = std::get<Registry::Claimed>(outcome);
    ASSERT_EQ(claimed.replaced.size(), 1u);
    EXPECT_EQ(claimed.replaced[0], alice);
    EXPECT_TRUE(alice->ended());
    ASSERT_EQ(main.closed->size(), 1u);
    EXPECT_EQ(main.closed->front().rfind("taken-over: by bob", 0), 0u) << main.closed->front();
    EXPECT_EQ(*display.closed, *main.closed);
    ASSERT_EQ(ended.size(), 1u);
    EXPECT_EQ(ended[0].session, alice->id());
    EXPECT_EQ(ended[0].reason, EndReason::taken_over);
    EXPECT_FALSE(alice->add_channel(FakeChannel{}.handle(3, "cursor"))) << "an ended session takes no channel";
    EXPECT_EQ(registry.live(), (std::vector<std::shared_ptr<Session>>{claimed.session}));
}

TEST_F(RegistryTest, DenyKeepsTheHolderAndNamesIt) {
    auto alice = claim_ok("vm1", "alice", SeatPolicy::deny);
    auto outcome = registry.claim(origin("vm1", "bob"), SeatPolicy::deny);
    ASSERT_TRUE(std::holds_alternative<Registry::Refused>(outcome));
    EXPECT_EQ(std::get<Registry::Refused>(outcome).holder, alice);
    EXPECT_FALSE(alice->ended());
    EXPECT_TRUE(ended.empty());
    // deny refuses the holder's own second client too: the seat is taken, whoever asks
    EXPECT_TRUE(std::holds_alternative<Registry::Refused>(registry.claim(origin("vm1", "alice"), SeatPolicy::deny)));
}

TEST_F(RegistryTest, SameUserLetsOnlyTheHolderTakeOver) {
    auto alice = claim_ok("vm1", "alice@EXAMPLE", SeatPolicy::same_user);
    EXPECT_TRUE(std::holds_alternative<Registry::Refused>(
        registry.claim(origin("vm1", "bob@EXAMPLE"), SeatPolicy::same_user)));
    EXPECT_TRUE(std::holds_alternative<Registry::Refused>(
        registry.claim(origin("vm1", "alice@OTHER"), SeatPolicy::same_user)))
        << "the same name in another realm is another principal";
    auto again = claim_ok("vm1", "alice@EXAMPLE", SeatPolicy::same_user);
    EXPECT_TRUE(alice->ended());
    EXPECT_FALSE(again->ended());
}

TEST_F(RegistryTest, SeatsArePerVmAndFreedWhenTheSessionEnds) {
    auto alice = claim_ok("vm1", "alice", SeatPolicy::deny);
    auto bob = claim_ok("vm2", "bob", SeatPolicy::deny);
    EXPECT_FALSE(alice->ended());
    alice->end(EndReason::client_closed, "main channel ended");
    registry.remove(*alice);
    auto carol = claim_ok("vm1", "carol", SeatPolicy::deny);
    EXPECT_NE(carol->id(), alice->id());
    EXPECT_NE(carol->id(), bob->id());
}

TEST_F(RegistryTest, AnEndedSessionNoLongerHoldsTheSeatEvenBeforeRemoval) {
    auto alice = claim_ok("vm1", "alice", SeatPolicy::deny);
    alice->end(EndReason::killed, "by the admin");
    claim_ok("vm1", "bob", SeatPolicy::deny);
}

TEST_F(RegistryTest, EndHappensOnceAndFindNeedsTheSpiceIdOfALiveSession) {
    auto alice = claim_ok("vm1", "alice", SeatPolicy::takeover);
    EXPECT_EQ(registry.find("vm1", 0x1234), nullptr) << "no id before MAIN_INIT";
    alice->set_spice_session_id(0x1234);
    EXPECT_EQ(registry.find("vm1", 0x1234), alice);
    EXPECT_EQ(registry.find("vm2", 0x1234), nullptr);
    EXPECT_EQ(alice->end_text(), "");
    EXPECT_TRUE(alice->end(EndReason::window_closed, "it is 23:00"));
    EXPECT_FALSE(alice->end(EndReason::killed, "again"));
    EXPECT_EQ(alice->end_text(), "window-closed: it is 23:00") << "the first end stands";
    EXPECT_EQ(ended.size(), 1u);
    EXPECT_EQ(registry.find("vm1", 0x1234), nullptr);
    EXPECT_TRUE(registry.live().empty());
}

TEST_F(RegistryTest, TrafficAndChannelsAreSummedOverOpenChannels) {
    auto alice = claim_ok("vm1", "alice", SeatPolicy::takeover);
    FakeChannel main, display;
    alice->add_channel(main.handle(1, "main"));
    alice->add_channel(display.handle(2, "display"));
    main.traffic->add_from_client(10);
    display.traffic->add_to_client(1000);
    display.traffic->add_from_client(5);
    EXPECT_EQ(alice->bytes_from_client(), 15u);
    EXPECT_EQ(alice->bytes_to_client(), 1000u);
    EXPECT_EQ(alice->channel_names(), (std::vector<std::string>{"main", "display"}));
    alice->remove_channel(2);
    EXPECT_EQ(alice->channel_names(), (std::vector<std::string>{"main"}));
}

TEST_F(RegistryTest, OnlyInputsChannelBytesCountAsInput) {
    auto alice = claim_ok("vm1", "alice", SeatPolicy::takeover);
    FakeChannel display, inputs;
    alice->add_channel(display.handle(1, "display"));
    alice->add_channel(inputs.handle(2, "inputs"));
    display.traffic->add_from_client(100);  // acknowledgements, not a person at the keyboard
    alice->observe_input(t0 + 5s);
    EXPECT_EQ(alice->last_input(), t0);
    inputs.traffic->add_from_client(6);
    alice->observe_input(t0 + 7s);
    EXPECT_EQ(alice->last_input(), t0 + 7s);
    alice->observe_input(t0 + 9s);
    EXPECT_EQ(alice->last_input(), t0 + 7s);
}

TEST_F(RegistryTest, VncInputMessagesCountAsInputAndItsOtherBytesDoNot) {
    auto alice = claim_ok("vm1", "alice", SeatPolicy::takeover);
    FakeChannel vnc;
    alice->add_channel(vnc.handle(1, "vnc"));
    vnc.traffic->add_from_client(500);  // framebuffer update requests
    alice->observe_input(t0 + 5s);
    EXPECT_EQ(alice->last_input(), t0);
    vnc.traffic->add_input();
    alice->observe_input(t0 + 7s);
    EXPECT_EQ(alice->last_input(), t0 + 7s);
}

TEST(Expiry, IdleTimeoutCountsFromTheLastInput) {
    const Limits limits{30s, 0s};
    EXPECT_FALSE(expiry(limits, t0, t0 + 10s, false, t0 + 39s));
    const auto e = expiry(limits, t0, t0 + 10s, false, t0 + 40s);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->reason, EndReason::idle_timeout);
    EXPECT_NE(e->detail.find("30s"), std::string::npos) << e->detail;
}

TEST(Expiry, ViewOnlySessionsAreNeverIdle) {
    EXPECT_FALSE(expiry({30s, 0s}, t0, t0, true, t0 + 24h));
}

TEST(Expiry, MaxSessionCountsFromTheStartWhateverTheInput) {
    const Limits limits{10min, 2h};
    EXPECT_FALSE(expiry(limits, t0, t0 + 2h - 1s, false, t0 + 2h - 1s));
    const auto e = expiry(limits, t0, t0 + 2h, false, t0 + 2h);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->reason, EndReason::max_session);
    EXPECT_NE(e->detail.find("2h"), std::string::npos) << e->detail;
    EXPECT_EQ(expiry(limits, t0, t0, true, t0 + 3h)->reason, EndReason::max_session) << "view-only too";
}

TEST(Expiry, NoLimitsNoEnd) {
    EXPECT_FALSE(expiry({}, t0, t0, false, t0 + 24h * 365));
}

TEST(EndReasonText, CodesAreStable) {
    EXPECT_EQ(to_string(EndReason::window_closed), "window-closed");
    EXPECT_EQ(to_string(EndReason::policy_reload), "policy-reload");
    EXPECT_EQ(to_string(EndReason::idle_timeout), "idle-timeout");
    EXPECT_EQ(to_string(EndReason::taken_over), "taken-over");
}

}  // namespace
}  // namespace vmgate::session
