#include "doctor/file_checks.hpp"
#include "doctor_test_util.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace vmgate::doctor {
namespace {

using test::ids;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

const Account vmgate_user{"vmgate", 990, 990, "vmgate"};
const PrivateFileKind key_kind{"tls-key", "the TLS private key", "create it", Area::tls};

FileFacts missing_file(const std::string& path) {
    FileFacts facts;
    facts.path = path;
    return facts;
}

FileFacts file(unsigned mode, unsigned uid, unsigned gid) {
    return {"/etc/vmgate/key.pem", true, "", mode, uid, gid, uid == 0 ? "root" : uid == 990 ? "vmgate" : "anne",
            gid == 0 ? "root" : gid == 990 ? "vmgate" : "staff"};
}

TEST(DoctorPrivateFile, OwnedByTheAccountAndPrivateIsClean) {
    EXPECT_THAT(check_private_file(file(0600, 990, 990), vmgate_user, key_kind), IsEmpty());
    EXPECT_THAT(check_private_file(file(0400, 990, 0), vmgate_user, key_kind), IsEmpty());
}

TEST(DoctorPrivateFile, RootOwnedReadableByTheAccountsGroupIsClean) {
    EXPECT_THAT(check_private_file(file(0640, 0, 990), vmgate_user, key_kind), IsEmpty());
}

TEST(DoctorPrivateFile, WorldReadableIsAnError) {
    const auto found = check_private_file(file(0644, 990, 990), vmgate_user, key_kind);
    ASSERT_THAT(ids(found), ElementsAre("tls-key-permissions"));
    EXPECT_EQ(found[0].severity, Severity::error);
    EXPECT_THAT(found[0].problem, HasSubstr("every user can read it"));
    EXPECT_THAT(found[0].problem, HasSubstr("mode 0644"));
    EXPECT_EQ(found[0].fix, "chown vmgate: /etc/vmgate/key.pem && chmod 0600 /etc/vmgate/key.pem");
}

TEST(DoctorPrivateFile, ReadableByAnotherGroupIsAnError) {
    const auto found = check_private_file(file(0640, 990, 50), vmgate_user, key_kind);
    ASSERT_THAT(ids(found), ElementsAre("tls-key-permissions"));
    EXPECT_THAT(found[0].problem, HasSubstr("group staff can read it"));
}

TEST(DoctorPrivateFile, AnotherOwnerIsAnError) {
    EXPECT_THAT(ids(check_private_file(file(0600, 1000, 990), vmgate_user, key_kind)),
                ElementsAre("tls-key-owner", "tls-key-access"));
}

TEST(DoctorPrivateFile, UnreadableByTheAccountIsAnError) {
    const auto found = check_private_file(file(0600, 0, 0), vmgate_user, key_kind);
    ASSERT_THAT(ids(found), ElementsAre("tls-key-access"));
    EXPECT_THAT(found[0].problem, HasSubstr("cannot be read by vmgate"));
}

TEST(DoctorPrivateFile, RootReadsEverything) {
    const Account root{"root", 0, 0, "root"};
    EXPECT_THAT(check_private_file(file(0600, 0, 0), root, key_kind), IsEmpty());
    EXPECT_THAT(check_private_file(file(0640, 0, 0), root, key_kind), IsEmpty());  // root's own group
}

TEST(DoctorPrivateFile, MissingAndUnexaminable) {
    FileFacts missing = missing_file("/etc/vmgate/key.pem");
    const auto found = check_private_file(missing, vmgate_user, key_kind);
    ASSERT_THAT(ids(found), ElementsAre("tls-key-missing"));
    EXPECT_EQ(found[0].fix, "create it");
    missing.error = "Permission denied";
    EXPECT_THAT(check_private_file(missing, vmgate_user, key_kind)[0].problem, HasSubstr("Permission denied"));
}

TEST(DoctorCertificateFile, WorldReadableIsFine) {
    EXPECT_THAT(check_certificate_file(file(0644, 0, 0), vmgate_user), IsEmpty());
}

TEST(DoctorCertificateFile, WritableByOthersOrOwnedByAnotherUserIsAWarning) {
    const auto writable = check_certificate_file(file(0666, 0, 0), vmgate_user);
    ASSERT_THAT(ids(writable), ElementsAre("tls-cert-permissions"));
    EXPECT_EQ(writable[0].severity, Severity::warning);
    EXPECT_THAT(ids(check_certificate_file(file(0644, 1000, 0), vmgate_user)), ElementsAre("tls-cert-permissions"));
}

TEST(DoctorCertificateFile, UnreadableIsAnError) {
    EXPECT_THAT(ids(check_certificate_file(file(0600, 0, 0), vmgate_user)), ElementsAre("tls-cert-access"));
    EXPECT_THAT(ids(check_certificate_file(missing_file("/x.pem"), vmgate_user)), ElementsAre("tls-cert-missing"));
}

}  // namespace
}  // namespace vmgate::doctor
