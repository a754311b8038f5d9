// Big-endian field access (rfb-protocol.md: every RFB integer is in network order) and the input
// accumulator the incremental parsers share. Byte-wise so the code is endian- and alignment-safe.
#pragma once

#include "core/input_buffer.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace vmgate::vnc::wire {

inline void put_u8(std::vector<std::uint8_t>& out, std::uint8_t value) { out.push_back(value); }

inline void put_u16(std::vector<std::uint8_t>& out, std::uint16_t value) {
    out.push_back(static_cast<std::uint8_t>(value >> 8));
    out.push_back(static_cast<std::uint8_t>(value));
}

inline void put_u32(std::vector<std::uint8_t>& out, std::uint32_t value) {
    put_u16(out, static_cast<std::uint16_t>(value >> 16));
    put_u16(out, static_cast<std::uint16_t>(value));
}

inline void put_bytes(std::vector<std::uint8_t>& out, std::span<const std::uint8_t> bytes) {
    out.insert(out.end(), bytes.begin(), bytes.end());
}

inline void put_text(std::vector<std::uint8_t>& out, std::string_view text) {
    out.insert(out.end(), text.begin(), text.end());
}

// Callers check bounds first: the offsets come from fixed layouts after a length check.
inline std::uint16_t get_u16(std::span<const std::uint8_t> in, std::size_t offset) {
    return static_cast<std::uint16_t>((in[offset] << 8) | in[offset + 1]);
}

inline std::uint32_t get_u32(std::span<const std::uint8_t> in, std::size_t offset) {
    return (std::uint32_t{get_u16(in, offset)} << 16) | get_u16(in, offset + 2);
}

using InputBuffer = core::InputBuffer;

}  // namespace vmgate::vnc::wire
