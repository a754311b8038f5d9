#include "cli/demo_pki.hpp"

#include "net/tls.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>

namespace vmgate::cli {
namespace {

namespace fs = std::filesystem;

constexpr int ca_validity_days = 3650;
// The longest lifetime that every major TLS client (Apple's included) accepts for a server.
constexpr int server_validity_days = 825;
// Files that expire within this margin are replaced now, not after clients start refusing them.
constexpr std::time_t renew_margin_seconds = 30L * 24 * 3600;
// notBefore one hour back, so a client whose clock lags a little still accepts a new certificate.
constexpr long clock_skew_seconds = 3600;
// Random and positive, well under RFC 5280's 20-octet limit.
constexpr int serial_bits = 127;
constexpr mode_t key_mode = 0600;
constexpr mode_t cert_mode = 0644;

struct OpenSslFree {
    void operator()(BIO* p) const { BIO_free(p); }
    void operator()(BIGNUM* p) const { BN_free(p); }
    void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
    void operator()(X509* p) const { X509_free(p); }
    void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
    void operator()(X509_STORE* p) const { X509_STORE_free(p); }
    void operator()(X509_STORE_CTX* p) const { X509_STORE_CTX_free(p); }
};
template <class T>
using Owned = std::unique_ptr<T, OpenSslFree>;

struct CertAndKey {
    Owned<X509> cert;
    Owned<EVP_PKEY> key;
};

[[noreturn]] void fail(const std::string& what) {
    throw std::runtime_error(what + ": " + net::openssl_errors());
}

[[noreturn]] void fail_errno(const std::string& what) {
    throw std::system_error(errno, std::generic_category(), what);
}

Owned<EVP_PKEY> generate_key() {
    // P-256: every TLS client supports it, and it is generated in milliseconds.
    Owned<EVP_PKEY> key(EVP_EC_gen("P-256"));
    if (!key) fail("cannot generate an EC P-256 key");
    return key;
}

void set_serial(X509* cert) {
    Owned<BIGNUM> serial(BN_new());
    if (!serial || BN_rand(serial.get(), serial_bits, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
        BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert)) == nullptr)
        fail("cannot set a certificate serial number");
}

void set_common_name(X509* cert, std::string_view common_name) {
    const std::string text(common_name);
    if (X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(text.c_str()), -1, -1,
                                   0) != 1)
        fail("cannot set the certificate subject");
}

void set_validity(X509* cert, int days) {
    if (X509_gmtime_adj(X509_getm_notBefore(cert), -clock_skew_seconds) == nullptr ||
        X509_time_adj_ex(X509_getm_notAfter(cert), days, 0, nullptr) == nullptr)
        fail("cannot set the certificate validity");
}

// ISSUER is CERT itself for the self-signed CA; the key identifiers are derived from it.
void add_extension(X509* cert, X509* issuer, int nid, const std::string& value) {
    X509V3_CTX context;
    X509V3_set_ctx_nodb(&context);
    X509V3_set_ctx(&context, issuer, cert, nullptr, nullptr, 0);
    Owned<X509_EXTENSION> extension(X509V3_EXT_nconf_nid(nullptr, &context, nid, value.c_str()));
    if (!extension || X509_add_ext(cert, extension.get(), -1) != 1)
        fail("cannot add the certificate extension " + value);
}

// The fields both certificates share; the caller adds extensions and signs.
Owned<X509> new_certificate(std::string_view common_name, EVP_PKEY* key, int days) {
    Owned<X509> cert(X509_new());
    if (!cert || X509_set_version(cert.get(), X509_VERSION_3) != 1 ||
        X509_set_pubkey(cert.get(), key) != 1)
        fail("cannot create a certificate");
    set_serial(cert.get());
    set_common_name(cert.get(), common_name);
    set_validity(cert.get(), days);
    return cert;
}

