#include "cli/server_certificate.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

namespace vmgate::cli {

namespace {

struct OpenSslFree {
    void operator()(X509* p) const { X509_free(p); }
    void operator()(BIO* p) const { BIO_free(p); }
    void operator()(X509_STORE* p) const { X509_STORE_free(p); }
    void operator()(X509_STORE_CTX* p) const { X509_STORE_CTX_free(p); }
    void operator()(STACK_OF(X509) * p) const { sk_X509_free(p); }  // the certificates stay owned elsewhere
    void operator()(GENERAL_NAMES* p) const { GENERAL_NAMES_free(p); }
};
template <typename T>
using Owned = std::unique_ptr<T, OpenSslFree>;
using Certs = std::vector<Owned<X509>>;

constexpr std::size_t kOidTextSize = 128;

// Every certificate in a PEM file, in file order; empty (and error) when there is none.
Certs read_certificates(const std::string& path, std::string& error) {
    Owned<BIO> in(BIO_new_file(path.c_str(), "r"));
    if (!in) {
        error = path + ": " + std::strerror(errno);
        return {};
    }
    Certs certs;
    while (X509* cert = PEM_read_bio_X509(in.get(), nullptr, nullptr, nullptr)) certs.emplace_back(cert);
    ERR_clear_error();  // the end of the file reads as a PEM error
    if (certs.empty()) error = path + ": no PEM certificate in it";
    return certs;
}

// The server certificate against the trusted CAs, with the rest of its file as intermediates.
bool verify(X509* leaf, const Certs& trusted, const Certs& intermediates, std::string& error) {
    const Owned<X509_STORE> store(X509_STORE_new());
    const Owned<STACK_OF(X509)> untrusted(sk_X509_new_null());
    const Owned<X509_STORE_CTX> context(X509_STORE_CTX_new());
    if (!store || !untrusted || !context) {
        error = "out of memory";
        return false;
    }
    for (const auto& ca : trusted) X509_STORE_add_cert(store.get(), ca.get());
    for (const auto& cert : intermediates) sk_X509_push(untrusted.get(), cert.get());
    X509_STORE_CTX_init(context.get(), store.get(), leaf, untrusted.get());
    X509_STORE_CTX_set_purpose(context.get(), X509_PURPOSE_SSL_SERVER);
    if (X509_verify_cert(context.get()) == 1) return true;
    error = X509_verify_cert_error_string(X509_STORE_CTX_get_error(context.get()));
    ERR_clear_error();
    return false;
}

std::string pem_text(const Certs& certs) {
    const Owned<BIO> out(BIO_new(BIO_s_mem()));
    for (const auto& cert : certs) PEM_write_bio_X509(out.get(), cert.get());
    char* data = nullptr;
    const long size = BIO_get_mem_data(out.get(), &data);
    return {data, static_cast<std::size_t>(size)};
}

// The CA: --ca's certificates, else the chain's self-signed root (moved out of chain).
Certs trust_anchors(Certs& chain, const std::string& cert_path, const std::string& ca_path, std::string& error) {
    if (!ca_path.empty()) return read_certificates(ca_path, error);
    if (chain.empty() || X509_self_signed(chain.back().get(), 1) != 1) {
        error = cert_path + " holds no CA certificate (no chain ending in a self-signed root), so nothing says "
                "which CA clients must trust: give --ca FILE with the CA certificate that signed it";
        return {};
    }
    Certs root;
    root.push_back(std::move(chain.back()));
    chain.pop_back();
    return root;
}

std::optional<std::string> utf8_value(const X509_NAME_ENTRY* entry) {
    unsigned char* out = nullptr;
    const int length = ASN1_STRING_to_UTF8(&out, X509_NAME_ENTRY_get_data(entry));
    if (length < 0) {
        ERR_clear_error();
        return std::nullopt;
    }
    std::string text(reinterpret_cast<const char*>(out), static_cast<std::size_t>(length));
    OPENSSL_free(out);
    return text;
}

// The short name spice-gtk's X509_NAME_add_entry_by_txt maps back to the same attribute type;
// the dotted OID for a type OpenSSL has no name for.
std::string attribute_key(const X509_NAME_ENTRY* entry) {
    const ASN1_OBJECT* type = X509_NAME_ENTRY_get_object(entry);
    const int nid = OBJ_obj2nid(type);
    if (nid != NID_undef) return OBJ_nid2sn(nid);
    std::array<char, kOidTextSize> oid{};
    OBJ_obj2txt(oid.data(), static_cast<int>(oid.size()), type, 1);
    return oid.data();
}

// spice-gtk's parser knows two escapes, "\\" and "\,", and nothing else.
std::string escaped_value(const std::string& value) {
    std::string out;
    for (const char c : value) {
        if (c == '\\' || c == ',') out += '\\';
        out += c;
    }
    return out;
}

std::string first_dns_name(X509* cert) {
    const Owned<GENERAL_NAMES> names(
        static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names.get()); ++i) {
        const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
        if (name->type != GEN_DNS) continue;
        const ASN1_IA5STRING* dns = name->d.dNSName;
        std::string text(reinterpret_cast<const char*>(ASN1_STRING_get0_data(dns)),
                         static_cast<std::size_t>(ASN1_STRING_length(dns)));
        if (!text.empty() && !text.starts_with("*.") && text.find('\0') == std::string::npos) return text;
    }
    return "";
}

}  // namespace

std::optional<std::string> spice_host_subject(X509* cert, std::string& error) {
    const X509_NAME* subject = X509_get_subject_name(cert);
    const int count = X509_NAME_entry_count(subject);
    if (count == 0) {
        error = "the server certificate's subject is empty, so there is no host-subject to pin";
        return std::nullopt;
    }
    std::string text;
    for (int i = 0; i < count; ++i) {
        const X509_NAME_ENTRY* entry = X509_NAME_get_entry(subject, i);
        if (i > 0 && X509_NAME_ENTRY_set(entry) == X509_NAME_ENTRY_set(X509_NAME_get_entry(subject, i - 1))) {
            error = "the server certificate's subject has a multi-valued RDN, which spice-gtk's host-subject "
                    "cannot express";
            return std::nullopt;
        }
        const auto value = utf8_value(entry);
        if (!value || value->empty() || value->find('\0') != std::string::npos) {
            error = "the server certificate's subject has an empty or unreadable " + attribute_key(entry) +
                    ", which spice-gtk's host-subject cannot express";
            return std::nullopt;
        }
        text += (i > 0 ? "," : "") + attribute_key(entry) + "=" + escaped_value(*value);
    }
    return text;
}

std::optional<ServerCertificate> read_server_certificate(const std::string& cert_path, const std::string& ca_path,
                                                         std::string& error) {
    Certs chain = read_certificates(cert_path, error);
    if (chain.empty()) return std::nullopt;
    const Owned<X509> leaf = std::move(chain.front());
    chain.erase(chain.begin());
    const Certs trusted = trust_anchors(chain, cert_path, ca_path, error);
    if (trusted.empty()) return std::nullopt;
    if (!verify(leaf.get(), trusted, chain, error)) {
        error = cert_path + " does not verify against the CA " +
                (ca_path.empty() ? "at the end of its chain" : "in " + ca_path) + ": " + error;
        return std::nullopt;
    }
    auto subject = spice_host_subject(leaf.get(), error);
    if (!subject) return std::nullopt;
    return ServerCertificate{pem_text(trusted), std::move(*subject), first_dns_name(leaf.get())};
}

}  // namespace vmgate::cli
