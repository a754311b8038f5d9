#include "core/cidr.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>

namespace vmgate::core {

namespace {

constexpr unsigned kBitsPerByte = 8;
constexpr unsigned kV6Bits = 128;
constexpr unsigned kV4Bits = 32;
// An IPv4 address sits in the last 32 bits of ::ffff:0:0/96.
constexpr unsigned kV4MappedPrefixBits = kV6Bits - kV4Bits;
constexpr std::size_t kV4Offset = 12;
constexpr std::array<std::uint8_t, kV4Offset> kV4MappedPrefix{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

// Byte `index` of a 128-bit mask made of `prefix_len` leading ones.
std::uint8_t mask_byte(unsigned prefix_len, std::size_t index) {
    const auto byte_start = static_cast<unsigned>(index) * kBitsPerByte;
    if (prefix_len >= byte_start + kBitsPerByte) return 0xff;
    if (prefix_len <= byte_start) return 0;
    return static_cast<std::uint8_t>(0xffu << (kBitsPerByte - (prefix_len - byte_start)));
}

std::optional<unsigned> parse_prefix(std::string_view text) {
    unsigned value = 0;
    const char* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (text.empty() || ec != std::errc{} || ptr != end) return std::nullopt;
    return value;
}

}  // namespace

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
    // inet_pton reads a C string: an embedded NUL would silently truncate the input.
    if (text.find('\0') != std::string_view::npos) return std::nullopt;
    const std::string c_text(text);
    IpAddress a;
    std::array<std::uint8_t, 4> v4{};
    if (inet_pton(AF_INET, c_text.c_str(), v4.data()) == 1) {
        std::copy(kV4MappedPrefix.begin(), kV4MappedPrefix.end(), a.bytes.begin());
        std::copy(v4.begin(), v4.end(), a.bytes.begin() + kV4Offset);
        return a;
    }
    if (inet_pton(AF_INET6, c_text.c_str(), a.bytes.data()) == 1) return a;
    return std::nullopt;
}

bool IpAddress::is_v4() const { return std::equal(kV4MappedPrefix.begin(), kV4MappedPrefix.end(), bytes.begin()); }

std::string IpAddress::to_string() const {
    std::array<char, INET6_ADDRSTRLEN> buffer{};
    const bool v4 = is_v4();
    const void* src = v4 ? static_cast<const void*>(bytes.data() + kV4Offset) : bytes.data();
    if (inet_ntop(v4 ? AF_INET : AF_INET6, src, buffer.data(), buffer.size()) == nullptr) return {};
    return buffer.data();
}

std::optional<Cidr> Cidr::parse(std::string_view text) {
    const auto slash = text.find('/');
    const std::string_view address_text = text.substr(0, slash);
    const auto address = IpAddress::parse(address_text);
    if (!address) return std::nullopt;
    // The prefix counts in the family the address is written in: "::ffff:10.0.0.0/104" is IPv6.
    const bool written_v4 = address_text.find(':') == std::string_view::npos;
    const unsigned family_bits = written_v4 ? kV4Bits : kV6Bits;
    unsigned prefix = family_bits;
    if (slash != std::string_view::npos) {
        const auto written = parse_prefix(text.substr(slash + 1));
        if (!written || *written > family_bits) return std::nullopt;
        prefix = *written;
    }
    Cidr c;
    c.prefix_len = written_v4 ? kV4MappedPrefixBits + prefix : prefix;
    // "10.1.2.3/8" is accepted as 10.0.0.0/8: admins often write a host inside the block.
    for (std::size_t i = 0; i < c.network.bytes.size(); ++i)
        c.network.bytes[i] = static_cast<std::uint8_t>(address->bytes[i] & mask_byte(c.prefix_len, i));
    c.text = std::string(text);
    return c;
}

bool Cidr::contains(const IpAddress& a) const {
    for (std::size_t i = 0; i < a.bytes.size(); ++i) {
        const std::uint8_t mask = mask_byte(prefix_len, i);
        // Masking both sides keeps a hand-built Cidr with host bits set correct.
        if ((a.bytes[i] & mask) != (network.bytes[i] & mask)) return false;
    }
    return true;
}

std::string_view unbracketed(std::string_view host) {
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') return host.substr(1, host.size() - 2);
    return host;
}

bool is_loopback_host(std::string_view host) {
    host = unbracketed(host);
    if (host == "localhost" || host == "localhost.localdomain") return true;
    const auto ip = IpAddress::parse(host);
    if (!ip) return false;
    if (ip->is_v4()) return ip->bytes[12] == 127;
    IpAddress v6_loopback;
    v6_loopback.bytes[15] = 1;
    return *ip == v6_loopback;
}

bool is_unspecified_host(std::string_view host) {
    host = unbracketed(host);
    if (host.empty()) return true;
    const auto ip = IpAddress::parse(host);
    if (!ip) return false;
    if (ip->is_v4()) return ip->bytes[12] == 0 && ip->bytes[13] == 0 && ip->bytes[14] == 0 && ip->bytes[15] == 0;
    return *ip == IpAddress{};
}

}  // namespace vmgate::core
