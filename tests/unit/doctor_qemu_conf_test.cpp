#include "doctor/qemu_conf.hpp"
#include "doctor_test_util.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace vmgate::doctor {
namespace {

using test::ids;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::Pair;

TEST(DoctorQemuConf, ParsesScalarsAndSkipsListsAndComments) {
    const auto conf = parse_libvirt_conf(
        "# vnc_listen = \"0.0.0.0\"\n"
        "spice_listen = \"0.0.0.0\"   # every address\n"
        "vnc_tls = 1\n"
        "cgroup_device_acl = [\n    \"/dev/null\", \"/dev/full\",\n    \"vnc_listen = x\"\n]\n"
        "spice_sasl_dir = '/etc/sasl2/qemu'\n"
        "security_driver = [ \"selinux\" ]\n"
        "user = \"a#b\"\n");
    EXPECT_THAT(conf, ElementsAre(Pair("spice_listen", "0.0.0.0"), Pair("spice_sasl_dir", "/etc/sasl2/qemu"),
                                  Pair("user", "a#b"), Pair("vnc_tls", "1")));
}

TEST(DoctorQemuConf, DefaultsAndLoopbackAreClean) {
    EXPECT_THAT(check_qemu_conf(parse_libvirt_conf(""), "/etc/libvirt/qemu.conf"), IsEmpty());
    EXPECT_THAT(check_qemu_conf(parse_libvirt_conf("spice_listen = \"127.0.0.1\"\nvnc_listen = \"::1\"\n"),
                                "/etc/libvirt/qemu.conf"),
                IsEmpty());
}

TEST(DoctorQemuConf, NonLoopbackListenIsAnError) {
    const auto found =
        check_qemu_conf(parse_libvirt_conf("vnc_listen = \"0.0.0.0\"\nspice_listen = \"192.0.2.1\"\nspice_tls = 1\n"),
                        "/etc/libvirt/qemu.conf");
    ASSERT_THAT(ids(found), ElementsAre("qemu-conf-listen", "qemu-conf-listen"));
    EXPECT_EQ(found[0].severity, Severity::error);
    EXPECT_THAT(found[0].problem, HasSubstr("spice_listen = \"192.0.2.1\""));
    EXPECT_THAT(found[0].problem, Not(HasSubstr("clear text")));
    EXPECT_THAT(found[1].problem, HasSubstr("in clear text (vnc_tls is off)"));
    EXPECT_THAT(found[1].fix, HasSubstr("vnc_listen = \"127.0.0.1\""));
}

TEST(DoctorQemuConf, SaslFileOnlyWhenSaslIsOn) {
    EXPECT_EQ(qemu_sasl_file(parse_libvirt_conf("spice_sasl = 0\n"), Display::spice), "");
    EXPECT_EQ(qemu_sasl_file(parse_libvirt_conf("spice_sasl = 1\n"), Display::spice), "/etc/sasl2/qemu-spice.conf");
    EXPECT_EQ(qemu_sasl_file(parse_libvirt_conf("vnc_sasl = 1\nvnc_sasl_dir = \"/srv/sasl\"\n"), Display::vnc),
              "/srv/sasl/qemu-vnc.conf");
    EXPECT_EQ(qemu_sasl_file(parse_libvirt_conf("vnc_sasl = 1\n"), Display::spice), "");
}

TEST(DoctorQemuConf, MechList) {
    EXPECT_EQ(sasl_mech_list("# mech_list: plain\nmech_list: digest-md5 gssapi\nsasldb_path: /x\n"),
              "digest-md5 gssapi");
    EXPECT_EQ(sasl_mech_list("# mech_list: plain\n"), std::nullopt);
}

TEST(DoctorQemuSasl, DigestMd5IsAnError) {
    const auto found = check_qemu_sasl(Display::spice, "/etc/sasl2/qemu-spice.conf", "mech_list: gssapi digest-md5\n");
    ASSERT_THAT(ids(found), ElementsAre("qemu-sasl-digest-md5"));
    EXPECT_EQ(found[0].severity, Severity::error);
    EXPECT_THAT(check_qemu_sasl(Display::vnc, "/x", "mech_list: scram-sha-256 gssapi\n"), IsEmpty());
}

TEST(DoctorQemuSasl, NoMechListIsAWarning) {
    const auto no_list = check_qemu_sasl(Display::vnc, "/x", "sasldb_path: /etc/qemu/passwd.db\n");
    ASSERT_THAT(ids(no_list), ElementsAre("qemu-sasl-mech-list"));
    EXPECT_EQ(no_list[0].severity, Severity::warning);
    EXPECT_THAT(check_qemu_sasl(Display::vnc, "/x", std::nullopt)[0].problem, HasSubstr("no such file"));
}

}  // namespace
}  // namespace vmgate::doctor
