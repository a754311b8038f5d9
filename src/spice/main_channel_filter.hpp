// Watches the server → client byte stream of a MAIN channel after the link (§8): records the
// session id from MAIN_INIT (§8.2), drops the migration messages that carry the hypervisor's
// address (§8.3: MIGRATE_BEGIN, MIGRATE_BEGIN_SEAMLESS, MIGRATE_SWITCH_HOST), and removes the
// channels the client may not open from CHANNELS_LIST (§6.4), so a client never tries a
// channel it would be refused. Every other byte is forwarded unchanged, whatever the chunking.
// Safe on the main channel only: it has no ACK window (§8.1, §12 item 21).
//
// Memory stays bounded: only a message header (and a CHANNELS_LIST body, when channels are
// hidden) is buffered; other bodies stream straight through (or are skipped), and the session
// id is picked from the first four body bytes as they pass.
#pragma once

#include "spice/protocol.hpp"

#include <array>
#include <bitset>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace vmgate::spice {

class MainChannelFilter {
public:
    // mini_header: the 6-byte header (u16 type, u32 size) negotiated by MINI_HEADER; otherwise
    // the 18-byte one (u64 serial, u16 type, u32 size, u32 sub_list).
    // hidden_channels: channel types (bit n = type n) removed from every CHANNELS_LIST.
    explicit MainChannelFilter(bool mini_header, std::bitset<256> hidden_channels = {});

    // Appends to `to_client` every byte of `in` that belongs to a forwarded message. After
    // failed() nothing more is appended; the caller closes both legs.
    void feed(std::span<const std::uint8_t> in, std::vector<std::uint8_t>& to_client);

    std::optional<std::uint32_t> session_id() const { return session_id_; }
    std::vector<std::uint16_t> take_dropped();  // types dropped since the last call, for audit
    bool failed() const { return failed_; }     // an oversized body or a malformed CHANNELS_LIST

private:
    std::span<const std::uint8_t> read_header(std::span<const std::uint8_t> in,
                                              std::vector<std::uint8_t>& to_client);
    std::span<const std::uint8_t> pass_body(std::span<const std::uint8_t> in,
                                            std::vector<std::uint8_t>& to_client);
    void on_header(std::vector<std::uint8_t>& to_client);
    void capture_session_id(std::span<const std::uint8_t> body_chunk);
    void emit_channels_list(std::vector<std::uint8_t>& to_client);

    std::size_t header_size_;
    std::size_t type_at_;
    std::array<std::uint8_t, full_header_size> header_{};
    std::size_t header_fill_ = 0;
    std::uint64_t body_left_ = 0;  // body bytes of the current message still to come
    const std::bitset<256> hidden_channels_;
    bool dropping_ = false;        // the current body is skipped, not forwarded
    bool rewriting_ = false;       // the current body is a CHANNELS_LIST being collected
    std::vector<std::uint8_t> list_body_;
    bool capturing_ = false;       // the current body is the first MAIN_INIT
    std::array<std::uint8_t, sizeof(std::uint32_t)> init_prefix_{};
    std::size_t init_fill_ = 0;
    std::optional<std::uint32_t> session_id_;
    std::vector<std::uint16_t> dropped_;
    bool failed_ = false;
};

}  // namespace vmgate::spice
