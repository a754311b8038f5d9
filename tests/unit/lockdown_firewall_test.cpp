// iptables, ip6tables and nft rules from the office policy: each owner's ACCEPT lines before the
// resets, every gateway port reset, groups with their supplementary-group semantics, the per-VM
// groups of the sudoers export, and the address families. The e2e test feeds the same kind of
// output to the real iptables-restore and nft.
#include "lockdown/firewall.hpp"
#include "lockdown_test_config.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace vmgate::lockdown {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

AccessMap office(std::string host = "") {
    auto result = build_access(test::office(), {std::move(host), true});
    if (!result.access) throw std::runtime_error("refused: " + result.errors.front());
    return std::move(*result.access);
}

std::string rules(const AccessMap& access, FirewallOptions options) {
    const auto generated = firewall_rules(access, options);
    EXPECT_THAT(generated.errors, IsEmpty());
    return generated.text;
}

std::size_t position(const std::string& text, const std::string& line) {
    const auto at = text.find(line + "\n");
    EXPECT_NE(at, std::string::npos) << "missing line: " << line << "\nin:\n" << text;
    return at;
}

TEST(LockdownFirewall, IptablesAcceptsOwnersThenResetsEveryGatewayPort) {
    const auto text = rules(office(), {FirewallFormat::iptables, FirewallMatch::principals});
    EXPECT_THAT(text, HasSubstr("*filter\n:vmgate-client - [0:0]\n-A OUTPUT -p tcp -j vmgate-client\n"));
    const auto anne = position(text, "-A vmgate-client -d 192.0.2.10 -p tcp --dport 5902 -m owner --uid-owner anne -j ACCEPT");
    position(text, "# anne: vm1, vm2");
    position(text, "-A vmgate-client -d 192.0.2.10 -p tcp --dport 5910 -m owner --uid-owner boss -j ACCEPT");
    const auto adm = position(
        text, "-A vmgate-client -d 192.0.2.10 -p tcp --dport 5902 -m owner --gid-owner adm --suppl-groups -j ACCEPT");
    EXPECT_THAT(text, Not(HasSubstr("--dport 5902 -m owner --uid-owner boss")));
    EXPECT_THAT(text, Not(HasSubstr("--dport 5900 -m owner --gid-owner adm")));
    std::size_t first_reset = std::string::npos;
    for (const int port : {5900, 5901, 5902, 5910}) {
        const auto reset = position(
            text, "-A vmgate-client -d 192.0.2.10 -p tcp --dport " + std::to_string(port) +
                      " --syn -j REJECT --reject-with tcp-reset");
        first_reset = std::min(first_reset, reset);
    }
    EXPECT_LT(anne, first_reset);
    EXPECT_LT(adm, first_reset);
    EXPECT_TRUE(text.ends_with("COMMIT\n"));
    EXPECT_TRUE(text.starts_with("# vmgate client lockdown (iptables)"));
}

TEST(LockdownFirewall, ByVmGroupAdmitsTheSudoGroupOfEachVmWithUsers) {
    const auto text = rules(office(), {FirewallFormat::iptables, FirewallMatch::vm_groups, "vmgate-"});
    for (const int port : {5900, 5901, 5910})
        position(text, "-A vmgate-client -d 192.0.2.10 -p tcp --dport " + std::to_string(port) +
                           " -m owner --gid-owner vmgate-vm1 -j ACCEPT");
    position(text, "-A vmgate-client -d 192.0.2.10 -p tcp --dport 5902 -m owner --gid-owner vmgate-vm2 -j ACCEPT");
    EXPECT_THAT(text, Not(HasSubstr("vmgate-vm3")));  // nobody may use vm3: no group to admit
    EXPECT_THAT(text, Not(HasSubstr("--uid-owner")));
    EXPECT_THAT(text, Not(HasSubstr("--suppl-groups")));
    const auto bad = firewall_rules(office(), {FirewallFormat::nft, FirewallMatch::vm_groups, "0"});
    ASSERT_FALSE(bad.errors.empty());
    EXPECT_THAT(bad.errors[0], HasSubstr("--group-prefix"));
}

