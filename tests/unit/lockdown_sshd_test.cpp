// sshd Match blocks: one per distinct port set, users before groups, tunnel-only settings in
// each. The e2e test runs `sshd -t` on them appended to a full sshd_config.
#include "lockdown/sshd.hpp"
#include "lockdown_test_config.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace vmgate::lockdown {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

AccessMap office(std::string host = "") {
    auto result = build_access(test::office(), {std::move(host), false});
    if (!result.access) throw std::runtime_error("refused: " + result.errors.front());
    return std::move(*result.access);
}

constexpr std::string_view kTunnelOnly =
    "\tAllowAgentForwarding no\n\tAllowStreamLocalForwarding no\n\tX11Forwarding no\n\tPermitTunnel no\n"
    "\tPermitTTY no\n\tPermitUserRC no\n\tForceCommand /usr/sbin/nologin\n";

std::size_t count(const std::string& text, std::string_view what) {
    std::size_t n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
}

TEST(LockdownSshd, OneBlockPerPortSetUsersFirst) {
    const auto generated = sshd_rules(office());
    ASSERT_THAT(generated.errors, IsEmpty());
    const auto& text = generated.text;
    const std::string tunnel(kTunnelOnly);
    const std::string anne = "\n# vm1, vm2\nMatch User anne\n\tAllowTcpForwarding local\n"
                             "\tPermitOpen 192.0.2.10:5900 192.0.2.10:5901 192.0.2.10:5902 192.0.2.10:5910\n" + tunnel;
    const std::string boss = "\n# vm1\nMatch User boss,charlie\n\tAllowTcpForwarding local\n"
                             "\tPermitOpen 192.0.2.10:5900 192.0.2.10:5901 192.0.2.10:5910\n" + tunnel;
    const std::string adm = "\n# vm2\nMatch Group adm\n\tAllowTcpForwarding local\n\tPermitOpen 192.0.2.10:5902\n" + tunnel;
    const std::string staff = "\n# vm1\nMatch Group staff\n\tAllowTcpForwarding local\n"
                              "\tPermitOpen 192.0.2.10:5900 192.0.2.10:5901 192.0.2.10:5910\n" + tunnel;
    for (const auto& block : {anne, boss, adm, staff}) EXPECT_THAT(text, HasSubstr(block));
    EXPECT_LT(text.find(anne), text.find(boss));
    EXPECT_LT(text.find(boss), text.find(adm));
    EXPECT_LT(text.find(adm), text.find(staff));
    EXPECT_EQ(count(text, "\nMatch "), 4U);
    EXPECT_TRUE(text.ends_with(tunnel));
    EXPECT_THAT(text, HasSubstr("first value it finds"));
}

TEST(LockdownSshd, Ipv6AndNamesAsClientsWriteThem) {
    EXPECT_THAT(sshd_rules(office("2001:db8::1")).text, HasSubstr("\tPermitOpen [2001:db8::1]:5902\n"));
    EXPECT_THAT(sshd_rules(office("gw.example.com")).text, HasSubstr("\tPermitOpen gw.example.com:5902\n"));
}

}  // namespace
}  // namespace vmgate::lockdown
