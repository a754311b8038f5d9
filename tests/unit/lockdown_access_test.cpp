// Who may reach which gateway port, from the policy: principals per VM (realm dropped, [groups]
// expanded, unix: groups kept), the consoles that reach each VM (fixed and shared), the gateway's
// address, and the names client-side tools could not read.
#include "lockdown/access.hpp"
#include "lockdown_test_config.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace vmgate::lockdown {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

Principal user(std::string name) { return {PrincipalKind::user, std::move(name)}; }
Principal group(std::string name) { return {PrincipalKind::group, std::move(name)}; }
Endpoint at(std::uint16_t port) { return {"192.0.2.10", port}; }

AccessMap build(const core::Config& config, AccessOptions options = {}) {
    auto result = build_access(config, options);
    if (!result.access) throw std::runtime_error("refused: " + result.errors.front());
    return std::move(*result.access);
}

std::string errors_of(const core::Config& config, AccessOptions options = {}) {
    const auto result = build_access(config, options);
    EXPECT_FALSE(result.access.has_value());
    std::string all;
    for (const auto& e : result.errors) all += e + "\n";
    return all;
}

TEST(LockdownAccess, PrincipalsDropRealmsExpandGroupsAndKeepUnixGroups) {
    const auto access = build(test::office());
    ASSERT_THAT(access.vms, SizeIs(3));
    EXPECT_EQ(access.vms[0].vm, "vm1");
    EXPECT_THAT(access.vms[0].principals, ElementsAre(user("anne"), user("boss"), user("charlie"), group("staff")));
    EXPECT_THAT(access.vms[1].principals, ElementsAre(user("anne"), group("adm")));
    EXPECT_THAT(access.vms[2].principals, IsEmpty());
}

TEST(LockdownAccess, VmsReachTheirOwnPortsAndSharedPortsOfTheirProtocol) {
    const auto access = build(test::office());
    EXPECT_THAT(access.gateway_ports, ElementsAre(at(5900), at(5901), at(5902), at(5910)));
    EXPECT_THAT(access.shared_ports, ElementsAre(at(5910)));
    EXPECT_THAT(access.vms[0].endpoints(), ElementsAre(at(5900), at(5901), at(5910)));
    EXPECT_THAT(access.vms[1].endpoints(), ElementsAre(at(5902)));  // VNC only: not the SNI SPICE port
    EXPECT_THAT(access.vms[2].endpoints(), ElementsAre(at(5910)));
    const auto& sni = access.vms[0].consoles.back();
    EXPECT_EQ(sni.route, core::Route::sni);
    EXPECT_EQ(sni.server_name, "vm1.vms.example.com");
}

TEST(LockdownAccess, EachPrincipalGetsTheUnionOfItsVms) {
    const auto reach = access_by_principal(build(test::office()));
    ASSERT_THAT(reach, SizeIs(5));
    EXPECT_THAT(reach.at(user("anne")).endpoints, ElementsAre(at(5900), at(5901), at(5902), at(5910)));
    EXPECT_THAT(reach.at(user("anne")).vms, ElementsAre("vm1", "vm2"));
    EXPECT_THAT(reach.at(user("boss")).endpoints, ElementsAre(at(5900), at(5901), at(5910)));
    EXPECT_THAT(reach.at(group("adm")).endpoints, ElementsAre(at(5902)));
    EXPECT_THAT(reach.at(group("staff")).vms, ElementsAre("vm1"));
}

TEST(LockdownAccess, HostOptionReplacesEveryListenerAddress) {
    const auto access = build(test::office(), {"[2001:db8::1]", true});
    EXPECT_THAT(access.gateway_ports, ElementsAre(Endpoint{"2001:db8::1", 5900}, Endpoint{"2001:db8::1", 5901},
                                                  Endpoint{"2001:db8::1", 5902}, Endpoint{"2001:db8::1", 5910}));
    EXPECT_TRUE(access.gateway_ports[0].is_ipv6());
    EXPECT_EQ(access.gateway_ports[0].to_string(), "[2001:db8::1]:5900");
}

TEST(LockdownAccess, EveryAddressListenerNeedsHost) {
    std::string listeners(test::kListeners);
    listeners.replace(listeners.find("192.0.2.10:5902"), 15, "0.0.0.0:5902");
    const auto config = test::parse(std::string(test::kHead) + listeners + std::string(test::kVms));
    const auto errors = errors_of(config);
    EXPECT_THAT(errors, HasSubstr("office.toml:"));
    EXPECT_THAT(errors, HasSubstr("listener[2] (0.0.0.0:5902)"));
    EXPECT_THAT(errors, HasSubstr("give --host"));
    EXPECT_THAT(build(config, {"192.0.2.99", true}).gateway_ports, SizeIs(4));
}

