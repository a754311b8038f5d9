#include "doctor/finding.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace vmgate::doctor {
namespace {

using ::testing::HasSubstr;

const Finding warning{Severity::warning, Area::domain, "domain-display-local-tcp", "domain web1 (x)", "on loopback",
                      "virsh edit web1"};
const Finding error{Severity::error, Area::tls, "tls-key-permissions", "/k.pem", "every user can read it",
                    "chmod 0600 /k.pem"};

TEST(DoctorReport, ExitStatus) {
    EXPECT_EQ(Report{}.exit_status(), 0);
    EXPECT_EQ((Report{{warning}, {}}.exit_status()), 1);
    EXPECT_EQ((Report{{warning, error}, {}}.exit_status()), 2);
}

TEST(DoctorReport, TextGroupsByAreaWithFixes) {
    const std::string text = report_text(Report{{warning, error}, {"TLS key /k.pem"}});
    // TLS comes before domains whatever the order found.
    EXPECT_LT(text.find("TLS certificate and key:"), text.find("libvirt domains:"));
    EXPECT_THAT(text, HasSubstr("  error tls-key-permissions /k.pem: every user can read it\n"
                                "      fix: chmod 0600 /k.pem\n"));
    EXPECT_THAT(text, HasSubstr("1 error(s), 1 warning(s) (checked: TLS key /k.pem)\n"));
    EXPECT_EQ(report_text(Report{{}, {"a", "b"}}), "no problems found (checked: a; b)\n");
}

TEST(DoctorReport, Json) {
    const auto json = report_json(Report{{error, warning}, {"x"}});
    EXPECT_EQ(json["errors"], 1);
    EXPECT_EQ(json["warnings"], 1);
    ASSERT_EQ(json["findings"].size(), 2u);
    EXPECT_EQ(json["findings"][0]["severity"], "error");
    EXPECT_EQ(json["findings"][0]["id"], "tls-key-permissions");
    EXPECT_EQ(json["findings"][0]["area"], "tls");
    EXPECT_EQ(json["findings"][0]["subject"], "/k.pem");
    EXPECT_EQ(json["findings"][0]["fix"], "chmod 0600 /k.pem");
    EXPECT_EQ(json["checked"][0], "x");
}

}  // namespace
}  // namespace vmgate::doctor
