#include "vnc/vnc_auth.hpp"
#include "vnc_test_util.hpp"

#include <gtest/gtest.h>

#include <algorithm>

namespace vmgate::vnc {
namespace {

VncChallenge challenge_of(std::string_view hex_digits) {
    const test::Bytes bytes = test::hex(hex_digits);
    VncChallenge c{};
    std::ranges::copy(bytes, c.begin());
    return c;
}

const VncChallenge counting_challenge = challenge_of("000102030405060708090a0b0c0d0e0f");

// rfb-protocol.md §2, checked there against OpenSSL, Python cryptography and noVNC's des.js.
TEST(VncAuth, DocumentedVectors) {
    EXPECT_EQ(test::to_hex(vnc_auth_response("password", counting_challenge)), "b866924125c8eebb9debc1db61c538e2");
    EXPECT_EQ(test::to_hex(vnc_auth_response("secret", counting_challenge)), "ee22539f33a5983ec12f9c2edbc995dd");
    EXPECT_EQ(test::to_hex(vnc_auth_response("longerthan8chars", counting_challenge)),
              "76543820b2c358fe359083c192fa77c9");
}

// Derived with `openssl enc -des-ecb -provider legacy -K 0ec325ceceeef64e -nopad`: a non-ASCII
// password, whose high bits become the (ignored) parity bits once mirrored.
TEST(VncAuth, DerivedVectorWithNonAsciiPassword) {
    const VncChallenge challenge = challenge_of("0f1e2d3c4b5a69788796a5b4c3d2e1f0");
    EXPECT_EQ(test::to_hex(vnc_auth_key("p\xc3\xa4sswort")), "0ec325ceceeef64e");
    EXPECT_EQ(test::to_hex(vnc_auth_response("p\xc3\xa4sswort", challenge)), "c1279cd3f7b49fc05cd1bd5be38f57c9");
}

TEST(VncAuth, KeyIsMirroredTruncatedAndPadded) {
    EXPECT_EQ(test::to_hex(vnc_auth_key("password")), "0e86ceceeef64e26");
    EXPECT_EQ(test::to_hex(vnc_auth_key("secret")), "cea6c64ea62e0000");
    EXPECT_EQ(vnc_auth_key("longerthan8chars"), vnc_auth_key("longerth"));
    EXPECT_EQ(test::to_hex(vnc_auth_key("")), "0000000000000000");
    EXPECT_EQ(test::to_hex(vnc_auth_key(std::string_view("\x01\x80", 2))), "8001000000000000");
}

TEST(VncAuth, ResponseMatchesOnlyTheRightPassword) {
    const VncResponse right = vnc_auth_response("password", counting_challenge);
    EXPECT_TRUE(vnc_auth_response_matches("password", counting_challenge, right));
    EXPECT_TRUE(vnc_auth_response_matches("password-and-more", counting_challenge, right));  // truncated to 8
    EXPECT_FALSE(vnc_auth_response_matches("passwore", counting_challenge, right));
    EXPECT_FALSE(vnc_auth_response_matches("password", challenge_of("100102030405060708090a0b0c0d0e0f"), right));
    for (std::size_t i = 0; i < right.size(); ++i) {
        VncResponse wrong = right;
        wrong[i] ^= 0x80;
        EXPECT_FALSE(vnc_auth_response_matches("password", counting_challenge, wrong)) << i;
    }
}

}  // namespace
}  // namespace vmgate::vnc
