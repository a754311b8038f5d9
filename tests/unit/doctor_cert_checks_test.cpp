#include "doctor/cert_checks.hpp"
#include "doctor_test_util.hpp"
#include "x509_test_util.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace vmgate::doctor {
namespace {

using test::ids;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using namespace std::chrono_literals;

const auto now = std::chrono::system_clock::from_time_t(1'800'000'000);

CertificateFacts cert_naming(std::vector<std::string> dns, std::vector<std::string> ips = {}, std::string cn = "") {
    return {std::move(cn), std::move(dns), std::move(ips), now - 24h, now + 24h * 365};
}

core::Config config(std::string_view toml) {
    auto parsed = core::parse_config(toml, "t.toml");
    EXPECT_TRUE(parsed.config) << (parsed.errors.empty() ? "" : parsed.errors[0].to_string());
    return parsed.config.value_or(core::Config{});
}

constexpr std::string_view vms = "[[vm]]\nname = \"vm1\"\nspice = \"unix:/run/a\"\n"
                                 "[[vm]]\nname = \"vm2\"\nspice = \"unix:/run/b\"\n"
                                 "[tls]\ncert = \"/c.pem\"\nkey = \"/k.pem\"\n";

std::string with_listener(std::string_view address, std::string_view extra = "vm = \"vm1\"") {
    return std::string(vms) + "[[listener]]\nprotocol = \"spice\"\naddress = \"" + std::string(address) + "\"\n" +
           std::string(extra) + "\n";
}

TEST(DoctorCertificate, ReadsNamesAndDatesFromPem) {
    // The shared helper writes DNS names only: add every kind here and sign again.
    auto cred = vmgate::test::make_credential({.subject = {{"CN", "gw.example.com"}}});
    vmgate::test::add_extension(cred.cert.get(), cred.cert.get(), NID_subject_alt_name,
                                "DNS:gw.example.com,IP:192.0.2.7,IP:2001:db8::1");
    ASSERT_GT(X509_sign(cred.cert.get(), cred.key.get(), EVP_sha256()), 0);
    BIO* bio = BIO_new(BIO_s_mem());
    ASSERT_EQ(PEM_write_bio_X509(bio, cred.cert.get()), 1);
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio, &data);
    const auto read = read_certificate(std::string(data, static_cast<std::size_t>(size)));
    BIO_free(bio);
    ASSERT_TRUE(std::holds_alternative<CertificateFacts>(read));
    const auto& facts = std::get<CertificateFacts>(read);
    EXPECT_EQ(facts.common_name, "gw.example.com");
    EXPECT_THAT(facts.dns_names, ElementsAre("gw.example.com"));
    EXPECT_THAT(facts.ip_addresses, ElementsAre("192.0.2.7", "2001:db8::1"));
    // make_credential: valid from a minute ago for a day.
    const auto real_now = std::chrono::system_clock::now();
    EXPECT_LT(facts.not_before, real_now);
    EXPECT_GT(facts.not_after, real_now + 23h);
    EXPECT_LT(facts.not_after, real_now + 25h);
}

TEST(DoctorCertificate, NotAPem) {
    EXPECT_TRUE(std::holds_alternative<std::string>(read_certificate("hello")));
}

TEST(DoctorCertificate, Dates) {
    auto cert = cert_naming({"gw.example.com"});
    EXPECT_THAT(check_certificate_dates(cert, "/c.pem", now), IsEmpty());
    cert.not_after = now + 29 * 24h;
    auto soon = check_certificate_dates(cert, "/c.pem", now);
    ASSERT_THAT(ids(soon), ElementsAre("tls-cert-expiry"));
    EXPECT_EQ(soon[0].severity, Severity::warning);
    EXPECT_THAT(soon[0].problem, HasSubstr("in 29 day(s)"));
    cert.not_after = now - 1s;
    auto expired = check_certificate_dates(cert, "/c.pem", now);
    ASSERT_THAT(ids(expired), ElementsAre("tls-cert-expiry"));
    EXPECT_EQ(expired[0].severity, Severity::error);
    EXPECT_THAT(expired[0].problem, HasSubstr("expired"));
    cert.not_after = now + 24h * 100;
    cert.not_before = now + 1h;
    EXPECT_THAT(check_certificate_dates(cert, "/c.pem", now)[0].problem, HasSubstr("not valid before"));
}

TEST(DoctorCertificate, NameMatching) {
    const auto cert = cert_naming({"gw.example.com", "*.vms.example.com"}, {"192.0.2.7", "2001:db8::1"});
    EXPECT_TRUE(certificate_names(cert, "GW.example.com"));
    EXPECT_TRUE(certificate_names(cert, "vm1.vms.example.com"));
    EXPECT_FALSE(certificate_names(cert, "a.vm1.vms.example.com"));  // one label only
    EXPECT_FALSE(certificate_names(cert, "vms.example.com"));
    EXPECT_TRUE(certificate_names(cert, "192.0.2.7"));
    EXPECT_TRUE(certificate_names(cert, "[2001:db8::1]"));
    EXPECT_FALSE(certificate_names(cert, "192.0.2.8"));
    // The CN counts only without DNS subjectAltNames.
    EXPECT_TRUE(certificate_names(cert_naming({}, {}, "old.example.com"), "old.example.com"));
    EXPECT_FALSE(certificate_names(cert_naming({"new.example.com"}, {}, "old.example.com"), "old.example.com"));
}

TEST(DoctorCertificate, ListenerOnAHostNameMustBeNamed) {
    const auto c = config(with_listener("gw.example.com:5902"));
    EXPECT_THAT(check_certificate_names(cert_naming({"gw.example.com"}), "/c.pem", c), IsEmpty());
    const auto found = check_certificate_names(cert_naming({"other.example.com"}), "/c.pem", c);
    ASSERT_THAT(ids(found), ElementsAre("tls-cert-name"));
    EXPECT_EQ(found[0].severity, Severity::error);
    EXPECT_THAT(found[0].problem, HasSubstr("gw.example.com:5902"));
    EXPECT_THAT(found[0].fix, HasSubstr("DNS:gw.example.com"));
}

TEST(DoctorCertificate, ListenerOnAnUnnamedAddressIsAWarning) {
    const auto c = config(with_listener("192.0.2.7:5902"));
    EXPECT_THAT(check_certificate_names(cert_naming({"gw.example.com"}, {"192.0.2.7"}), "/c.pem", c), IsEmpty());
    const auto found = check_certificate_names(cert_naming({"gw.example.com"}), "/c.pem", c);
    ASSERT_THAT(ids(found), ElementsAre("tls-cert-name"));
    EXPECT_EQ(found[0].severity, Severity::warning);
}

TEST(DoctorCertificate, EveryAddressNeedsSomeDnsName) {
    const auto c = config(with_listener("0.0.0.0:5902"));
    EXPECT_THAT(check_certificate_names(cert_naming({"gw.example.com"}), "/c.pem", c), IsEmpty());
    EXPECT_THAT(ids(check_certificate_names(cert_naming({"*.example.com"}, {"192.0.2.7"}), "/c.pem", c)),
                ElementsAre("tls-cert-name"));
}

TEST(DoctorCertificate, PlainListenersNeedNoName) {
    const auto c = config(with_listener("gw.example.com:5900", "vm = \"vm1\"\ntls = false"));
    EXPECT_THAT(check_certificate_names(cert_naming({"other.example.com"}), "/c.pem", c), IsEmpty());
}

TEST(DoctorCertificate, SniNeedsTheWildcardOrEveryVm) {
    const auto c = config(with_listener("0.0.0.0:5902", "route = \"sni\"\nsni_suffix = \".vms.example.com\""));
    EXPECT_THAT(check_certificate_names(cert_naming({"gw.example.com", "*.vms.example.com"}), "/c.pem", c),
                IsEmpty());
    EXPECT_THAT(check_certificate_names(
                    cert_naming({"gw.example.com", "vm1.vms.example.com", "vm2.vms.example.com"}), "/c.pem", c),
                IsEmpty());
    const auto found = check_certificate_names(cert_naming({"gw.example.com", "vm1.vms.example.com"}), "/c.pem", c);
    ASSERT_THAT(ids(found), ElementsAre("tls-cert-name"));
    EXPECT_EQ(found[0].severity, Severity::error);
    EXPECT_THAT(found[0].problem, HasSubstr("vm2.vms.example.com"));
    EXPECT_THAT(found[0].problem, HasSubstr("refuse it for vm2.vms.example.com"));
    EXPECT_THAT(found[0].fix, HasSubstr("DNS:*.vms.example.com"));
}

// The proxy's own address is not what clients check through a CONNECT tunnel: the VM is.
TEST(DoctorCertificate, ConnectChecksTheVmNamesNotTheProxyAddress) {
    const auto c =
        config(with_listener("192.0.2.7:3128", "route = \"connect\"\nconnect_suffix = \".vms.example.com\""));
    EXPECT_THAT(check_certificate_names(cert_naming({"*.vms.example.com"}), "/c.pem", c), IsEmpty());
    EXPECT_THAT(check_certificate_names(cert_naming({"vm1", "vm2.vms.example.com"}), "/c.pem", c), IsEmpty());
    const auto found = check_certificate_names(cert_naming({"gw.example.com", "vm1"}, {"192.0.2.7"}), "/c.pem", c);
    ASSERT_THAT(ids(found), ElementsAre("tls-cert-name"));
    EXPECT_EQ(found[0].severity, Severity::warning);
    EXPECT_THAT(found[0].problem, HasSubstr("names none for vm2"));
    EXPECT_THAT(found[0].fix, HasSubstr("vmgate vv --proxy"));
    EXPECT_THAT(found[0].fix, HasSubstr("DNS:*.vms.example.com"));
}

}  // namespace
}  // namespace vmgate::doctor
