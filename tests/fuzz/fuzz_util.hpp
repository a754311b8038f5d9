// Shared pieces of the libFuzzer harnesses: input layout, chunking, invariant checks.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace vmgate::fuzz {

// Input layout of every harness: byte 0 = behaviour flags, byte 1 = chunking seed, rest = the
// peer's byte stream. Too-short inputs are padded with zero flags.
struct Input {
    std::uint8_t flags = 0;
    std::uint8_t seed = 0;
    std::span<const std::uint8_t> stream;
};

inline Input split_input(const std::uint8_t* data, std::size_t size) {
    constexpr std::size_t prefix = 2;
    if (size < prefix) return {0, 0, std::span<const std::uint8_t>(data, size)};
    return {data[0], data[1], std::span<const std::uint8_t>(data + prefix, size - prefix)};
}

// Cuts the stream into chunks of 1..max_chunk bytes from a tiny deterministic generator, so
// every run can be compared with a whole-stream run of the same input (split-invariance).
inline std::vector<std::span<const std::uint8_t>> chunk(std::span<const std::uint8_t> stream, std::uint8_t seed) {
    constexpr std::uint32_t multiplier = 1103515245;
    constexpr std::uint32_t increment = 12345;
    constexpr std::uint32_t max_chunk = 67;
    std::vector<std::span<const std::uint8_t>> chunks;
    std::uint32_t state = seed;
    while (!stream.empty()) {
        state = state * multiplier + increment;
        const std::size_t n = std::min<std::size_t>(1 + (state >> 16) % max_chunk, stream.size());
        chunks.push_back(stream.first(n));
        stream = stream.subspan(n);
    }
    return chunks;
}

// An invariant violation is a crash the fuzzer reports with its input.
inline void check(bool holds) {
    if (!holds) __builtin_trap();
}

}  // namespace vmgate::fuzz
