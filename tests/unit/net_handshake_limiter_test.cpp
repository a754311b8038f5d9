// The handshake limiter: a total limit, a per-source limit, and places given back by RAII.
#include "net/handshake_limiter.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace vmgate::net {
namespace {

TEST(HandshakeLimiter, PerSourceLimitLeavesRoomForOthers) {
    HandshakeLimiter limiter(10, 2);
    std::string why;
    auto a1 = limiter.try_acquire("192.0.2.1", why);
    auto a2 = limiter.try_acquire("192.0.2.1", why);
    ASSERT_TRUE(a1 && a2);
    EXPECT_FALSE(limiter.try_acquire("192.0.2.1", why));
    EXPECT_EQ(why, "too many handshakes in progress from 192.0.2.1 (max_handshakes_per_source = 2)");
    EXPECT_TRUE(limiter.try_acquire("192.0.2.2", why));  // another source still gets in
}

TEST(HandshakeLimiter, TotalLimitAppliesAcrossSources) {
    HandshakeLimiter limiter(3, 3);
    std::string why;
    std::vector<HandshakeLimiter::Slot> held;
    for (const char* source : {"192.0.2.1", "192.0.2.2", "192.0.2.3"}) held.push_back(*limiter.try_acquire(source, why));
    EXPECT_FALSE(limiter.try_acquire("192.0.2.4", why));
    EXPECT_EQ(why, "too many handshakes in progress (max_handshakes = 3)");
    EXPECT_EQ(limiter.in_progress(), 3u);
}

TEST(HandshakeLimiter, EndedHandshakesGiveTheirPlaceBack) {
    HandshakeLimiter limiter(1, 1);
    std::string why;
    {
        auto slot = limiter.try_acquire("192.0.2.1", why);
        ASSERT_TRUE(slot);
        auto moved = std::move(*slot);  // a moved-from slot releases nothing
        slot.reset();
        EXPECT_FALSE(limiter.try_acquire("192.0.2.1", why));
    }
    EXPECT_EQ(limiter.in_progress(), 0u);
    EXPECT_TRUE(limiter.try_acquire("192.0.2.1", why));
}

}  // namespace
}  // namespace vmgate::net
