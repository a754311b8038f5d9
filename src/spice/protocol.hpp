// SPICE wire-protocol vocabulary: enums, limits and capability sets shared by every state machine
// in this folder. Section numbers (§) refer to docs/spice-protocol.md.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace vmgate::spice {

// §2.5 SpiceLinkErr: the `error` field of a link reply and the final u32 link result.
enum class LinkError : std::uint32_t {
    ok = 0,
    error = 1,
    invalid_magic = 2,
    invalid_data = 3,
    version_mismatch = 4,
    need_secured = 5,
    need_unsecured = 6,
    permission_denied = 7,
    bad_connection_id = 8,
    channel_not_available = 9,
};

// §6.1 channel types.
enum class ChannelType : std::uint8_t {
    main = 1,
    display = 2,
    inputs = 3,
    cursor = 4,
    playback = 5,
    record = 6,
    tunnel = 7,
    smartcard = 8,
    usbredir = 9,
    port = 10,
    webdav = 11,
};

// §3.1 common capability bit numbers.
enum class CommonCap : unsigned {
    auth_selection = 0,
    auth_spice = 1,
    auth_sasl = 2,
    mini_header = 3,
};

// §3.2 SpiceLinkAuthMechanism: the values are the CommonCap bit numbers.
enum class AuthMechanism : std::uint32_t {
    spice = 1,
    sasl = 2,
};

// §8.2, §8.3 main-channel message types, server → client.
enum class MainMsg : std::uint16_t {
    migrate_begin = 101,
    migrate_cancel = 102,
    init = 103,
    channels_list = 104,
    migrate_switch_host = 111,
    migrate_end = 112,
    name = 113,
    uuid = 114,
    migrate_begin_seamless = 116,
    migrate_dst_seamless_ack = 117,
    migrate_dst_seamless_nack = 118,
};

// §1, §2.2: "REDQ" in wire order, and the only protocol version spoken.
inline constexpr std::array<std::uint8_t, 4> link_magic{'R', 'E', 'D', 'Q'};
inline constexpr std::uint32_t version_major = 2;
inline constexpr std::uint32_t version_minor = 2;

// §2.2–§2.4 fixed sizes of the link structs.
inline constexpr std::size_t link_header_size = 16;
inline constexpr std::size_t link_mess_size = 18;
inline constexpr std::size_t link_reply_size = 178;
inline constexpr std::size_t pubkey_size = 162;

// §2.6 limits spice-server enforces on a link message.
inline constexpr std::size_t max_link_body = 4096;
inline constexpr std::size_t max_caps_words = 1024;

// §4 ticket: one RSA-1024 OAEP block; passwords of at most 59 characters end to end (§13).
inline constexpr std::size_t ticket_ciphertext_size = 128;

// §5.1 SASL framing limits. spice-gtk aborts on a longer mechlist; the gateway caps client data
// far below spice-server's 1 MiB because SCRAM/PLAIN messages are tiny.
inline constexpr std::size_t max_sasl_mechlist_len = 300;
inline constexpr std::size_t max_sasl_mechname_len = 100;
inline constexpr std::size_t max_sasl_data_len = 64 * 1024;

// Unparsed bytes a link machine holds while it waits for the gateway or the peer; every buffer
// has a bound (design.md, security invariant 3). Above the largest legal message (4 + 64 KiB).
inline constexpr std::size_t max_handshake_buffer = 128 * 1024;

// §8.1 data-phase headers; a main-channel body above this bound is treated as an attack.
inline constexpr std::size_t mini_header_size = 6;
inline constexpr std::size_t full_header_size = 18;
inline constexpr std::size_t max_main_message_body = 16 * 1024 * 1024;

// §1 capability bitmap: capability N is bit N % 32 of word N / 32; absent words mean "off".
struct CapSet {
    std::vector<std::uint32_t> words;

    bool has(unsigned bit) const;
    void set(unsigned bit);
    void clear(unsigned bit);
    bool has(CommonCap cap) const { return has(static_cast<unsigned>(cap)); }
    void set(CommonCap cap) { set(static_cast<unsigned>(cap)); }
    void clear(CommonCap cap) { clear(static_cast<unsigned>(cap)); }

    bool operator==(const CapSet&) const = default;
};

// §6.1 names as spice-gtk and QEMU's tls-channel= spell them; "unknown" for anything else.
std::string_view channel_name(std::uint8_t type);

// Stable snake_case names for logs and audit records; "unknown" for values outside §2.5.
std::string_view to_string(LinkError error);

}  // namespace vmgate::spice