TEST(LockdownAccess, FirewallFormatsNeedAnIpAddressOthersTakeNames) {
    const auto config = test::office();
    EXPECT_THAT(errors_of(config, {"gw.example.com", true}), HasSubstr("--host: iptables and nft rules match IP"));
    EXPECT_EQ(build(config, {"gw.example.com", false}).gateway_ports[0].host, "gw.example.com");
    EXPECT_THAT(errors_of(config, {"::", false}), HasSubstr("every address"));
}

TEST(LockdownAccess, NamesClientsCannotReadAreRefusedWithTheirRule) {
    std::string vms(test::kVms);
    vms.replace(vms.find("\"anne\", \"boss@OFFICE\""), 21, "\"anne\", \"9lives@OFFICE\"");
    const auto errors = errors_of(test::parse(std::string(test::kHead) + std::string(test::kListeners) + vms));
    EXPECT_THAT(errors, HasSubstr("vm \"vm1\" allow[0]"));
    EXPECT_THAT(errors, HasSubstr("user \"9lives@OFFICE\" gives the client-side user name \"9lives\""));
    EXPECT_THAT(errors, Not(HasSubstr("anne")));
}

TEST(LockdownAccess, PortableNames) {
    for (const char* good : {"anne", "_svc", "a.b-c_9", "A", "abcdefghijklmnopqrstuvwxyz012345"})
        EXPECT_TRUE(is_portable_name(good)) << good;
    for (const char* bad : {"", "9lives", "-x", ".x", "a b", "a:b", "a@b", "a,b", "a%b", "a\\b", "ä",
                            "abcdefghijklmnopqrstuvwxyz0123456"})
        EXPECT_FALSE(is_portable_name(bad)) << bad;
}

TEST(LockdownAccess, VmGroupsMustBePortableForVmsWithUsers) {
    const auto access = build(test::office());
    EXPECT_THAT(vm_group_errors(access, "vmgate-"), IsEmpty());
    const auto errors = vm_group_errors(access, "9");
    ASSERT_THAT(errors, SizeIs(2));  // vm1 and vm2; vm3 has nobody and needs no group
    EXPECT_THAT(errors[0], HasSubstr("\"9vm1\""));
    EXPECT_THAT(errors[0], HasSubstr("--group-prefix"));
}

TEST(LockdownAccess, HeaderSaysWhatIsNotExpressedAndNamesSharedPorts) {
    const auto header = header_comment("nft", build(test::office()));
    EXPECT_THAT(header, HasSubstr("`vmgate export nft` from office.toml"));
    EXPECT_THAT(header, HasSubstr("time windows"));
    EXPECT_THAT(header, HasSubstr("source addresses"));
    EXPECT_THAT(header, HasSubstr("realm is"));
    EXPECT_THAT(header, HasSubstr("Shared ports (route = \"sni\": every VM behind one port): 192.0.2.10:5910."));
    for (std::size_t start = 0; start < header.size();) {
        const auto end = header.find('\n', start);
        EXPECT_EQ(header.substr(start, 2), "# ");
        start = end + 1;
    }
    std::string listeners(test::kListeners);
    listeners.erase(listeners.find("[[listener]]\nprotocol = \"spice\"\naddress = \"192.0.2.10:5910\""));
    const auto config = test::parse(std::string(test::kHead) + listeners + std::string(test::kVms));
    EXPECT_THAT(header_comment("nft", build(config)), Not(HasSubstr("Shared ports")));
}

TEST(LockdownAccess, OutputIgnoresTheOrderOfTheFile) {
    std::string vms(test::kVms);
    const auto vm3 = vms.find("[[vm]]\nname = \"vm3\"");
    const std::string reordered = vms.substr(vm3) + vms.substr(0, vm3);
    std::string listeners(test::kListeners);
    const auto last = listeners.rfind("[[listener]]");
    const std::string relisted = listeners.substr(last) + "\n" + listeners.substr(0, last);
    const auto a = build(test::office());
    const auto b = build(test::parse(std::string(test::kHead) + relisted + reordered));
    EXPECT_EQ(header_comment("x", a), header_comment("x", b));
    EXPECT_EQ(a.gateway_ports, b.gateway_ports);
    ASSERT_EQ(a.vms.size(), b.vms.size());
    for (std::size_t i = 0; i < a.vms.size(); ++i) {
        EXPECT_EQ(a.vms[i].vm, b.vms[i].vm);
        EXPECT_EQ(a.vms[i].consoles, b.vms[i].consoles);
        EXPECT_EQ(a.vms[i].principals, b.vms[i].principals);
    }
}

}  // namespace
}  // namespace vmgate::lockdown
