// Byte-vector helpers shared by the spice_*.cpp unit tests.
#pragma once

#include "spice/protocol.hpp"

#include <array>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace vmgate::spice::test {

using Bytes = std::vector<std::uint8_t>;

// "52 45 44 51" → {0x52, 0x45, 0x44, 0x51}; whitespace is ignored.
inline Bytes hex(std::string_view text) {
    Bytes out;
    std::string digits;
    for (char c : text) {
        if (c == ' ' || c == '\n') continue;
        digits.push_back(c);
        if (digits.size() == 2) {
            out.push_back(static_cast<std::uint8_t>(std::stoul(digits, nullptr, 16)));
            digits.clear();
        }
    }
    if (!digits.empty()) throw std::invalid_argument("odd number of hex digits");
    return out;
}

inline Bytes ascii(std::string_view text) { return Bytes(text.begin(), text.end()); }

inline Bytes le32(std::uint32_t value) {
    return {static_cast<std::uint8_t>(value), static_cast<std::uint8_t>(value >> 8),
            static_cast<std::uint8_t>(value >> 16), static_cast<std::uint8_t>(value >> 24)};
}

inline Bytes le16(std::uint16_t value) {
    return {static_cast<std::uint8_t>(value), static_cast<std::uint8_t>(value >> 8)};
}

inline Bytes cat(std::initializer_list<Bytes> parts) {
    Bytes out;
    for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
}

// Every way to cut a stream: {whole}, each single cut point, and byte by byte.
inline std::vector<std::vector<Bytes>> chunkings(const Bytes& stream) {
    std::vector<std::vector<Bytes>> all{{stream}};
    for (std::size_t cut = 1; cut < stream.size(); ++cut) {
        all.push_back({Bytes(stream.begin(), stream.begin() + static_cast<std::ptrdiff_t>(cut)),
                       Bytes(stream.begin() + static_cast<std::ptrdiff_t>(cut), stream.end())});
    }
    std::vector<Bytes> single;
    for (std::uint8_t b : stream) single.push_back({b});
    all.push_back(single);
    return all;
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

inline Bytes to_bytes(std::span<const std::uint8_t> s) { return Bytes(s.begin(), s.end()); }

}  // namespace vmgate::spice::test
