// What the load clients and the sink say to each other once a channel is up.
//
// Everything the sink sends is framed as SPICE mini-header messages (spice-protocol.md §8.1):
// on a main channel vmgate parses the whole server → client stream (§8.2, §8.3), so unframed
// bytes would stall or break there. The client → server direction is not parsed and stays raw.
#pragma once

#include "spice/protocol.hpp"
#include "spice/wire.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace vmgate::bench {

// A message type no SPICE channel uses, and not one of the migration messages vmgate drops.
inline constexpr std::uint16_t bench_message_type = 60000;

// Ping-pong unit: one mini-header message of 64 bytes in all, echoed back unchanged.
inline constexpr std::size_t ping_size = 64;

// Bulk: the client sends a u64 LE byte count, then that many bytes; the sink answers with one
// empty message once it has consumed them all, so the client times delivery, not buffering.
inline constexpr std::size_t bulk_header_size = sizeof(std::uint64_t);
inline constexpr std::size_t bulk_ack_size = spice::mini_header_size;

// §8.2 SPICE_MSG_MAIN_INIT: what the sink sends first on a main channel, as QEMU does.
inline constexpr std::uint32_t main_init_body_size = 32;
inline constexpr std::size_t main_init_size = spice::mini_header_size + main_init_body_size;

inline std::array<std::uint8_t, ping_size> make_ping() {
    std::vector<std::uint8_t> out;
    spice::wire::put_u16(out, bench_message_type);
    spice::wire::put_u32(out, static_cast<std::uint32_t>(ping_size - spice::mini_header_size));
    std::array<std::uint8_t, ping_size> ping{};
    std::copy(out.begin(), out.end(), ping.begin());
    for (std::size_t i = out.size(); i < ping.size(); ++i) ping[i] = static_cast<std::uint8_t>(i);
    return ping;
}

inline std::vector<std::uint8_t> bulk_header(std::uint64_t bytes) {
    std::vector<std::uint8_t> out;
    spice::wire::put_u32(out, static_cast<std::uint32_t>(bytes));
    spice::wire::put_u32(out, static_cast<std::uint32_t>(bytes >> 32));
    return out;
}

inline std::uint64_t parse_bulk_header(std::span<const std::uint8_t, bulk_header_size> bytes) {
    return spice::wire::get_u32(bytes, 0) | (std::uint64_t{spice::wire::get_u32(bytes, sizeof(std::uint32_t))} << 32);
}

inline std::vector<std::uint8_t> bulk_ack() {
    std::vector<std::uint8_t> out;
    spice::wire::put_u16(out, bench_message_type);
    spice::wire::put_u32(out, 0);
    return out;
}

// The session id is all that matters to vmgate; the other fields stay zero.
inline std::vector<std::uint8_t> main_init(std::uint32_t session_id) {
    std::vector<std::uint8_t> out;
    spice::wire::put_u16(out, static_cast<std::uint16_t>(spice::MainMsg::init));
    spice::wire::put_u32(out, main_init_body_size);
    spice::wire::put_u32(out, session_id);
    out.resize(main_init_size, 0);
    return out;
}

inline std::optional<std::uint32_t> parse_main_init(std::span<const std::uint8_t, main_init_size> bytes) {
    if (spice::wire::get_u16(bytes, 0) != static_cast<std::uint16_t>(spice::MainMsg::init) ||
        spice::wire::get_u32(bytes, sizeof(std::uint16_t)) != main_init_body_size)
        return std::nullopt;
    return spice::wire::get_u32(bytes, spice::mini_header_size);
}

}  // namespace vmgate::bench
