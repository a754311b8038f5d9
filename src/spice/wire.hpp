// Little-endian field access (§1: every SPICE integer is LE, structs are packed) and the input
// accumulator the incremental parsers share. Byte-wise so the code is endian- and alignment-safe.
#pragma once

#include "core/input_buffer.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace vmgate::spice::wire {

inline void put_u8(std::vector<std::uint8_t>& out, std::uint8_t value) { out.push_back(value); }

inline void put_u16(std::vector<std::uint8_t>& out, std::uint16_t value) {
    out.push_back(static_cast<std::uint8_t>(value));
    out.push_back(static_cast<std::uint8_t>(value >> 8));
}

inline void put_u32(std::vector<std::uint8_t>& out, std::uint32_t value) {
    put_u16(out, static_cast<std::uint16_t>(value));
    put_u16(out, static_cast<std::uint16_t>(value >> 16));
}

inline void put_bytes(std::vector<std::uint8_t>& out, std::span<const std::uint8_t> bytes) {
    out.insert(out.end(), bytes.begin(), bytes.end());
}

// Callers check bounds first: the offsets come from fixed layouts after a length check.
inline std::uint16_t get_u16(std::span<const std::uint8_t> in, std::size_t offset) {
    return static_cast<std::uint16_t>(in[offset] | (in[offset + 1] << 8));
}

inline std::uint32_t get_u32(std::span<const std::uint8_t> in, std::size_t offset) {
    return get_u16(in, offset) | (std::uint32_t{get_u16(in, offset + 2)} << 16);
}

using InputBuffer = core::InputBuffer;

}  // namespace vmgate::spice::wire
