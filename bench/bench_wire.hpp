// What the load clients and the sink say to each other once a channel is up.
//
// SPICE tests: everything the sink sends is framed as SPICE mini-header messages
// (spice-protocol.md §8.1): on a main channel vmgate parses the whole server → client stream
// (§8.2, §8.3), so unframed bytes would stall or break there. The client → server direction is
// not parsed and stays raw.
//
// VNC tests (namespace rfb below): the other way round. vmgate relays the server → client
// direction unchanged but passes client → server bytes only as whole RFB client messages QEMU
// would accept (vnc/client_message_filter.hpp), so the client wraps everything it sends in
// ClientCutText messages. Every peer gets the same framing, so their figures stay comparable.
#pragma once

#include "spice/protocol.hpp"
#include "spice/wire.hpp"
#include "vnc/protocol.hpp"
#include "vnc/wire.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace vmgate::bench {

// A message type no SPICE channel uses, and not one of the migration messages vmgate drops.
inline constexpr std::uint16_t bench_message_type = 60000;

// Ping-pong unit: one mini-header message of 64 bytes in all, echoed back unchanged.
inline constexpr std::size_t ping_size = 64;

// Bulk: the client sends a u64 LE byte count, then that many bytes; the sink answers with one
// empty message once it has consumed them all, so the client times delivery, not buffering.
inline constexpr std::size_t bulk_header_size = sizeof(std::uint64_t);

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

namespace rfb {

// RFB server → client message types (rfbproto "Server to Client Messages"); only the one the
// sink sends. ServerCutText has ClientCutText's layout.
enum class ServerMessageType : std::uint8_t {
    server_cut_text = 3,
};

// Both cut-text messages: u8 type, 3 bytes padding, s32 text length, then the text
// (rfb-protocol.md §5.2).
inline constexpr std::size_t cut_text_header_size = 8;
inline constexpr std::size_t cut_text_length_at = 4;

inline std::vector<std::uint8_t> cut_text_header(std::uint8_t type, std::size_t text_size) {
    std::vector<std::uint8_t> out;
    vnc::wire::put_u8(out, type);
    out.resize(cut_text_length_at, 0);
    vnc::wire::put_u32(out, static_cast<std::uint32_t>(text_size));
    return out;
}

inline std::vector<std::uint8_t> client_cut_text_header(std::size_t text_size) {
    return cut_text_header(static_cast<std::uint8_t>(vnc::ClientMessageType::client_cut_text), text_size);
}

inline std::vector<std::uint8_t> client_cut_text(std::span<const std::uint8_t> text) {
    auto out = client_cut_text_header(text.size());
    out.insert(out.end(), text.begin(), text.end());
    return out;
}

// Ping-pong unit: one ClientCutText of 64 bytes in all (56 bytes of text), echoed back unchanged
// (the server → client direction is not parsed).
inline std::array<std::uint8_t, ping_size> make_ping() {
    std::array<std::uint8_t, ping_size - cut_text_header_size> text{};
    for (std::size_t i = 0; i < text.size(); ++i) text[i] = static_cast<std::uint8_t>(i);
    const auto message = client_cut_text(text);
    std::array<std::uint8_t, ping_size> ping{};
    std::copy(message.begin(), message.end(), ping.begin());
    return ping;
}

// A bulk transfer is the stream above (the u64 count, then the bytes) carried in the texts of
// ClientCutText messages, each within QEMU's limit (vnc::max_client_cut_text_len); the sink
// unwraps the texts. Its acknowledgement is an empty ServerCutText: vmgate would relay any bytes
// toward the client, but these read as RFB too.
inline std::vector<std::uint8_t> bulk_ack() {
    return cut_text_header(static_cast<std::uint8_t>(ServerMessageType::server_cut_text), 0);
}

// §5.1 the sink's ServerInit: 1024x768 in QEMU's pixel format (32 bpp, depth 24, little-endian,
// true colour, 8 bits per channel at shifts 16/8/0), named "bench".
inline std::vector<std::uint8_t> server_init() {
    constexpr std::uint16_t width = 1024;
    constexpr std::uint16_t height = 768;
    constexpr std::array<std::uint8_t, 4> depth_and_flags = {32, 24, 0, 1};  // bpp, depth, big-endian, true colour
    constexpr std::uint16_t channel_max = 255;
    constexpr std::array<std::uint8_t, 3> shifts = {16, 8, 0};  // red, green, blue
    constexpr std::size_t padding = 3;
    constexpr std::string_view name = "bench";
    std::vector<std::uint8_t> out;
    vnc::wire::put_u16(out, width);
    vnc::wire::put_u16(out, height);
    vnc::wire::put_bytes(out, depth_and_flags);
    for (std::size_t colour = 0; colour < shifts.size(); ++colour) vnc::wire::put_u16(out, channel_max);
    vnc::wire::put_bytes(out, shifts);
    out.resize(out.size() + padding, 0);
    vnc::wire::put_u32(out, static_cast<std::uint32_t>(name.size()));
    vnc::wire::put_text(out, name);
    return out;
}

}  // namespace rfb

}  // namespace vmgate::bench
