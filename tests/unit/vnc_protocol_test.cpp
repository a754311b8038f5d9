#include "vnc/protocol.hpp"
#include "vnc_test_util.hpp"

#include <gtest/gtest.h>

namespace vmgate::vnc {
namespace {

using test::ascii;

TEST(VncProtocol, ParsesVersions) {
    const auto v38 = parse_protocol_version(ascii("RFB 003.008\n"));
    ASSERT_TRUE(v38);
    EXPECT_EQ(v38->major, 3u);
    EXPECT_EQ(v38->minor, 8u);
    const auto apple = parse_protocol_version(ascii("RFB 003.889\n"));
    ASSERT_TRUE(apple);
    EXPECT_EQ(apple->minor, 889u);
    const auto repeater = parse_protocol_version(ascii("RFB 000.000\n"));
    ASSERT_TRUE(repeater);
    EXPECT_EQ(repeater->major, 0u);
}

TEST(VncProtocol, RefusesMalformedVersions) {
    EXPECT_FALSE(parse_protocol_version(ascii("RFB 003.008")));      // short
    EXPECT_FALSE(parse_protocol_version(ascii("RFB 003.008\n\n")));  // long
    EXPECT_FALSE(parse_protocol_version(ascii("RFB 003.008\r")));
    EXPECT_FALSE(parse_protocol_version(ascii("RFB 3.8     \n")));
    EXPECT_FALSE(parse_protocol_version(ascii("rfb 003.008\n")));
    EXPECT_FALSE(parse_protocol_version(ascii("RFB 003,008\n")));
    EXPECT_FALSE(parse_protocol_version(ascii("RFB 0x3.008\n")));
}

TEST(VncProtocol, MatchLengthStopsAtTheFirstImpossibleByte) {
    EXPECT_EQ(protocol_version_match_length(ascii("")), 0u);
    EXPECT_EQ(protocol_version_match_length(ascii("RFB 00")), 6u);
    EXPECT_EQ(protocol_version_match_length(ascii("RFB 003.008\n")), 12u);
    EXPECT_EQ(protocol_version_match_length(ascii("RFB 003.008\nextra")), 12u);
    EXPECT_EQ(protocol_version_match_length(ascii("GET / HTTP/1.1")), 0u);
    EXPECT_EQ(protocol_version_match_length(ascii("RFB 003.00x\n")), 10u);
    EXPECT_EQ(protocol_version_match_length(test::hex("16 03 01 02 00")), 0u);  // TLS ClientHello
}

TEST(VncProtocol, PrintableReplacesControlAndNonAsciiBytes) {
    EXPECT_EQ(printable(ascii("QEMU (vm1)")), "QEMU (vm1)");
    EXPECT_EQ(printable(test::hex("41 00 0a 7f c3 a4 7e")), "A?????~");
}

}  // namespace
}  // namespace vmgate::vnc
