#include "spice/link_codec.hpp"

#include "spice/wire.hpp"

#include <algorithm>

namespace vmgate::spice {
namespace {

constexpr std::size_t word_size = sizeof(std::uint32_t);

// Field offsets inside the structs (§2.2–§2.4); both structs end with the same caps triple.
namespace header_at {
constexpr std::size_t major = 4;
constexpr std::size_t minor = 8;
constexpr std::size_t size = 12;
}  // namespace header_at

namespace mess_at {
constexpr std::size_t connection_id = 0;
constexpr std::size_t channel_type = 4;
constexpr std::size_t channel_id = 5;
constexpr std::size_t caps_triple = 6;
}  // namespace mess_at

namespace reply_at {
constexpr std::size_t error = 0;
constexpr std::size_t pub_key = 4;
constexpr std::size_t caps_triple = pub_key + pubkey_size;
}  // namespace reply_at

// num_common_caps, num_channel_caps, caps_offset.
struct CapsTriple {
    std::uint32_t common_words = 0;
    std::uint32_t channel_words = 0;
    std::uint32_t offset = 0;
};

void put_link_header(std::vector<std::uint8_t>& out, std::size_t body_size) {
    wire::put_bytes(out, link_magic);
    wire::put_u32(out, version_major);
    wire::put_u32(out, version_minor);
    wire::put_u32(out, static_cast<std::uint32_t>(body_size));
}

std::size_t caps_bytes(const CapSet& common, const CapSet& channel) {
    return word_size * (common.words.size() + channel.words.size());
}

// Writes the caps triple with the caps directly after the fixed struct, then the words.
void put_caps(std::vector<std::uint8_t>& out, const CapSet& common, const CapSet& channel,
              std::size_t fixed_size) {
    wire::put_u32(out, static_cast<std::uint32_t>(common.words.size()));
    wire::put_u32(out, static_cast<std::uint32_t>(channel.words.size()));
    wire::put_u32(out, static_cast<std::uint32_t>(fixed_size));
    for (std::uint32_t w : common.words) wire::put_u32(out, w);
    for (std::uint32_t w : channel.words) wire::put_u32(out, w);
}

CapsTriple read_caps_triple(std::span<const std::uint8_t> body, std::size_t at) {
    return {wire::get_u32(body, at), wire::get_u32(body, at + word_size),
            wire::get_u32(body, at + 2 * word_size)};
}

std::optional<Failed> check_caps_bounds(const CapsTriple& caps, std::size_t fixed_size,
                                        std::size_t body_size) {
    if (caps.common_words > max_caps_words || caps.channel_words > max_caps_words) {
        return Failed{LinkError::invalid_data,
                      "too many caps words (" + std::to_string(caps.common_words) + " common, " +
                          std::to_string(caps.channel_words) + " channel; limit " +
                          std::to_string(max_caps_words) + ")"};
    }
    // Only a message that carries caps has a meaningful offset (spice-server checks it the same
    // way); 64-bit arithmetic because offset is attacker-controlled.
    const std::uint64_t words = std::uint64_t{caps.common_words} + caps.channel_words;
    if (words == 0) return std::nullopt;
    const std::uint64_t end = std::uint64_t{caps.offset} + word_size * words;
    if (caps.offset < fixed_size || end > body_size) {
        return Failed{LinkError::invalid_data,
                      "caps outside the link message (offset " + std::to_string(caps.offset) +
                          ", " + std::to_string(words) + " words, size " +
                          std::to_string(body_size) + ")"};
    }
    return std::nullopt;
}

CapSet read_words(std::span<const std::uint8_t> body, std::size_t at, std::uint32_t count) {
    CapSet caps;
    caps.words.reserve(count);
    for (std::uint32_t i = 0; i < count; ++i) caps.words.push_back(wire::get_u32(body, at + word_size * i));
    return caps;
}

// Validates and reads the caps that follow a fixed struct of `fixed_size` bytes.
std::optional<Failed> decode_caps(std::span<const std::uint8_t> body, std::size_t triple_at,
                                  std::size_t fixed_size, CapSet& common, CapSet& channel) {
    const CapsTriple caps = read_caps_triple(body, triple_at);
    if (auto failed = check_caps_bounds(caps, fixed_size, body.size())) return failed;
    common = read_words(body, caps.offset, caps.common_words);
    channel = read_words(body, caps.offset + word_size * caps.common_words, caps.channel_words);
    return std::nullopt;
}

Failed too_short(std::string_view what, std::size_t size, std::size_t minimum) {
    return Failed{LinkError::invalid_data, std::string(what) + " of " + std::to_string(size) +
                                               " bytes is shorter than " + std::to_string(minimum)};
}

}  // namespace

std::vector<std::uint8_t> encode_link_mess(const LinkMess& mess) {
    const std::size_t body = link_mess_size + caps_bytes(mess.common_caps, mess.channel_caps);
    std::vector<std::uint8_t> out;
    out.reserve(link_header_size + body);
    put_link_header(out, body);
    wire::put_u32(out, mess.connection_id);
    wire::put_u8(out, mess.channel_type);
    wire::put_u8(out, mess.channel_id);
    put_caps(out, mess.common_caps, mess.channel_caps, link_mess_size);
    return out;
}

std::vector<std::uint8_t> encode_link_reply(const LinkReply& reply) {
    const std::size_t body = link_reply_size + caps_bytes(reply.common_caps, reply.channel_caps);
    std::vector<std::uint8_t> out;
    out.reserve(link_header_size + body);
    put_link_header(out, body);
    wire::put_u32(out, static_cast<std::uint32_t>(reply.error));
    wire::put_bytes(out, reply.pub_key);
    put_caps(out, reply.common_caps, reply.channel_caps, link_reply_size);
    return out;
}

std::vector<std::uint8_t> encode_link_error(LinkError error) {
    std::vector<std::uint8_t> out;
    out.reserve(link_header_size + link_reply_size);
    put_link_header(out, link_reply_size);
    wire::put_u32(out, static_cast<std::uint32_t>(error));
    out.resize(link_header_size + link_reply_size, 0);
    return out;
}

LinkHeader decode_link_header(std::span<const std::uint8_t, link_header_size> bytes) {
    LinkHeader header;
    std::copy_n(bytes.begin(), header.magic.size(), header.magic.begin());
    header.major = wire::get_u32(bytes, header_at::major);
    header.minor = wire::get_u32(bytes, header_at::minor);
    header.size = wire::get_u32(bytes, header_at::size);
    return header;
}

bool is_link_magic(std::span<const std::uint8_t> first_four_bytes) {
    return std::ranges::equal(first_four_bytes, link_magic);
}

std::optional<Failed> check_link_header(const LinkHeader& header, std::size_t min_body) {
    if (header.major != version_major) {
        return Failed{LinkError::version_mismatch,
                      "unsupported major version " + std::to_string(header.major)};
    }
    if (header.size < min_body || header.size > max_link_body) {
        return Failed{LinkError::invalid_data, "link size " + std::to_string(header.size) +
                                                   " outside " + std::to_string(min_body) + ".." +
                                                   std::to_string(max_link_body)};
    }
    return std::nullopt;
}

Decoded<LinkMess> decode_link_mess(std::span<const std::uint8_t> body) {
    if (body.size() < link_mess_size) return too_short("link message", body.size(), link_mess_size);
    LinkMess mess;
    mess.connection_id = wire::get_u32(body, mess_at::connection_id);
    mess.channel_type = body[mess_at::channel_type];
    mess.channel_id = body[mess_at::channel_id];
    if (auto failed = decode_caps(body, mess_at::caps_triple, link_mess_size, mess.common_caps,
                                  mess.channel_caps)) {
        return *failed;
    }
    return mess;
}

Decoded<LinkReply> decode_link_reply(std::span<const std::uint8_t> body) {
    if (body.size() < link_reply_size) return too_short("link reply", body.size(), link_reply_size);
    LinkReply reply;
    reply.error = static_cast<LinkError>(wire::get_u32(body, reply_at::error));
    std::copy_n(body.begin() + reply_at::pub_key, pubkey_size, reply.pub_key.begin());
    if (auto failed = decode_caps(body, reply_at::caps_triple, link_reply_size, reply.common_caps,
                                  reply.channel_caps)) {
        return *failed;
    }
    return reply;
}

}  // namespace vmgate::spice
