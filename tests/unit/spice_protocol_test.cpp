#include "spice/protocol.hpp"

#include <gtest/gtest.h>

namespace vmgate::spice {
namespace {

TEST(SpiceCapSet, BitsMapToWordsLittleEndianWithinWord) {
    CapSet caps;
    EXPECT_FALSE(caps.has(0));
    caps.set(CommonCap::auth_selection);
    caps.set(CommonCap::mini_header);
    EXPECT_EQ(caps.words, std::vector<std::uint32_t>{0x09});
    caps.set(33);
    EXPECT_EQ(caps.words, (std::vector<std::uint32_t>{0x09, 0x02}));
    EXPECT_TRUE(caps.has(33));
    EXPECT_FALSE(caps.has(32));
    EXPECT_FALSE(caps.has(1000));  // absent word means "off" (§1)
    caps.clear(CommonCap::auth_selection);
    caps.clear(500);  // clearing an absent bit is harmless and does not grow the set
    EXPECT_EQ(caps.words, (std::vector<std::uint32_t>{0x08, 0x02}));
    EXPECT_TRUE(caps.has(CommonCap::mini_header));
    EXPECT_FALSE(caps.has(CommonCap::auth_selection));
}

TEST(SpiceCapSet, HighestBitOfWord) {
    CapSet caps;
    caps.set(31);
    EXPECT_EQ(caps.words, std::vector<std::uint32_t>{0x80000000u});
}

TEST(SpiceChannelNames, AllKnownTypesHaveTheirSpiceGtkNames) {
    const char* names[] = {"main",     "display",   "inputs",   "cursor", "playback", "record",
                           "tunnel",   "smartcard", "usbredir", "port",   "webdav"};
    for (std::uint8_t type = 1; type <= 11; ++type) {
        EXPECT_EQ(channel_name(type), names[type - 1]);
    }
    EXPECT_EQ(channel_name(0), "unknown");
    EXPECT_EQ(channel_name(12), "unknown");
    EXPECT_EQ(channel_name(255), "unknown");
}

TEST(SpiceLinkErrorNames, EveryCodeAndUnknown) {
    EXPECT_EQ(to_string(LinkError::ok), "ok");
    EXPECT_EQ(to_string(LinkError::invalid_magic), "invalid_magic");
    EXPECT_EQ(to_string(LinkError::permission_denied), "permission_denied");
    EXPECT_EQ(to_string(LinkError::channel_not_available), "channel_not_available");
    EXPECT_EQ(to_string(static_cast<LinkError>(10)), "unknown");
    EXPECT_EQ(to_string(static_cast<LinkError>(0x51444552)), "unknown");
}

// The enum values are wire values (§2.5, §3.1, §3.2, §8.3); a renumbering would break peers.
static_assert(static_cast<std::uint32_t>(LinkError::channel_not_available) == 9);
static_assert(static_cast<std::uint8_t>(ChannelType::webdav) == 11);
static_assert(static_cast<unsigned>(CommonCap::mini_header) == 3);
static_assert(static_cast<std::uint32_t>(AuthMechanism::sasl) == 2);
static_assert(static_cast<std::uint16_t>(MainMsg::migrate_begin_seamless) == 116);
static_assert(link_header_size + link_reply_size == 194);

}  // namespace
}  // namespace vmgate::spice
