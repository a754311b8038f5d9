#include "vnc/protocol.hpp"

#include <algorithm>

namespace vmgate::vnc {
namespace {

// §1.1 layout: "RFB " + 3 digits + "." + 3 digits + "\n"; '9' marks a digit position.
constexpr std::string_view version_pattern = "RFB 999.999\n";
constexpr char digit_mark = '9';
constexpr std::size_t major_offset = 4;
constexpr std::size_t minor_offset = 8;
constexpr std::size_t digits = 3;
constexpr unsigned decimal = 10;
static_assert(version_pattern.size() == protocol_version_size);

bool matches_pattern(std::uint8_t byte, char pattern) {
    if (pattern == digit_mark) return byte >= '0' && byte <= '9';
    return byte == static_cast<std::uint8_t>(pattern);
}

unsigned decimal_at(std::span<const std::uint8_t> bytes, std::size_t offset) {
    unsigned value = 0;
    for (std::size_t i = 0; i < digits; ++i) value = value * decimal + (bytes[offset + i] - '0');
    return value;
}

}  // namespace

std::size_t protocol_version_match_length(std::span<const std::uint8_t> bytes) {
    const std::size_t limit = std::min(bytes.size(), version_pattern.size());
    std::size_t matched = 0;
    while (matched < limit && matches_pattern(bytes[matched], version_pattern[matched])) ++matched;
    return matched;
}

std::optional<ProtocolVersion> parse_protocol_version(std::span<const std::uint8_t> bytes) {
    if (bytes.size() != protocol_version_size || protocol_version_match_length(bytes) != bytes.size()) {
        return std::nullopt;
    }
    return ProtocolVersion{decimal_at(bytes, major_offset), decimal_at(bytes, minor_offset)};
}

std::string printable(std::span<const std::uint8_t> bytes) {
    constexpr std::uint8_t first_printable = 0x20;
    constexpr std::uint8_t last_printable = 0x7e;
    std::string text;
    for (std::uint8_t b : bytes) {
        text.push_back(b >= first_printable && b <= last_printable ? static_cast<char>(b) : '?');
    }
    return text;
}

}  // namespace vmgate::vnc
