#include "vnc/des.hpp"
#include "vnc_test_util.hpp"

#include <gtest/gtest.h>

#include <algorithm>

namespace vmgate::vnc {
namespace {

DesBlock block(std::string_view hex_digits) {
    const test::Bytes bytes = test::hex(hex_digits);
    DesBlock b{};
    std::ranges::copy(bytes, b.begin());
    return b;
}

struct Vector {
    const char* key;
    const char* plaintext;
    const char* ciphertext;
};

// FIPS 81 appendix B (ECB, "Now is the time for all "), the NBS/SP 800-17 variable-plaintext
// and variable-key known answers, and the widely used 133457799BBCDFF1 worked example.
constexpr Vector vectors[] = {
    {"0123456789abcdef", "4e6f772069732074", "3fa40e8a984d4815"},
    {"0123456789abcdef", "68652074696d6520", "6a271787ab8883f9"},
    {"0123456789abcdef", "666f7220616c6c20", "893d51ec4b563b53"},
    {"0101010101010101", "8000000000000000", "95f8a5e5dd31d900"},
    {"8001010101010101", "0000000000000000", "95a8d72813daa94d"},
    {"133457799bbcdff1", "0123456789abcdef", "85e813540f0ab405"},
};

TEST(VncDes, KnownAnswers) {
    for (const Vector& v : vectors) {
        EXPECT_EQ(test::to_hex(des_encrypt(block(v.key), block(v.plaintext))), v.ciphertext) << v.key << " " << v.plaintext;
    }
}

TEST(VncDes, ParityBitsAreIgnored) {
    // Bit 0 of every key byte is parity (FIPS 46-3): flipping them all changes nothing.
    DesBlock key = block("0123456789abcdef");
    for (auto& b : key) b ^= 0x01;
    EXPECT_EQ(test::to_hex(des_encrypt(key, block("4e6f772069732074"))), "3fa40e8a984d4815");
}

}  // namespace
}  // namespace vmgate::vnc
