// Keys and certificates made in-test with the OpenSSL 3 API, shared by the certificate identity
// tests (auth_*.cpp) and the TLS handshake tests (net_*.cpp). Field values are raw bytes, so
// tests can build certificates no honest CA would sign (NUL bytes, invalid UTF-8, two CNs).
#pragma once

#include <openssl/asn1.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace vmgate::test {

struct OpenSslFree {
    void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
    void operator()(X509* p) const { X509_free(p); }
    void operator()(GENERAL_NAMES* p) const { GENERAL_NAMES_free(p); }
    void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
    void operator()(BIO* p) const { BIO_free(p); }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, OpenSslFree>;
using CertPtr = std::unique_ptr<X509, OpenSslFree>;

inline void check(bool ok, const char* what) {
    if (!ok) throw std::runtime_error(std::string("test certificate: ") + what + " failed");
}

// subjectAltName entries. upn_as_ia5 is a UPN otherName whose value is an IA5String, which
// the UPN definition does not allow.
enum class AltNameKind { email, upn, upn_as_ia5, dns };

struct AltName {
    AltNameKind kind;
    std::string value;
};

struct CertSpec {
    std::vector<std::pair<std::string, std::string>> subject{};  // {"O", "Example"}, {"CN", "anne"}, in order
    std::vector<AltName> alt_names{};                            // none: no subjectAltName extension
    bool repeat_alt_names = false;                               // the extension twice
    bool ca = false;
};

struct Credential {
    KeyPtr key;
    CertPtr cert;
};

inline KeyPtr ec_key() {
    KeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
    check(key != nullptr, "EVP_PKEY_Q_keygen");
    return key;
}

template <class S>
S* asn1_string(int type, const std::string& bytes) {
    S* s = ASN1_STRING_type_new(type);
    check(s && ASN1_STRING_set(s, bytes.data(), static_cast<int>(bytes.size())) == 1, "ASN1_STRING_set");
    return s;
}

inline GENERAL_NAME* other_name_upn(const std::string& value, int type) {
    GENERAL_NAME* name = GENERAL_NAME_new();
    ASN1_TYPE* any = ASN1_TYPE_new();
    check(name && any, "GENERAL_NAME_new");
    ASN1_TYPE_set(any, type, asn1_string<ASN1_STRING>(type, value));
    check(GENERAL_NAME_set0_othername(name, OBJ_nid2obj(NID_ms_upn), any) == 1, "GENERAL_NAME_set0_othername");
    return name;
}

inline GENERAL_NAME* general_name(const AltName& alt) {
    switch (alt.kind) {
        case AltNameKind::upn: return other_name_upn(alt.value, V_ASN1_UTF8STRING);
        case AltNameKind::upn_as_ia5: return other_name_upn(alt.value, V_ASN1_IA5STRING);
        case AltNameKind::email:
        case AltNameKind::dns: break;
    }
    GENERAL_NAME* name = GENERAL_NAME_new();
    check(name != nullptr, "GENERAL_NAME_new");
    GENERAL_NAME_set0_value(name, alt.kind == AltNameKind::email ? GEN_EMAIL : GEN_DNS,
                            asn1_string<ASN1_IA5STRING>(V_ASN1_IA5STRING, alt.value));
    return name;
}

inline void add_alt_names(X509* cert, const CertSpec& spec) {
    if (spec.alt_names.empty()) return;
    const std::unique_ptr<GENERAL_NAMES, OpenSslFree> names(GENERAL_NAMES_new());
    for (const AltName& alt : spec.alt_names) sk_GENERAL_NAME_push(names.get(), general_name(alt));
    for (int copy = 0; copy < (spec.repeat_alt_names ? 2 : 1); ++copy)
        check(X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), 0, X509V3_ADD_APPEND) == 1, "X509_add1_ext_i2d");
}

inline void add_extension(X509* cert, X509* issuer, int nid, const char* value) {
    X509V3_CTX context;
    X509V3_set_ctx_nodb(&context);
    X509V3_set_ctx(&context, issuer, cert, nullptr, nullptr, 0);
    const std::unique_ptr<X509_EXTENSION, OpenSslFree> extension(X509V3_EXT_conf_nid(nullptr, &context, nid, value));
    check(extension && X509_add_ext(cert, extension.get(), -1) == 1, "X509_add_ext");
}

// Every value is stored as a UTF8String with exactly the given bytes (no validation), so the
// code under test sees what a careless or hostile CA could issue.
inline void set_subject(X509* cert, const CertSpec& spec) {
    X509_NAME* name = X509_get_subject_name(cert);
    for (const auto& [field, value] : spec.subject)
        check(X509_NAME_add_entry_by_txt(name, field.c_str(), V_ASN1_UTF8STRING,
                                         reinterpret_cast<const unsigned char*>(value.data()),
                                         static_cast<int>(value.size()), -1, 0) == 1,
              "X509_NAME_add_entry_by_txt");
}

// A certificate for SPEC with a fresh EC P-256 key, signed by ISSUER (self-signed when null),
// valid from a minute ago for a day.
inline Credential make_credential(const CertSpec& spec, const Credential* issuer = nullptr) {
    static std::atomic<long> next_serial{1};
    Credential made{ec_key(), CertPtr(X509_new())};
    X509* cert = made.cert.get();
    check(cert && X509_set_version(cert, X509_VERSION_3) == 1 && X509_set_pubkey(cert, made.key.get()) == 1,
          "X509_new");
    check(ASN1_INTEGER_set(X509_get_serialNumber(cert), next_serial++) == 1, "ASN1_INTEGER_set");
    check(X509_gmtime_adj(X509_getm_notBefore(cert), -60) && X509_gmtime_adj(X509_getm_notAfter(cert), 86400),
          "X509_gmtime_adj");
    set_subject(cert, spec);
    X509* signer = issuer ? issuer->cert.get() : cert;
    check(X509_set_issuer_name(cert, X509_get_subject_name(signer)) == 1, "X509_set_issuer_name");
    if (spec.ca) {
        add_extension(cert, signer, NID_basic_constraints, "critical,CA:TRUE");
        add_extension(cert, signer, NID_key_usage, "critical,keyCertSign,cRLSign");
    }
    add_alt_names(cert, spec);
    check(X509_sign(cert, issuer ? issuer->key.get() : made.key.get(), EVP_sha256()) > 0, "X509_sign");
    return made;
}

inline Credential make_ca(const std::string& common_name) {
    return make_credential({.subject = {{"CN", common_name}}, .ca = true});
}

inline Credential make_leaf(const std::string& common_name, const Credential& ca) {
    return make_credential({.subject = {{"CN", common_name}}}, &ca);
}

inline void write_cert_pem(const std::filesystem::path& file, X509* cert) {
    const std::unique_ptr<BIO, OpenSslFree> out(BIO_new_file(file.c_str(), "w"));
    check(out && PEM_write_bio_X509(out.get(), cert) == 1, "PEM_write_bio_X509");
}

// Mode 0600: the gateway refuses a key that every user can read.
inline void write_key_pem(const std::filesystem::path& file, EVP_PKEY* key) {
    {
        const std::unique_ptr<BIO, OpenSslFree> out(BIO_new_file(file.c_str(), "w"));
        check(out && PEM_write_bio_PrivateKey(out.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 1,
              "PEM_write_bio_PrivateKey");
    }
    check(::chmod(file.c_str(), 0600) == 0, "chmod");
}

}  // namespace vmgate::test
