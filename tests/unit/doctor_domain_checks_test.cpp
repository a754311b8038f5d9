#include "doctor/domain_checks.hpp"
#include "doctor_test_util.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace vmgate::doctor {
namespace {

using test::ids;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

Findings check(const std::string& graphics) {
    const auto parsed = inventory::parse_domain_xml("<domain type='kvm'><name>web1</name><devices>" + graphics +
                                                    "</devices></domain>");
    EXPECT_TRUE(parsed.domain) << parsed.error;
    return parsed.domain ? check_domain(*parsed.domain, "/etc/libvirt/qemu/web1.xml") : Findings{};
}

TEST(DoctorDomain, SocketsAndNoneAreClean) {
    EXPECT_THAT(check("<graphics type='spice'><listen type='socket'/></graphics>"
                      "<graphics type='vnc'><listen type='none'/></graphics><graphics type='egl-headless'/>"),
                IsEmpty());
}

TEST(DoctorDomain, NetworkListenIsAnError) {
    const auto found = check("<graphics type='vnc' port='5901'><listen type='address' address='0.0.0.0'/></graphics>");
    ASSERT_THAT(ids(found), ElementsAre("domain-display-exposed"));
    EXPECT_EQ(found[0].severity, Severity::error);
    EXPECT_EQ(found[0].subject, "domain web1 (/etc/libvirt/qemu/web1.xml)");
    EXPECT_THAT(found[0].problem, HasSubstr("VNC listens on 0.0.0.0"));
    EXPECT_THAT(found[0].fix, HasSubstr("virsh edit web1"));
}

TEST(DoctorDomain, LoopbackTcpIsAWarning) {
    const auto found = check("<graphics type='spice' autoport='yes'><listen type='address' address='127.0.0.1'/></graphics>");
    ASSERT_THAT(ids(found), ElementsAre("domain-display-local-tcp"));
    EXPECT_EQ(found[0].severity, Severity::warning);
}

TEST(DoctorDomain, DefaultModeAnyOnTcpIsAWarning) {
    EXPECT_THAT(ids(check("<graphics type='spice' autoport='yes' defaultMode='any'>"
                          "<listen type='address' address='127.0.0.1'/></graphics>")),
                ElementsAre("domain-display-local-tcp", "domain-spice-default-mode"));
    EXPECT_THAT(check("<graphics type='spice' defaultMode='any'><listen type='socket'/></graphics>"), IsEmpty());
    EXPECT_THAT(ids(check("<graphics type='spice' autoport='yes' defaultMode='secure'>"
                          "<listen type='address' address='127.0.0.1'/></graphics>")),
                ElementsAre("domain-display-local-tcp"));
}

}  // namespace
}  // namespace vmgate::doctor