void sign(X509* cert, X509* issuer, EVP_PKEY* issuer_key) {
    if (X509_set_issuer_name(cert, X509_get_subject_name(issuer)) != 1 ||
        X509_sign(cert, issuer_key, EVP_sha256()) == 0)
        fail("cannot sign the certificate");
}

CertAndKey make_ca() {
    CertAndKey ca{nullptr, generate_key()};
    ca.cert = new_certificate(demo_ca_common_name, ca.key.get(), ca_validity_days);
    X509* cert = ca.cert.get();
    // pathlen:0: this CA signs servers only, never another CA.
    add_extension(cert, cert, NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
    add_extension(cert, cert, NID_key_usage, "critical,keyCertSign,cRLSign");
    add_extension(cert, cert, NID_subject_key_identifier, "hash");
    sign(cert, cert, ca.key.get());
    return ca;
}

CertAndKey make_server(const CertAndKey& ca) {
    CertAndKey server{nullptr, generate_key()};
    server.cert = new_certificate(demo_server_host, server.key.get(), server_validity_days);
    X509* cert = server.cert.get();
    X509* issuer = ca.cert.get();
    // Clients check the SAN, not the CN: localhost for the guide's URIs, 127.0.0.1 for tools
    // that connect by address.
    const std::string san =
        "DNS:" + std::string(demo_server_host) + ",IP:" + std::string(demo_server_ip);
    add_extension(cert, issuer, NID_basic_constraints, "critical,CA:FALSE");
    add_extension(cert, issuer, NID_key_usage, "critical,digitalSignature");
    add_extension(cert, issuer, NID_ext_key_usage, "serverAuth");
    add_extension(cert, issuer, NID_subject_alt_name, san);
    add_extension(cert, issuer, NID_subject_key_identifier, "hash");
    add_extension(cert, issuer, NID_authority_key_identifier, "keyid:always");
    sign(cert, issuer, ca.key.get());
    return server;
}

// A missing, unreadable or mismatched pair is not an error: it is created again.
std::optional<CertAndKey> read_pair(const fs::path& cert_file, const fs::path& key_file) {
    Owned<BIO> cert_bio(BIO_new_file(cert_file.c_str(), "r"));
    Owned<BIO> key_bio(BIO_new_file(key_file.c_str(), "r"));
    CertAndKey pair{
        Owned<X509>(cert_bio ? PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr)
                             : nullptr),
        Owned<EVP_PKEY>(key_bio ? PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr)
                                : nullptr)};
    const bool usable = pair.cert && pair.key && X509_check_private_key(pair.cert.get(), pair.key.get()) == 1;
    ERR_clear_error();
    if (!usable) return std::nullopt;
    return pair;
}

// CERT chains to CA and stays valid through the renewal margin; a server certificate must also
// name the demo host and address and allow TLS server use.
bool verifies(X509* cert, X509* ca, bool as_server) {
    Owned<X509_STORE> store(X509_STORE_new());
    Owned<X509_STORE_CTX> context(X509_STORE_CTX_new());
    if (!store || !context || X509_STORE_add_cert(store.get(), ca) != 1 ||
        X509_STORE_CTX_init(context.get(), store.get(), cert, nullptr) != 1)
        fail("cannot set up certificate verification");
    X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(context.get());
    X509_VERIFY_PARAM_set_time(param, std::time(nullptr) + renew_margin_seconds);
    if (as_server) {
        const std::string host(demo_server_host);
        const std::string ip(demo_server_ip);
        if (X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size()) != 1 ||
            X509_VERIFY_PARAM_set1_ip_asc(param, ip.c_str()) != 1 ||
            X509_STORE_CTX_set_purpose(context.get(), X509_PURPOSE_SSL_SERVER) != 1)
            fail("cannot set up certificate verification");
    }
    const bool ok = X509_verify_cert(context.get()) == 1;
    ERR_clear_error();
    return ok;
}

bool is_usable_ca(const CertAndKey& ca) {
    return X509_check_ca(ca.cert.get()) != 0 && verifies(ca.cert.get(), ca.cert.get(), false);
}