TEST(LockdownFirewall, AddressFamilies) {
    const auto v4 = firewall_rules(office(), {FirewallFormat::ip6tables});
    ASSERT_EQ(v4.errors.size(), 1U);
    EXPECT_THAT(v4.errors[0], HasSubstr("office.toml has no IPv6 gateway port"));
    EXPECT_THAT(v4.errors[0], HasSubstr("export iptables instead"));

    const auto text = rules(office("2001:db8::1"), {FirewallFormat::ip6tables});
    position(text, "-A vmgate-client -d 2001:db8::1 -p tcp --dport 5901 -m owner --uid-owner anne -j ACCEPT");
    EXPECT_THAT(firewall_rules(office("2001:db8::1"), {FirewallFormat::iptables}).errors[0],
                HasSubstr("no IPv4 gateway port"));
}

TEST(LockdownFirewall, MixedFamiliesNameThePortsLeftToTheOtherTool) {
    std::string listeners(test::kListeners);
    listeners.replace(listeners.find("192.0.2.10:5902"), 15, "[2001:db8::1]:5902");
    auto result = build_access(test::parse(std::string(test::kHead) + listeners + std::string(test::kVms)), {"", true});
    ASSERT_TRUE(result.access);
    const auto v4 = rules(*result.access, {FirewallFormat::iptables});
    EXPECT_THAT(v4, HasSubstr("(see `vmgate export ip6tables`): [2001:db8::1]:5902\n"));
    EXPECT_THAT(v4, Not(HasSubstr("-d 2001:db8::1")));
    const auto v6 = rules(*result.access, {FirewallFormat::ip6tables});
    position(v6, "-A vmgate-client -d 2001:db8::1 -p tcp --dport 5902 -m owner --gid-owner adm --suppl-groups -j ACCEPT");
    EXPECT_THAT(v6, Not(HasSubstr("192.0.2.10 -p")));
    const auto nft = rules(*result.access, {FirewallFormat::nft});
    position(nft, "\t\tip6 daddr 2001:db8::1 tcp dport { 5902 } meta skuid \"anne\" accept");
    position(nft, "\t\tip daddr 192.0.2.10 tcp dport { 5900, 5901, 5910 } meta skuid \"anne\" accept");
}

TEST(LockdownFirewall, NftReplacesItsOwnTableWithTheSameLogic) {
    const auto text = rules(office(), {FirewallFormat::nft});
    EXPECT_THAT(text, HasSubstr("table inet vmgate_client\ndelete table inet vmgate_client\n"
                                "table inet vmgate_client {\n\tchain output {\n"
                                "\t\ttype filter hook output priority filter; policy accept;\n"));
    const auto anne = position(text, "\t\tip daddr 192.0.2.10 tcp dport { 5900, 5901, 5902, 5910 } meta skuid \"anne\" accept");
    position(text, "\t\tip daddr 192.0.2.10 tcp dport { 5900, 5901, 5910 } meta skgid \"staff\" accept");
    const auto reset = position(
        text, "\t\tip daddr 192.0.2.10 tcp dport { 5900, 5901, 5902, 5910 } tcp flags & (syn | ack) == syn reject with tcp reset");
    EXPECT_LT(anne, reset);
    EXPECT_THAT(text, HasSubstr("supplementary groups do not count"));
    EXPECT_TRUE(text.ends_with("\t}\n}\n"));

    const auto grouped = rules(office(), {FirewallFormat::nft, FirewallMatch::vm_groups, "vmgate-"});
    position(grouped, "\t\tip daddr 192.0.2.10 tcp dport { 5902 } meta skgid \"vmgate-vm2\" accept");
    EXPECT_THAT(grouped, Not(HasSubstr("supplementary groups do not count")));
}

}  // namespace
}  // namespace vmgate::lockdown
