// sudoers lines: exact viewer arguments per VM group, every special character escaped for both
// levels sudoers reads an argument with, refused arguments and viewers. The e2e test checks the
// meaning with the real sudo (`sudo -l -U USER -g GROUP COMMAND ARGS`).
#include "lockdown/sudoers.hpp"
#include "lockdown_test_config.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace vmgate::lockdown {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

AccessMap office() {
    auto result = build_access(test::office(), {"", false});
    if (!result.access) throw std::runtime_error("refused: " + result.errors.front());
    return std::move(*result.access);
}

TEST(LockdownSudoers, ArgumentsAreEscapedForSudoersAndFnmatch) {
    EXPECT_EQ(sudoers_argument("spice://192.0.2.10?tls-port=5901"), "spice\\://192.0.2.10\\?tls-port\\=5901");
    EXPECT_EQ(sudoers_argument("a,b#c*[d]"), "a\\,b\\#c\\*\\[d\\]");
    EXPECT_EQ(sudoers_argument("x\\y"), "x\\\\\\\\y");
    EXPECT_EQ(sudoers_argument("^r^"), "\\^r^");  // only a leading ^ starts a regular expression
    EXPECT_EQ(sudoers_argument("--spice-ca-file=/etc/vmgate/ca.pem"), "--spice-ca-file\\=/etc/vmgate/ca.pem");
    EXPECT_EQ(sudoers_argument("(p)\"q\"!"), "(p)\"q\"!");
    for (const char* bad : {"a b", "a\tb", "a\nb", "\x7f"}) EXPECT_FALSE(sudoers_argument(bad)) << bad;
}

TEST(LockdownSudoers, ViewerUris) {
    const Endpoint v4{"192.0.2.10", 5901};
    const Endpoint v6{"2001:db8::1", 5902};
    using core::Protocol;
    using core::Route;
    EXPECT_EQ(viewer_uri({Protocol::spice, Route::fixed, v4, true, ""}), "spice://192.0.2.10?tls-port=5901");
    EXPECT_EQ(viewer_uri({Protocol::spice, Route::fixed, v6, true, ""}), "spice://[2001:db8::1]?tls-port=5902");
    EXPECT_EQ(viewer_uri({Protocol::vnc, Route::fixed, v6, true, ""}), "vnc://[2001:db8::1]:5902");
    EXPECT_EQ(viewer_uri({Protocol::spice, Route::sni, v4, true, "vm1.vms.example.com"}),
              "spice://vm1.vms.example.com?tls-port=5901");
    EXPECT_FALSE(viewer_uri({Protocol::spice, Route::fixed, v4, false, ""}));  // plain: only "use TLS"
}

TEST(LockdownSudoers, EachVmGroupRunsTheViewerWithExactArguments) {
    const auto generated = sudoers_rules(office(), {"/usr/bin/remote-viewer", {"--spice-ca-file=/etc/ca.pem"}, "vmgate-"});
    ASSERT_THAT(generated.errors, IsEmpty());
    const auto& text = generated.text;
    EXPECT_THAT(text, HasSubstr(
        "\n# vm1 (group vmgate-vm1)\n"
        "Cmnd_Alias VMGATE_VM1 = \\\n"
        "\t/usr/bin/remote-viewer --spice-ca-file\\=/etc/ca.pem spice\\://192.0.2.10\\?tls-port\\=5901, \\\n"
        "\t/usr/bin/remote-viewer --spice-ca-file\\=/etc/ca.pem spice\\://vm1.vms.example.com\\?tls-port\\=5910\n"
        "Defaults!VMGATE_VM1 env_keep += \"WAYLAND_DISPLAY XDG_RUNTIME_DIR\"\n"
        "anne, boss, charlie, %staff ALL = (:vmgate-vm1) NOPASSWD: VMGATE_VM1\n"));
    EXPECT_THAT(text, HasSubstr("\t/usr/bin/remote-viewer --spice-ca-file\\=/etc/ca.pem vnc\\://192.0.2.10\\:5902\n"));
    EXPECT_THAT(text, HasSubstr("anne, %adm ALL = (:vmgate-vm2) NOPASSWD: VMGATE_VM2\n"));
    EXPECT_THAT(text, HasSubstr("\n# vm3: nobody may use it\n"));
    EXPECT_THAT(text, Not(HasSubstr("5900")));  // the plain port opens nothing by itself
    EXPECT_THAT(text, HasSubstr("Not expressed here: time windows"));
}

TEST(LockdownSudoers, AliasNamesAreUpperCase) {
    std::string vms(test::kVms);
    vms.replace(vms.find("name = \"vm3\""), 12, "name = \"web-3\"");
    vms.replace(vms.find("spice = \"unix:/run/vm3.sock\""), 28, "spice = \"unix:/run/vm3.sock\"\n  [[vm.allow]]\n  users = [\"ralph\"]");
    auto result = build_access(test::parse(std::string(test::kHead) + std::string(test::kListeners) + vms), {});
    ASSERT_TRUE(result.access);
    const auto text = sudoers_rules(*result.access, {}).text;
    EXPECT_THAT(text, HasSubstr("ralph ALL = (:vmgate-web-3) NOPASSWD: VMGATE_WEB_3\n"));
}

TEST(LockdownSudoers, RefusesWhatSudoersCannotMatchExactly) {
    auto generated = sudoers_rules(office(), {"remote-viewer", {"a b"}, "vmgate-"});
    ASSERT_THAT(generated.errors, SizeIs(2));
    EXPECT_THAT(generated.errors[0], HasSubstr("--viewer \"remote-viewer\": give the viewer's absolute path"));
    EXPECT_THAT(generated.errors[1], HasSubstr("--viewer-arg \"a b\""));
    EXPECT_THAT(sudoers_rules(office(), {"/usr/bin/remote viewer", {}, "vmgate-"}).errors, SizeIs(1));
    EXPECT_THAT(sudoers_rules(office(), {"/usr/bin/remote-viewer", {}, "-"}).errors, SizeIs(2));
}

}  // namespace
}  // namespace vmgate::lockdown
