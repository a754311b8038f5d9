#include "doctor/sasl_checks.hpp"
#include "doctor_test_util.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

namespace vmgate::doctor {
namespace {

using test::ids;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

core::Config config(const std::string& sasl, const std::string& listeners) {
    const std::string text = "[tls]\ncert = \"/c.pem\"\nkey = \"/k.pem\"\n[sasl]\n" + sasl + "\n" + listeners +
                             "[[vm]]\nname = \"vm1\"\nspice = \"unix:/run/a\"\nvnc = \"unix:/run/b\"\n";
    auto parsed = core::parse_config(text, "t.toml");
    EXPECT_TRUE(parsed.config) << (parsed.errors.empty() ? "" : parsed.errors[0].to_string());
    return parsed.config.value_or(core::Config{});
}

const std::string spice = "[[listener]]\nprotocol = \"spice\"\naddress = \"127.0.0.1:5902\"\nvm = \"vm1\"\n";
const std::string vnc = "[[listener]]\nprotocol = \"vnc\"\naddress = \"127.0.0.1:5901\"\nvm = \"vm1\"\n";
const std::string saslauthd = "pwcheck_method = \"saslauthd\"\nmech_list = [\"PLAIN\"]\nservice_vnc = \"vmgate-vnc\"";

TEST(DoctorSasl, SasldbInUse) {
    EXPECT_EQ(sasldb_in_use(config("sasldb = \"/etc/vmgate/sasldb2\"", spice)), "/etc/vmgate/sasldb2");
    EXPECT_EQ(sasldb_in_use(config("", vnc)), "/etc/sasldb2");
    EXPECT_EQ(sasldb_in_use(config(saslauthd, spice)), "");
    // Tickets alone check no password.
    EXPECT_EQ(sasldb_in_use(config("", spice + "auth = [\"ticket\"]\n")), "");
}

TEST(DoctorSasl, PamServicesPerProtocol) {
    EXPECT_THAT(pam_services_needed(config("", spice + vnc)), IsEmpty());
    EXPECT_THAT(pam_services_needed(config(saslauthd, spice)), ElementsAre("spice"));
    EXPECT_THAT(pam_services_needed(config(saslauthd, vnc)), ElementsAre("vmgate-vnc"));
    EXPECT_THAT(pam_services_needed(config(saslauthd, spice + vnc)), ElementsAre("spice", "vmgate-vnc"));
}

TEST(DoctorSasl, MissingPamServiceIsAnError) {
    const auto c = config(saslauthd, spice + vnc);
    std::set<std::string> present{"/root/etc/pam.d/spice", "/root/etc/pam.d/vmgate-vnc"};
    const auto exists = [&](const std::string& p) { return present.count(p) > 0; };
    EXPECT_THAT(check_pam_services(c, "/root/etc/pam.d", exists), IsEmpty());
    present.erase("/root/etc/pam.d/vmgate-vnc");
    const auto found = check_pam_services(c, "/root/etc/pam.d", exists);
    ASSERT_THAT(ids(found), ElementsAre("pam-service-missing"));
    EXPECT_EQ(found[0].severity, Severity::error);
    EXPECT_EQ(found[0].subject, "/root/etc/pam.d/vmgate-vnc");
    EXPECT_THAT(found[0].fix, HasSubstr("> /root/etc/pam.d/vmgate-vnc"));
}

}  // namespace
}  // namespace vmgate::doctor
