// TicketStore semantics with an injected clock.
#include "auth/ticket_store.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <set>
#include <thread>
#include <vector>

namespace vmgate::auth {
namespace {

using namespace std::chrono_literals;
using Clock = TicketStore::Clock;

const Clock::time_point t0 = Clock::time_point{} + 1000h;
const core::Identity kAnne{"anne", "corp", "SCRAM-SHA-256"};
constexpr std::uint32_t kSession = 0x1234;

TicketStore::Redeemed redeemed(const TicketStore::Outcome& outcome) {
    if (const auto* reason = std::get_if<std::string>(&outcome)) ADD_FAILURE() << *reason;
    return std::holds_alternative<TicketStore::Redeemed>(outcome)
               ? std::get<TicketStore::Redeemed>(outcome)
               : TicketStore::Redeemed{};
}

std::string reason(const TicketStore::Outcome& outcome) {
    if (const auto* text = std::get_if<std::string>(&outcome)) return *text;
    return "(redeemed)";
}

// A store holding one ticket for anne on vm1, redeemed by a main channel of kSession.
struct BoundTicket {
    TicketStore store;
    std::string secret = store.issue(kAnne, "vm1", 30s, t0);
    std::uint64_t id = redeemed(store.redeem_for_main(secret, "vm1", t0 + 1s)).ticket_id;
    BoundTicket() { store.bind_session(id, kSession); }
};

TEST(TicketStore, SecretIsLongAlphanumericAndFitsSpice) {
    TicketStore store;
    const auto secret = store.issue(kAnne, "vm1", 30s, t0);
    EXPECT_GE(secret.size(), 20U);
    EXPECT_LE(secret.size(), 59U);
    EXPECT_TRUE(std::all_of(secret.begin(), secret.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    }));
}

TEST(TicketStore, SecretsAreDistinct) {
    TicketStore store;
    std::set<std::string> secrets;
    for (int i = 0; i < 1000; ++i) secrets.insert(store.issue(kAnne, "vm1", 30s, t0));
    EXPECT_EQ(secrets.size(), 1000U);
}

TEST(TicketStore, MainChannelRedeemsOnceWithTicketIdentity) {
    TicketStore store;
    const auto secret = store.issue(kAnne, "vm1", 30s, t0);
    const auto first = redeemed(store.redeem_for_main(secret, "vm1", t0 + 29s));
    EXPECT_EQ(first.who.user, "anne");
    EXPECT_EQ(first.who.realm, "corp");
    EXPECT_EQ(first.who.mechanism, "ticket");
    EXPECT_EQ(first.vm, "vm1");
    EXPECT_EQ(reason(store.redeem_for_main(secret, "vm1", t0 + 2s)), "ticket already used");
}

TEST(TicketStore, UnknownTicket) {
    TicketStore store;
    store.issue(kAnne, "vm1", 30s, t0);
    EXPECT_EQ(reason(store.redeem_for_main("nope", "vm1", t0)), "unknown ticket");
    EXPECT_EQ(reason(store.check_for_channel("nope", "vm1", kSession)), "unknown ticket");
}

TEST(TicketStore, ExpiredTicketSaysHowLongAgo) {
    TicketStore store;
    const auto secret = store.issue(kAnne, "vm1", 30s, t0);
    EXPECT_EQ(reason(store.redeem_for_main(secret, "vm1", t0 + 42s)), "ticket expired 12 s ago");
    EXPECT_EQ(reason(store.redeem_for_main(secret, "vm1", t0 + 30s)), "ticket expired 0 s ago");
}

TEST(TicketStore, TicketIsForOneVm) {
    TicketStore store;
    const auto secret = store.issue(kAnne, "vm2", 30s, t0);
    EXPECT_EQ(reason(store.redeem_for_main(secret, "vm1", t0)), "ticket is for vm2, not vm1");
    redeemed(store.redeem_for_main(secret, "vm2", t0));  // the wrong vm did not burn it
}

TEST(TicketStore, SecondaryChannelOfTheBoundSessionIsAcceptedAfterTheTtl) {
    BoundTicket bound;
    const auto channel = redeemed(bound.store.check_for_channel(bound.secret, "vm1", kSession));
    EXPECT_EQ(channel.ticket_id, bound.id);
    EXPECT_EQ(channel.who.mechanism, "ticket");
    bound.store.expire(t0 + 1h);
    redeemed(bound.store.check_for_channel(bound.secret, "vm1", kSession));
}

TEST(TicketStore, OtherSessionIsRefused) {
    BoundTicket bound;
    EXPECT_EQ(reason(bound.store.check_for_channel(bound.secret, "vm1", kSession + 1)),
              "ticket already used by another session");
    EXPECT_EQ(reason(bound.store.check_for_channel(bound.secret, "vm2", kSession)),
              "ticket is for vm1, not vm2");
}

TEST(TicketStore, ChannelBeforeTheSessionIsKnownIsRefused) {
    TicketStore store;
    const auto secret = store.issue(kAnne, "vm1", 30s, t0);
    EXPECT_EQ(reason(store.check_for_channel(secret, "vm1", kSession)),
              "ticket has no SPICE session yet");
    redeemed(store.redeem_for_main(secret, "vm1", t0));
    EXPECT_EQ(reason(store.check_for_channel(secret, "vm1", kSession)),
              "ticket has no SPICE session yet");
}

TEST(TicketStore, SessionEndKillsTheTicketForGood) {
    BoundTicket bound;
    bound.store.session_ended(kSession);
    EXPECT_EQ(reason(bound.store.check_for_channel(bound.secret, "vm1", kSession)),
              "the session of this ticket has ended");
    EXPECT_EQ(reason(bound.store.redeem_for_main(bound.secret, "vm1", t0 + 2s)),
              "ticket already used");
    bound.store.expire(t0 + 31s);
    EXPECT_EQ(bound.store.size(), 0U);
    EXPECT_EQ(reason(bound.store.check_for_channel(bound.secret, "vm1", kSession)),
              "unknown ticket");
}

TEST(TicketStore, OtherSessionsEndingDoesNotMatter) {
    BoundTicket bound;
    bound.store.session_ended(kSession + 1);
    redeemed(bound.store.check_for_channel(bound.secret, "vm1", kSession));
}

TEST(TicketStore, ExpireDropsExpiredUnredeemedTicketsOnly) {
    BoundTicket bound;
    const auto fresh = bound.store.issue(kAnne, "vm1", 60s, t0);
    const auto stale = bound.store.issue(kAnne, "vm1", 10s, t0);
    bound.store.expire(t0 + 10s);
    EXPECT_EQ(bound.store.size(), 2U);
    EXPECT_EQ(reason(bound.store.redeem_for_main(stale, "vm1", t0 + 10s)), "unknown ticket");
    redeemed(bound.store.redeem_for_main(fresh, "vm1", t0 + 10s));
}

TEST(TicketStore, RedeemedButNeverBoundIsForgottenAfterAGrace) {
    TicketStore store;
    const auto secret = store.issue(kAnne, "vm1", 30s, t0);
    redeemed(store.redeem_for_main(secret, "vm1", t0));
    store.expire(t0 + 31s);
    EXPECT_EQ(store.size(), 1U);  // its main channel may still be binding
    store.expire(t0 + 1h);
    EXPECT_EQ(store.size(), 0U);
}

TEST(TicketStore, ConcurrentRedeemsLetExactlyOneMainChannelIn) {
    TicketStore store;
    const auto secret = store.issue(kAnne, "vm1", 30s, t0);
    std::vector<TicketStore::Outcome> outcomes(8, std::string());
    {
        std::vector<std::jthread> threads;
        for (auto& outcome : outcomes)
            threads.emplace_back([&] { outcome = store.redeem_for_main(secret, "vm1", t0); });
    }
    EXPECT_EQ(std::count_if(outcomes.begin(), outcomes.end(),
                            [](const auto& o) { return o.index() == 0; }),
              1);
}

// The predicate stands for "the client's DES response was made with this secret".
auto answers_with(std::string expected) {
    return [expected = std::move(expected)](std::string_view secret) { return secret == expected; };
}

TEST(TicketStore, VncSecretIsEightAlphanumericCharacters) {
    TicketStore store;
    const auto secret = store.issue(kAnne, "vm1", 30s, t0, TicketStore::Protocol::vnc);
    EXPECT_EQ(secret.size(), 8U);
    EXPECT_TRUE(std::all_of(secret.begin(), secret.end(), [](unsigned char c) { return std::isalnum(c); }));
}

TEST(TicketStore, VncTicketOpensOneConnectionWithTicketIdentity) {
    TicketStore store;
    store.issue(kAnne, "vm1", 30s, t0, TicketStore::Protocol::vnc);  // another one, not answered
    const auto secret = store.issue(kAnne, "vm1", 30s, t0, TicketStore::Protocol::vnc);
    const auto r = redeemed(store.redeem_vnc("vm1", t0 + 1s, answers_with(secret)));
    EXPECT_EQ(r.who.user, "anne");
    EXPECT_EQ(r.who.mechanism, "ticket");
    EXPECT_EQ(r.vm, "vm1");
    EXPECT_EQ(reason(store.redeem_vnc("vm1", t0 + 2s, answers_with(secret))), "ticket already used");
}

TEST(TicketStore, VncTicketRefusalsSayWhy) {
    TicketStore store;
    const auto secret = store.issue(kAnne, "vm1", 30s, t0, TicketStore::Protocol::vnc);
    EXPECT_EQ(reason(store.redeem_vnc("vm2", t0, answers_with(secret))), "ticket is for vm1, not vm2");
    EXPECT_EQ(reason(store.redeem_vnc("vm1", t0 + 42s, answers_with(secret))), "ticket expired 12 s ago");
    EXPECT_EQ(reason(store.redeem_vnc("vm1", t0, answers_with("wrong"))),
              "no VNC ticket matches the response (wrong or unknown ticket)");
}

TEST(TicketStore, TicketsOfOneProtocolDoNotOpenTheOther) {
    TicketStore store;
    const auto vnc = store.issue(kAnne, "vm1", 30s, t0, TicketStore::Protocol::vnc);
    const auto spice = store.issue(kAnne, "vm1", 30s, t0);
    EXPECT_EQ(reason(store.redeem_for_main(vnc, "vm1", t0)), "unknown ticket");
    // VNC auth uses 8 characters of a password: a SPICE ticket's prefix must not pass.
    EXPECT_EQ(reason(store.redeem_vnc("vm1", t0, answers_with(spice.substr(0, 8)))),
              "no VNC ticket matches the response (wrong or unknown ticket)");
}

TEST(TicketStore, ExpireForgetsVncTicketsAfterTheirTtl) {
    TicketStore store;
    store.issue(kAnne, "vm1", 30s, t0, TicketStore::Protocol::vnc);
    store.issue(kAnne, "vm1", 90s, t0);
    store.expire(t0 + 30s);
    EXPECT_EQ(store.size(), 1U);
}

}  // namespace
}  // namespace vmgate::auth