template <class Write>
std::string to_pem(Write write) {
    Owned<BIO> bio(BIO_new(BIO_s_mem()));
    if (!bio || write(bio.get()) != 1) fail("cannot encode PEM");
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(size));
}

void write_pair(const CertAndKey& pair, const fs::path& cert_file, const fs::path& key_file) {
    write_file_atomically(key_file, to_pem([&](BIO* bio) {
        return PEM_write_bio_PrivateKey(bio, pair.key.get(), nullptr, nullptr, 0, nullptr, nullptr);
    }), key_mode);
    write_file_atomically(cert_file, to_pem([&](BIO* bio) {
        return PEM_write_bio_X509(bio, pair.cert.get());
    }), cert_mode);
}

void write_all(int fd, std::string_view content, const fs::path& file) {
    while (!content.empty()) {
        const ssize_t n = ::write(fd, content.data(), content.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) fail_errno("cannot write " + file.string());
        content.remove_prefix(static_cast<std::size_t>(n));
    }
}

}  // namespace

DemoPkiFiles demo_pki_files(const fs::path& pki_dir) {
    return {pki_dir / "ca-cert.pem", pki_dir / "ca-key.pem", pki_dir / "server-cert.pem",
            pki_dir / "server-key.pem"};
}

DemoPki ensure_demo_pki(const fs::path& pki_dir) {
    create_private_dir(pki_dir);
    DemoPki pki{demo_pki_files(pki_dir)};
    const DemoPkiFiles& files = pki.files;

    std::optional<CertAndKey> ca = read_pair(files.ca_cert, files.ca_key);
    if (!ca || !is_usable_ca(*ca)) {
        ca = make_ca();
        write_pair(*ca, files.ca_cert, files.ca_key);
        pki.ca_created = true;
    }
    // A new CA also fails this check, so the server certificate follows it.
    std::optional<CertAndKey> server = read_pair(files.server_cert, files.server_key);
    if (!server || !verifies(server->cert.get(), ca->cert.get(), true)) {
        write_pair(make_server(*ca), files.server_cert, files.server_key);
        pki.server_created = true;
    }
    // Reused keys may have been copied around with a looser mode.
    fs::permissions(files.ca_key, static_cast<fs::perms>(key_mode), fs::perm_options::replace);
    fs::permissions(files.server_key, static_cast<fs::perms>(key_mode), fs::perm_options::replace);
    return pki;
}

void create_private_dir(const fs::path& dir, mode_t mode) {
    if (fs::is_directory(dir)) return;
    if (dir.has_parent_path()) fs::create_directories(dir.parent_path());
    if (::mkdir(dir.c_str(), mode) != 0 && errno != EEXIST) fail_errno("cannot create " + dir.string());
    if (!fs::is_directory(dir)) throw std::runtime_error(dir.string() + " exists and is not a directory");
    // mkdir applied the umask; chmod gives exactly MODE.
    if (::chmod(dir.c_str(), mode) != 0) fail_errno("cannot chmod " + dir.string());
}

void write_file_atomically(const fs::path& file, std::string_view content, mode_t mode) {
    const fs::path temp = file.string() + ".tmp";
    ::unlink(temp.c_str());  // the leftover of an interrupted run, if any
    // O_EXCL|O_NOFOLLOW: never write a key through a link someone else placed there.
    const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0) fail_errno("cannot create " + temp.string());
    try {
        if (::fchmod(fd, mode) != 0) fail_errno("cannot chmod " + temp.string());
        write_all(fd, content, temp);
        if (::fsync(fd) != 0) fail_errno("cannot write " + temp.string());
    } catch (...) {
        ::close(fd);
        ::unlink(temp.c_str());
        throw;
    }
    if (::close(fd) != 0) fail_errno("cannot write " + temp.string());
    if (::rename(temp.c_str(), file.c_str()) != 0) fail_errno("cannot replace " + file.string());
}

}  // namespace vmgate::cli
