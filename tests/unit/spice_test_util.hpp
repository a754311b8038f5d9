// Byte-vector helpers shared by the spice_*.cpp unit tests.
#pragma once

#include "byte_test_util.hpp"

#include "spice/protocol.hpp"

#include <array>
#include <cstdint>
#include <string_view>

namespace vmgate::spice::test {

using namespace vmgate::test;  // Bytes, hex, ascii, cat, chunkings, ...

inline Bytes le32(std::uint32_t value) {
    return {static_cast<std::uint8_t>(value), static_cast<std::uint8_t>(value >> 8),
            static_cast<std::uint8_t>(value >> 16), static_cast<std::uint8_t>(value >> 24)};
}

inline Bytes le16(std::uint16_t value) {
    return {static_cast<std::uint8_t>(value), static_cast<std::uint8_t>(value >> 8)};
}

// A syntactically plausible RSA-1024 SPKI (§2.4): documented prefix and suffix, patterned modulus.
inline std::array<std::uint8_t, pubkey_size> sample_pub_key() {
    const Bytes prefix = hex("30 81 9F 30 0D 06 09 2A 86 48 86 F7 0D 01 01 01 05 00 03 81 8D 00 30 81 89 02 81 81 00");
    const Bytes suffix = hex("02 03 01 00 01");
    std::array<std::uint8_t, pubkey_size> key{};
    std::size_t i = 0;
    for (std::uint8_t b : prefix) key[i++] = b;
    for (std::uint8_t n = 0; i < pubkey_size - suffix.size(); ++n) key[i++] = static_cast<std::uint8_t>(0xA0 ^ n);
    for (std::uint8_t b : suffix) key[i++] = b;
    return key;
}

inline std::array<std::uint8_t, ticket_ciphertext_size> sample_ticket() {
    std::array<std::uint8_t, ticket_ciphertext_size> t{};
    for (std::size_t i = 0; i < t.size(); ++i) t[i] = static_cast<std::uint8_t>(i * 7 + 3);
    return t;
}

}  // namespace vmgate::spice::test
