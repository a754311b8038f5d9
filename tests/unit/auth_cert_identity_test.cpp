// Client certificate → identity, for each configured field, with certificates made in-test:
// realm defaults, and every refusal with its reason.
#include "auth/cert_identity.hpp"

#include "x509_test_util.hpp"

#include <gtest/gtest.h>

#include <string>
#include <variant>

namespace vmgate::auth {
namespace {

using core::CertIdentityField;
using test::AltName;
using test::AltNameKind;
using test::CertSpec;

constexpr std::string_view realm = "OFFICE";

// One CA for the whole file: refusals are about the leaf's fields, not its chain.
const test::Credential& ca() {
    static const test::Credential authority = test::make_ca("vmgate test client CA");
    return authority;
}

std::variant<core::Identity, std::string> identify(const CertSpec& spec, CertIdentityField field) {
    const test::Credential leaf = test::make_credential(spec, &ca());
    return identity_from_certificate(leaf.cert.get(), field, std::string(realm));
}

core::Identity accepted(const CertSpec& spec, CertIdentityField field) {
    auto result = identify(spec, field);
    if (auto* why = std::get_if<std::string>(&result)) ADD_FAILURE() << "refused: " << *why;
    return std::holds_alternative<core::Identity>(result) ? std::get<core::Identity>(result) : core::Identity{};
}

std::string refused(const CertSpec& spec, CertIdentityField field) {
    auto result = identify(spec, field);
    if (auto* who = std::get_if<core::Identity>(&result)) ADD_FAILURE() << "accepted as " << who->to_string();
    return std::holds_alternative<std::string>(result) ? std::get<std::string>(result) : "";
}

CertSpec with_cn(std::string cn) { return {.subject = {{"O", "Example"}, {"CN", std::move(cn)}}}; }

CertSpec with_alt_names(std::vector<AltName> names) {
    return {.subject = {{"CN", "ignored"}}, .alt_names = std::move(names)};
}

CertSpec with_email(std::string email) { return with_alt_names({{AltNameKind::email, std::move(email)}}); }

CertSpec with_upn(std::string upn) { return with_alt_names({{AltNameKind::upn, std::move(upn)}}); }

void expect_identity(const core::Identity& who, std::string_view user, std::string_view realm_name) {
    EXPECT_EQ(who.user, user);
    EXPECT_EQ(who.realm, realm_name);
    EXPECT_EQ(who.mechanism, "certificate");
}

// ------------------------------------------------------------------------------------ accepted

TEST(CertIdentity, CnIsTheUserInTheDefaultRealm) {
    expect_identity(accepted(with_cn("anne"), CertIdentityField::cn), "anne", realm);
}

TEST(CertIdentity, CnKeepsNonAsciiLetters) {
    expect_identity(accepted(with_cn("zo\xc3\xab"), CertIdentityField::cn), "zo\xc3\xab", realm);
}

TEST(CertIdentity, EmptyDefaultRealmMeansNoRealm) {
    const test::Credential leaf = test::make_credential(with_cn("anne"), &ca());
    const auto result = identity_from_certificate(leaf.cert.get(), CertIdentityField::cn, "");
    ASSERT_TRUE(std::holds_alternative<core::Identity>(result));
    expect_identity(std::get<core::Identity>(result), "anne", "");
}

TEST(CertIdentity, EmailIsSplitAtItsLastAt) {
    expect_identity(accepted(with_email("anne@example.com"), CertIdentityField::email), "anne", "example.com");
    expect_identity(accepted(with_email("a@b@example.com"), CertIdentityField::email), "a@b", "example.com");
}

TEST(CertIdentity, EmailWithoutAtIsInTheDefaultRealm) {
    expect_identity(accepted(with_email("anne"), CertIdentityField::email), "anne", realm);
}

TEST(CertIdentity, FirstEmailCounts) {
    const CertSpec spec = with_alt_names({{AltNameKind::dns, "anne.example.com"},
                                          {AltNameKind::upn, "upn@EXAMPLE.COM"},
                                          {AltNameKind::email, "first@example.com"},
                                          {AltNameKind::email, "second@example.org"}});
    expect_identity(accepted(spec, CertIdentityField::email), "first", "example.com");
}

TEST(CertIdentity, UpnIsSplitAtItsLastAt) {
    expect_identity(accepted(with_upn("anne@EXAMPLE.COM"), CertIdentityField::upn), "anne", "EXAMPLE.COM");
}

TEST(CertIdentity, UpnWithoutAtIsInTheDefaultRealm) {
    expect_identity(accepted(with_upn("anne"), CertIdentityField::upn), "anne", realm);
}

TEST(CertIdentity, FirstUpnCounts) {
    const CertSpec spec = with_alt_names({{AltNameKind::email, "mail@example.com"},
                                          {AltNameKind::upn, "first@EXAMPLE.COM"},
                                          {AltNameKind::upn, "second@EXAMPLE.COM"}});
    expect_identity(accepted(spec, CertIdentityField::upn), "first", "EXAMPLE.COM");
}

TEST(CertIdentity, CnIsUsedEvenWhenAltNamesExist) {
    CertSpec spec = with_email("mail@example.com");
    spec.subject = {{"CN", "anne"}};
    expect_identity(accepted(spec, CertIdentityField::cn), "anne", realm);
}

// ------------------------------------------------------------------------------------ refused

TEST(CertIdentityRefused, NoCertificate) {
    const auto result = identity_from_certificate(nullptr, CertIdentityField::cn, "R");
    ASSERT_TRUE(std::holds_alternative<std::string>(result));
    EXPECT_EQ(std::get<std::string>(result), "the client presented no certificate");
}

TEST(CertIdentityRefused, NoCn) {
    EXPECT_EQ(refused({.subject = {{"O", "Example"}}}, CertIdentityField::cn),
              "the client certificate has no subject CN");
}

TEST(CertIdentityRefused, TwoCns) {
    EXPECT_EQ(refused({.subject = {{"CN", "anne"}, {"CN", "admin"}}}, CertIdentityField::cn),
              "the client certificate's subject has more than one CN, so it names no single user");
}

TEST(CertIdentityRefused, CnWithNul) {
    EXPECT_EQ(refused(with_cn(std::string("admin\0anne", 10)), CertIdentityField::cn),
              "subject CN contains a NUL byte");
}

TEST(CertIdentityRefused, EmptyCn) {
    EXPECT_EQ(refused(with_cn(""), CertIdentityField::cn), "subject CN is empty");
}

TEST(CertIdentityRefused, CnWithControlCharacters) {
    for (const char* cn : {"an\nne", "an\tne", "anne\x7f", "an\xc2\x85ne" /* U+0085, a C1 control */})
        EXPECT_EQ(refused(with_cn(cn), CertIdentityField::cn), "subject CN contains a control character") << cn;
}

TEST(CertIdentityRefused, CnWithSpace) {
    EXPECT_EQ(refused(with_cn("Anne Smith"), CertIdentityField::cn),
              "subject CN \"Anne Smith\" contains a space, which no user name in an allow rule can");
}

TEST(CertIdentityRefused, CnWithAt) {
    EXPECT_EQ(refused(with_cn("anne@example.com"), CertIdentityField::cn),
              "subject CN \"anne@example.com\" contains '@'; for names with a realm set client_identity = "
              "\"email\" or \"upn\"");
}

TEST(CertIdentityRefused, NoAltNamesMeansNoEmail) {
    EXPECT_EQ(refused(with_cn("anne"), CertIdentityField::email),
              "the client certificate has no email address (subjectAltName rfc822Name)");
}

TEST(CertIdentityRefused, AltNamesWithoutEmail) {
    const CertSpec spec = with_alt_names({{AltNameKind::dns, "anne.example.com"}, {AltNameKind::upn, "anne@X"}});
    EXPECT_EQ(refused(spec, CertIdentityField::email),
              "the client certificate has no email address (subjectAltName rfc822Name)");
}

TEST(CertIdentityRefused, EmailWithNul) {
    EXPECT_EQ(refused(with_email(std::string("admin@example.com\0.evil.org", 27)), CertIdentityField::email),
              "the email address (subjectAltName rfc822Name) contains a NUL byte");
}

TEST(CertIdentityRefused, EmailWithControlCharacter) {
    EXPECT_EQ(refused(with_email("anne\r@example.com"), CertIdentityField::email),
              "the email address (subjectAltName rfc822Name) contains a control character");
}

TEST(CertIdentityRefused, EmailWithoutUser) {
    EXPECT_EQ(refused(with_email("@example.com"), CertIdentityField::email),
              "the email address (subjectAltName rfc822Name) \"@example.com\" has no user name before its '@'");
    EXPECT_EQ(refused(with_email(""), CertIdentityField::email),
              "the email address (subjectAltName rfc822Name) is empty");
}

TEST(CertIdentityRefused, EmailWithoutRealm) {
    EXPECT_EQ(refused(with_email("anne@"), CertIdentityField::email),
              "the email address (subjectAltName rfc822Name) \"anne@\" has no realm after its '@'");
}

TEST(CertIdentityRefused, NoAltNamesMeansNoUpn) {
    EXPECT_EQ(refused(with_cn("anne"), CertIdentityField::upn),
              "the client certificate has no UPN (subjectAltName otherName 1.3.6.1.4.1.311.20.2.3)");
}

TEST(CertIdentityRefused, AltNamesWithoutUpn) {
    EXPECT_EQ(refused(with_email("anne@example.com"), CertIdentityField::upn),
              "the client certificate has no UPN (subjectAltName otherName 1.3.6.1.4.1.311.20.2.3)");
}

TEST(CertIdentityRefused, UpnThatIsNotUtf8String) {
    EXPECT_EQ(refused(with_alt_names({{AltNameKind::upn_as_ia5, "anne@EXAMPLE.COM"}}), CertIdentityField::upn),
              "the UPN (subjectAltName otherName 1.3.6.1.4.1.311.20.2.3) is not a UTF8String");
}

TEST(CertIdentityRefused, UpnThatIsNotUtf8) {
    EXPECT_EQ(refused(with_upn("anne\xff@EXAMPLE.COM"), CertIdentityField::upn),
              "the UPN (subjectAltName otherName 1.3.6.1.4.1.311.20.2.3) is not valid text for its ASN.1 "
              "string type");
}

TEST(CertIdentityRefused, UpnWithNulOrControlCharacter) {
    EXPECT_EQ(refused(with_upn(std::string("admin\0@EXAMPLE.COM", 19)), CertIdentityField::upn),
              "the UPN (subjectAltName otherName 1.3.6.1.4.1.311.20.2.3) contains a NUL byte");
    EXPECT_EQ(refused(with_upn("admin\x1b[2J@EXAMPLE.COM"), CertIdentityField::upn),
              "the UPN (subjectAltName otherName 1.3.6.1.4.1.311.20.2.3) contains a control character");
}

TEST(CertIdentityRefused, UpnWithoutUser) {
    EXPECT_EQ(refused(with_upn("@EXAMPLE.COM"), CertIdentityField::upn),
              "the UPN (subjectAltName otherName 1.3.6.1.4.1.311.20.2.3) \"@EXAMPLE.COM\" has no user name "
              "before its '@'");
}

TEST(CertIdentityRefused, RepeatedAltNameExtension) {
    CertSpec spec = with_email("anne@example.com");
    spec.repeat_alt_names = true;
    for (auto field : {CertIdentityField::email, CertIdentityField::upn})
        EXPECT_EQ(refused(spec, field), "the client certificate's subjectAltName extension is repeated or malformed");
}

// ------------------------------------------------------------------------------------ subject text

TEST(CertificateSubjectText, IsOneRfc2253Line) {
    const test::Credential leaf = test::make_credential(with_cn("anne"), &ca());
    EXPECT_EQ(certificate_subject_text(leaf.cert.get()), "CN=anne,O=Example");
}

TEST(CertificateSubjectText, EscapesSpecialAndControlCharactersAndKeepsUtf8) {
    const test::Credential leaf = test::make_credential(with_cn("zo\xc3\xab, \"x\"\n"), &ca());
    EXPECT_EQ(certificate_subject_text(leaf.cert.get()), "CN=zo\xc3\xab\\, \\\"x\\\"\\0A,O=Example");
}

TEST(CertificateSubjectText, NoCertificateIsEmpty) { EXPECT_EQ(certificate_subject_text(nullptr), ""); }

}  // namespace
}  // namespace vmgate::auth
