#include "auth/cert_identity.hpp"

#include <fmt/format.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <optional>
#include <stdexcept>
#include <utility>

namespace vmgate::auth {
namespace {

using Result = std::variant<core::Identity, std::string>;

constexpr std::string_view email_field = "the email address (subjectAltName rfc822Name)";
constexpr std::string_view upn_field = "the UPN (subjectAltName otherName 1.3.6.1.4.1.311.20.2.3)";

struct AltNamesFree {
    void operator()(GENERAL_NAMES* names) const { GENERAL_NAMES_free(names); }
};
using AltNames = std::unique_ptr<GENERAL_NAMES, AltNamesFree>;

struct BioFree {
    void operator()(BIO* bio) const { BIO_free(bio); }
};

Result refused(std::string why) { return why; }

// A field's value as UTF-8, whatever ASN.1 string type it was written in; nullopt when its
// bytes are not valid in that type.
std::optional<std::string> utf8_text(const ASN1_STRING* value) {
    unsigned char* out = nullptr;
    const int length = ASN1_STRING_to_UTF8(&out, value);
    if (length < 0) {
        ERR_clear_error();  // a later SSL_get_error on this thread must not find this failure
        return std::nullopt;
    }
    std::string text(reinterpret_cast<const char*>(out), static_cast<std::size_t>(length));
    OPENSSL_free(out);
    return text;
}

// C0 controls, DEL and C1 controls (U+0080..U+009F, C2 80..C2 9F in UTF-8): they would let a
// name look like another one in logs and listings.
bool has_control_character(std::string_view text) {
    for (std::size_t i = 0; i < text.size(); ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c < 0x20 || c == 0x7f) return true;
        if (c == 0xc2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) < 0xa0) return true;
    }
    return false;
}

// Why TEXT cannot name a user, or "". A NUL is singled out: C APIs (getgrouplist, audit
// readers) would see only the part before it.
std::string text_problem(std::string_view text, std::string_view field) {
    if (text.find('\0') != std::string_view::npos) return fmt::format("{} contains a NUL byte", field);
    if (has_control_character(text)) return fmt::format("{} contains a control character", field);
    if (text.empty()) return fmt::format("{} is empty", field);
    // Allow rules cannot name a user with a space (the configuration refuses such names).
    if (text.find(' ') != std::string_view::npos)
        return fmt::format("{} \"{}\" contains a space, which no user name in an allow rule can", field, text);
    return "";
}

// The user is the CN as written; an '@' in it would read as a realm in audit records and to
// Cyrus-style splitting, so a CN naming a principal is refused rather than guessed at.
Result from_common_name(X509* cert, const std::string& default_realm) {
    const X509_NAME* subject = X509_get_subject_name(cert);
    const int first = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    if (first < 0) return refused("the client certificate has no subject CN");
    if (X509_NAME_get_index_by_NID(subject, NID_commonName, first) >= 0)
        return refused("the client certificate's subject has more than one CN, so it names no single user");
    const auto cn = utf8_text(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, first)));
    if (!cn) return refused("subject CN is not valid text for its ASN.1 string type");
    if (auto problem = text_problem(*cn, "subject CN"); !problem.empty()) return refused(std::move(problem));
    if (cn->find('@') != std::string::npos)
        return refused(fmt::format("subject CN \"{}\" contains '@'; for names with a realm set client_identity = "
                                   "\"email\" or \"upn\"",
                                   *cn));
    return core::Identity{*cn, default_realm, std::string(certificate_mechanism)};
}

// "user@realm" split at the last '@'; a bare name is in default_realm.
Result from_principal(const ASN1_STRING* value, std::string_view field, const std::string& default_realm) {
    const auto principal = utf8_text(value);
    if (!principal) return refused(fmt::format("{} is not valid text for its ASN.1 string type", field));
    if (auto problem = text_problem(*principal, field); !problem.empty()) return refused(std::move(problem));
    core::Identity identity = core::Identity::parse(*principal, std::string(certificate_mechanism));
    if (identity.user.empty())
        return refused(fmt::format("{} \"{}\" has no user name before its '@'", field, *principal));
    if (principal->find('@') == std::string::npos) identity.realm = default_realm;
    else if (identity.realm.empty())
        return refused(fmt::format("{} \"{}\" has no realm after its '@'", field, *principal));
    return identity;
}

// The subjectAltName entries; nullptr when the extension is absent, or with UNREADABLE set when
// it is repeated or malformed.
AltNames alt_names(X509* cert, std::string& unreadable) {
    int critical = 0;
    AltNames names(static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, &critical, nullptr)));
    ERR_clear_error();
    if (!names && critical != -1)
        unreadable = "the client certificate's subjectAltName extension is repeated or malformed";
    return names;
}

Result from_email(X509* cert, const std::string& default_realm) {
    std::string unreadable;
    const AltNames names = alt_names(cert, unreadable);
    if (!unreadable.empty()) return refused(std::move(unreadable));
    for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {  // -1 without the extension
        const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
        if (name->type == GEN_EMAIL) return from_principal(name->d.rfc822Name, email_field, default_realm);
    }
    return refused("the client certificate has no email address (subjectAltName rfc822Name)");
}

Result from_upn(X509* cert, const std::string& default_realm) {
    std::string unreadable;
    const AltNames names = alt_names(cert, unreadable);
    if (!unreadable.empty()) return refused(std::move(unreadable));
    for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {  // -1 without the extension
        const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
        if (name->type != GEN_OTHERNAME || OBJ_obj2nid(name->d.otherName->type_id) != NID_ms_upn) continue;
        const ASN1_TYPE* value = name->d.otherName->value;
        if (value->type != V_ASN1_UTF8STRING) return refused(fmt::format("{} is not a UTF8String", upn_field));
        return from_principal(value->value.utf8string, upn_field, default_realm);
    }
    return refused("the client certificate has no UPN (subjectAltName otherName 1.3.6.1.4.1.311.20.2.3)");
}

}  // namespace

std::variant<core::Identity, std::string> identity_from_certificate(X509* cert, core::CertIdentityField field,
                                                                    const std::string& default_realm) {
    if (!cert) return refused("the client presented no certificate");
    switch (field) {
        case core::CertIdentityField::cn: return from_common_name(cert, default_realm);
        case core::CertIdentityField::email: return from_email(cert, default_realm);
        case core::CertIdentityField::upn: return from_upn(cert, default_realm);
    }
    throw std::logic_error("unknown certificate identity field");
}

std::string certificate_subject_text(X509* cert) {
    // RFC 2253 escapes control characters; without ESC_MSB, non-ASCII letters stay readable
    // UTF-8 instead of becoming \XX escapes.
    constexpr unsigned long flags = XN_FLAG_RFC2253 & ~static_cast<unsigned long>(ASN1_STRFLGS_ESC_MSB);
    const std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
    if (!cert || !bio || X509_NAME_print_ex(bio.get(), X509_get_subject_name(cert), 0, flags) < 0) {
        ERR_clear_error();
        return "";
    }
    char* data = nullptr;
    const long length = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(length));
}

}  // namespace vmgate::auth
