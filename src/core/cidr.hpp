// IP addresses and CIDR blocks without any socket library: IPv4 is held as IPv4-mapped IPv6 so
// one comparison serves both families.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vmgate::core {

struct IpAddress {
    std::array<std::uint8_t, 16> bytes{};  // IPv4 as ::ffff:a.b.c.d
    bool operator==(const IpAddress&) const = default;

    static std::optional<IpAddress> parse(std::string_view text);  // "10.0.0.1", "::1"
    bool is_v4() const;
    std::string to_string() const;
};

struct Cidr {
    IpAddress network;
    unsigned prefix_len = 128;  // in IPv6 bits (an IPv4 /24 is stored as /120)
    std::string text;           // as written

    static std::optional<Cidr> parse(std::string_view text);  // "10.0.0.0/8", "::1/128", "1.2.3.4"
    bool contains(const IpAddress& a) const;
};

// "[::1]" -> "::1"; any other text as it is.
std::string_view unbracketed(std::string_view host);
// Hosts that only this machine reaches: 127.0.0.0/8 (also IPv4-mapped), ::1, "localhost" and
// "localhost.localdomain"; brackets around IPv6 allowed.
bool is_loopback_host(std::string_view host);
// "", 0.0.0.0 and ::, which mean every address of the machine; brackets allowed.
bool is_unspecified_host(std::string_view host);

}  // namespace vmgate::core
