#include "doctor/qemu_cmdline.hpp"
#include "doctor_test_util.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace vmgate::doctor {
namespace {

using test::ids;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;

QemuProcess qemu(std::vector<std::string> args) {
    args.insert(args.begin(), {"/usr/bin/qemu-system-x86_64", "-name", "guest=web1,debug-threads=on"});
    return {"4242", std::move(args)};
}

TEST(DoctorQemuCmdline, SplitsAtNul) {
    using namespace std::string_literals;
    EXPECT_THAT(split_cmdline("qemu-system-x86_64\0-spice\0port=5900\0"s),
                ElementsAre("qemu-system-x86_64", "-spice", "port=5900"));
    EXPECT_THAT(split_cmdline(""), IsEmpty());
}

TEST(DoctorQemuCmdline, RecognisesQemu) {
    EXPECT_TRUE(is_qemu({"/usr/bin/qemu-system-x86_64"}));
    EXPECT_TRUE(is_qemu({"qemu-kvm"}));
    EXPECT_FALSE(is_qemu({"/usr/bin/qemu-img"}));
    EXPECT_FALSE(is_qemu({"/bin/bash", "-spice"}));
    EXPECT_FALSE(is_qemu({}));
}

TEST(DoctorQemuCmdline, OptionSyntax) {
    EXPECT_THAT(parse_qemu_options("0.0.0.0:1,password=on,,x,sasl", "vnc"),
                ElementsAre(Pair("password", "on,x"), Pair("sasl", "on"), Pair("vnc", "0.0.0.0:1")));
    EXPECT_THAT(option_values({"qemu", "-spice", "a", "--spice", "b", "-vnc"}, "spice"), ElementsAre("a", "b"));
    EXPECT_EQ(process_subject(qemu({})), "process 4242 (guest web1)");
    EXPECT_EQ(process_subject({"7", {"qemu-system-x86_64", "-name", "plain"}}), "process 7 (guest plain)");
}

TEST(DoctorQemuCmdline, SocketsAndLoopbackWithPasswordsAreClean) {
    EXPECT_THAT(check_qemu_process(qemu({"-spice", "unix=on,addr=/run/vm.sock,disable-ticketing=on", "-vnc",
                                         "unix:/run/vnc.sock"})),
                IsEmpty());
    EXPECT_THAT(check_qemu_process(qemu({"-spice", "port=5900,addr=127.0.0.1", "-vnc", "127.0.0.1:1,password=on"})),
                IsEmpty());
    EXPECT_THAT(check_qemu_process(qemu({"-vnc", "none", "-display", "none"})), IsEmpty());
}

TEST(DoctorQemuCmdline, SpiceOnEveryAddressIsExposed) {
    const auto found = check_qemu_process(qemu({"-spice", "port=5900"}));  // no addr: every address
    ASSERT_THAT(ids(found), ElementsAre("qemu-display-exposed"));
    EXPECT_EQ(found[0].severity, Severity::error);
    EXPECT_EQ(found[0].subject, "process 4242 (guest web1)");
    EXPECT_THAT(found[0].problem, HasSubstr("every address (port 5900)"));
    EXPECT_THAT(ids(check_qemu_process(qemu({"-spice", "tls-port=5901,addr=192.0.2.1"}))),
                ElementsAre("qemu-display-exposed"));
}

TEST(DoctorQemuCmdline, PlainPortBesideTlsPortIsAWarning) {
    const auto found = check_qemu_process(qemu({"-spice", "port=5900,tls-port=5901,addr=::1"}));
    ASSERT_THAT(ids(found), ElementsAre("qemu-spice-plain-port"));
    EXPECT_EQ(found[0].severity, Severity::warning);
}

TEST(DoctorQemuCmdline, DisableTicketingOnTcpIsAnError) {
    EXPECT_THAT(ids(check_qemu_process(qemu({"-spice", "port=5900,addr=127.0.0.1,disable-ticketing=on"}))),
                ElementsAre("qemu-spice-no-password"));
    EXPECT_THAT(ids(check_qemu_process(qemu({"-spice", "port=5900,addr=127.0.0.1,disable-ticketing"}))),
                ElementsAre("qemu-spice-no-password"));
}

TEST(DoctorQemuCmdline, VncOnEveryAddressIsExposed) {
    for (const char* target : {":0", "0.0.0.0:0,password=on", "[::]:3", "192.0.2.5:0,sasl=on", "vnc=0.0.0.0:0"}) {
        const auto found = check_qemu_process(qemu({"-vnc", target}));
        ASSERT_THAT(ids(found), ElementsAre("qemu-display-exposed")) << target;
    }
}

TEST(DoctorQemuCmdline, VncOnLoopbackWithoutPasswordIsAnError) {
    const auto found = check_qemu_process(qemu({"-vnc", "127.0.0.1:0"}));
    ASSERT_THAT(ids(found), ElementsAre("qemu-vnc-no-password"));
    EXPECT_EQ(found[0].severity, Severity::error);
}

}  // namespace
}  // namespace vmgate::doctor
