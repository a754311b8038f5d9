// Encoders and validating decoders for the link-phase structs (§2.2–§2.6). Pure functions: the
// state machines in downstream_link.hpp / upstream_link.hpp feed them complete messages.
#pragma once

#include "spice/protocol.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

namespace vmgate::spice {

// §2.2 SpiceLinkHeader; `size` counts the bytes after the header.
struct LinkHeader {
    std::array<std::uint8_t, 4> magic = link_magic;
    std::uint32_t major = version_major;
    std::uint32_t minor = version_minor;
    std::uint32_t size = 0;
};

// §2.3 SpiceLinkMess. caps_offset is not kept: decoding resolves it, encoding always writes 18.
struct LinkMess {
    std::uint32_t connection_id = 0;
    std::uint8_t channel_type = 0;
    std::uint8_t channel_id = 0;
    CapSet common_caps;
    CapSet channel_caps;

    bool operator==(const LinkMess&) const = default;
};

// §2.4 SpiceLinkReply. pub_key is all zero when ticket auth is not offered; caps_offset is 178.
struct LinkReply {
    LinkError error = LinkError::ok;
    std::array<std::uint8_t, pubkey_size> pub_key{};
    CapSet common_caps;
    CapSet channel_caps;

    bool operator==(const LinkReply&) const = default;
};

// A protocol violation. `code` is the link error the peer is (or would be) told; `detail` is a
// human reason for logs. Also an event of both link machines.
struct Failed {
    LinkError code = LinkError::invalid_data;
    std::string detail;
};

// Either the decoded value or why the input was refused.
template <typename T>
using Decoded = std::variant<T, Failed>;

// Header + body. Preconditions: each caps array holds at most max_caps_words words.
std::vector<std::uint8_t> encode_link_mess(const LinkMess& mess);
std::vector<std::uint8_t> encode_link_reply(const LinkReply& reply);

// §2.4: header with size=178 and a 178-byte reply that is zero except `error`. Clients reject
// anything shorter, so this is the only correct way to refuse a link.
std::vector<std::uint8_t> encode_link_error(LinkError error);

LinkHeader decode_link_header(std::span<const std::uint8_t, link_header_size> bytes);

// §2.6 step 1: the magic alone decides INVALID_MAGIC, before the rest of the header arrives.
bool is_link_magic(std::span<const std::uint8_t> first_four_bytes);

// §2.6 step 2, once is_link_magic passed: major must be 2 and min_body <= size <= max_link_body.
// min_body is link_mess_size for a client's link, link_reply_size for a server's reply (§2.4).
std::optional<Failed> check_link_header(const LinkHeader& header, std::size_t min_body);

// `body` is exactly the header.size bytes after the header. Validates the caps bounds (§2.6
// step 3) and, for LinkReply, the same rules relative to the 178-byte struct.
Decoded<LinkMess> decode_link_mess(std::span<const std::uint8_t> body);
Decoded<LinkReply> decode_link_reply(std::span<const std::uint8_t> body);

}  // namespace vmgate::spice
