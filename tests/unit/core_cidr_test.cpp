#include "core/cidr.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace vmgate::core {
namespace {

IpAddress ip(std::string_view text) {
    const auto a = IpAddress::parse(text);
    EXPECT_TRUE(a) << text;
    return a.value_or(IpAddress{});
}

Cidr cidr(std::string_view text) {
    const auto c = Cidr::parse(text);
    EXPECT_TRUE(c) << text;
    return c.value_or(Cidr{});
}

TEST(IpAddress, Ipv4IsHeldAsMappedIpv6) {
    const IpAddress a = ip("10.1.2.3");
    EXPECT_TRUE(a.is_v4());
    const std::array<std::uint8_t, 16> expected{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3};
    EXPECT_EQ(a.bytes, expected);
    EXPECT_EQ(a.to_string(), "10.1.2.3");
    EXPECT_EQ(ip("::ffff:10.1.2.3"), a);
}

TEST(IpAddress, Ipv6) {
    const IpAddress a = ip("2001:db8::1");
    EXPECT_FALSE(a.is_v4());
    EXPECT_EQ(a.bytes[0], 0x20);
    EXPECT_EQ(a.bytes[15], 1);
    EXPECT_EQ(a.to_string(), "2001:db8::1");
    EXPECT_EQ(ip("::1").to_string(), "::1");
    EXPECT_FALSE(ip("::1").is_v4());
}

TEST(IpAddress, RejectsMalformedText) {
    for (std::string_view bad : {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.4 ", " ::1", "fe80::1%eth0",
                                 "host.example", "2001:db8::1::2", "10.0.0.0/8"})
        EXPECT_FALSE(IpAddress::parse(bad)) << bad;
    // inet_pton reads C strings; the NUL must not cut "1.2.3.4<NUL>junk" down to a valid address.
    EXPECT_FALSE(IpAddress::parse(std::string_view("1.2.3.4\0junk", 12)));
}

TEST(Cidr, Ipv4PrefixCountsInIpv6Bits) {
    const Cidr c = cidr("10.0.0.0/8");
    EXPECT_EQ(c.prefix_len, 104u);
    EXPECT_EQ(c.network, ip("10.0.0.0"));
    EXPECT_EQ(c.text, "10.0.0.0/8");
    EXPECT_TRUE(c.contains(ip("10.0.0.0")));
    EXPECT_TRUE(c.contains(ip("10.255.1.2")));
    EXPECT_FALSE(c.contains(ip("11.0.0.1")));
    EXPECT_FALSE(c.contains(ip("9.255.255.255")));
    EXPECT_FALSE(c.contains(ip("::1")));
}

TEST(Cidr, AddressWithoutPrefixIsOneHost) {
    const Cidr v4 = cidr("192.0.2.7");
    EXPECT_EQ(v4.prefix_len, 128u);
    EXPECT_TRUE(v4.contains(ip("192.0.2.7")));
    EXPECT_FALSE(v4.contains(ip("192.0.2.8")));
    const Cidr v6 = cidr("::1");
    EXPECT_EQ(v6.prefix_len, 128u);
    EXPECT_TRUE(v6.contains(ip("::1")));
    EXPECT_FALSE(v6.contains(ip("::2")));
}

TEST(Cidr, HostBitsAreClearedButTextIsKept) {
    const Cidr c = cidr("10.1.2.3/8");
    EXPECT_EQ(c.network, ip("10.0.0.0"));
    EXPECT_EQ(c.text, "10.1.2.3/8");
    EXPECT_TRUE(c.contains(ip("10.200.0.1")));
    EXPECT_EQ(cidr("2001:db8:1:2::5/32").network, ip("2001:db8::"));
}

TEST(Cidr, PrefixNotOnAByteBoundary) {
    const Cidr v4 = cidr("192.168.0.0/23");
    EXPECT_EQ(v4.prefix_len, 119u);
    EXPECT_TRUE(v4.contains(ip("192.168.1.255")));
    EXPECT_FALSE(v4.contains(ip("192.168.2.0")));
    const Cidr v6 = cidr("2001:db8::/33");
    EXPECT_TRUE(v6.contains(ip("2001:db8:7fff::1")));
    EXPECT_FALSE(v6.contains(ip("2001:db8:8000::1")));
}

TEST(Cidr, Ipv6Blocks) {
    const Cidr c = cidr("2001:db8::/32");
    EXPECT_TRUE(c.contains(ip("2001:db8:ffff::1")));
    EXPECT_FALSE(c.contains(ip("2001:db9::1")));
    EXPECT_FALSE(c.contains(ip("10.0.0.1")));
}

TEST(Cidr, ZeroPrefixes) {
    const Cidr any_v4 = cidr("0.0.0.0/0");
    EXPECT_EQ(any_v4.prefix_len, 96u);
    EXPECT_TRUE(any_v4.contains(ip("203.0.113.9")));
    EXPECT_FALSE(any_v4.contains(ip("2001:db8::1")));
    const Cidr any = cidr("::/0");
    EXPECT_TRUE(any.contains(ip("203.0.113.9")));
    EXPECT_TRUE(any.contains(ip("2001:db8::1")));
}

TEST(Cidr, MappedIpv6TextCountsTheIpv6Prefix) {
    const Cidr c = cidr("::ffff:10.0.0.0/104");
    EXPECT_EQ(c.prefix_len, 104u);
    EXPECT_TRUE(c.contains(ip("10.9.9.9")));
    EXPECT_FALSE(c.contains(ip("11.0.0.0")));
}

TEST(Cidr, RejectsMalformedText) {
    for (std::string_view bad : {"", "/8", "x/8", "10.0.0.0/", "10.0.0.0/33", "::/129", "10.0.0.0/-1",
                                 "10.0.0.0/+8", "10.0.0.0/8/9", "10.0.0.0/ 8", "10.0.0.0/8 ", "10.0.0/8",
                                 "10.0.0.0/0x8", "10.0.0.0/99999999999999999999"})
        EXPECT_FALSE(Cidr::parse(bad)) << bad;
}

TEST(Host, LoopbackHosts) {
    for (const char* host : {"127.0.0.1", "127.1.2.3", "::1", "[::1]", "::ffff:127.0.0.1", "localhost",
                             "localhost.localdomain"})
        EXPECT_TRUE(is_loopback_host(host)) << host;
    for (const char* host : {"0.0.0.0", "::", "10.0.0.1", "128.0.0.1", "::2", "localhost.example.com", ""})
        EXPECT_FALSE(is_loopback_host(host)) << host;
}

TEST(Host, UnspecifiedHosts) {
    for (const char* host : {"", "0.0.0.0", "::", "[::]", "::ffff:0.0.0.0"})
        EXPECT_TRUE(is_unspecified_host(host)) << host;
    for (const char* host : {"127.0.0.1", "::1", "0.0.0.1", "gw.example.com"})
        EXPECT_FALSE(is_unspecified_host(host)) << host;
}

TEST(Host, Unbracketed) {
    EXPECT_EQ(unbracketed("[::1]"), "::1");
    EXPECT_EQ(unbracketed("10.0.0.1"), "10.0.0.1");
    EXPECT_EQ(unbracketed("["), "[");
}

}  // namespace
}  // namespace vmgate::core
