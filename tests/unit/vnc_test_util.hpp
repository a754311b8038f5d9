// Byte-vector helpers shared by the vnc_*.cpp unit tests.
#pragma once

#include "byte_test_util.hpp"

#include <cstdint>
#include <string_view>

namespace vmgate::vnc::test {

using namespace vmgate::test;  // Bytes, hex, ascii, cat, chunkings, ...

// RFB integers are big-endian.
inline Bytes be32(std::uint32_t value) {
    return {static_cast<std::uint8_t>(value >> 24), static_cast<std::uint8_t>(value >> 16),
            static_cast<std::uint8_t>(value >> 8), static_cast<std::uint8_t>(value)};
}

inline Bytes be16(std::uint16_t value) {
    return {static_cast<std::uint8_t>(value >> 8), static_cast<std::uint8_t>(value)};
}

// u32 length + text: the form of reasons, mechanism lists and names.
inline Bytes framed(std::string_view text) { return cat({be32(static_cast<std::uint32_t>(text.size())), ascii(text)}); }

template <class... Ts>
struct Overloaded : Ts... {
    using Ts::operator()...;
};

}  // namespace vmgate::vnc::test
