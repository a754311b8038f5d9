#include "spice/protocol.hpp"

namespace vmgate::spice {
namespace {

constexpr unsigned bits_per_word = 32;

// Indexed by ChannelType value; index 0 is not a channel.
constexpr std::array<std::string_view, 12> channel_names{
    "unknown", "main",     "display",  "inputs", "cursor", "playback",
    "record",  "tunnel",   "smartcard", "usbredir", "port", "webdav",
};

constexpr std::array<std::string_view, 10> link_error_names{
    "ok",
    "error",
    "invalid_magic",
    "invalid_data",
    "version_mismatch",
    "need_secured",
    "need_unsecured",
    "permission_denied",
    "bad_connection_id",
    "channel_not_available",
};

constexpr std::uint32_t bit_mask(unsigned bit) { return std::uint32_t{1} << (bit % bits_per_word); }

}  // namespace

bool CapSet::has(unsigned bit) const {
    const std::size_t word = bit / bits_per_word;
    return word < words.size() && (words[word] & bit_mask(bit)) != 0;
}

void CapSet::set(unsigned bit) {
    const std::size_t word = bit / bits_per_word;
    if (word >= words.size()) words.resize(word + 1, 0);
    words[word] |= bit_mask(bit);
}

void CapSet::clear(unsigned bit) {
    const std::size_t word = bit / bits_per_word;
    if (word < words.size()) words[word] &= ~bit_mask(bit);
}

std::string_view channel_name(std::uint8_t type) {
    return type < channel_names.size() ? channel_names[type] : channel_names[0];
}


std::string_view to_string(LinkError error) {
    const auto value = static_cast<std::uint32_t>(error);
    return value < link_error_names.size() ? link_error_names[value] : "unknown";
}

}  // namespace vmgate::spice
