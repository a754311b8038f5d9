// The gateway refuses a TLS key that every user on the host can read; client certificates over
// real handshakes on loopback: asked for per connection, verified against the client CA, and
// never skipped through session resumption.
#include "net/tls.hpp"

#include "auth/cert_identity.hpp"
#include "x509_test_util.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/use_awaitable.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <variant>
#include <vector>

namespace vmgate::net {
namespace {

using ::testing::HasSubstr;

// A directory removed when the test ends.
class TempDir {
public:
    TempDir() {
        char pattern[] = "/tmp/vmgate-tls-test.XXXXXX";
        path_ = ::mkdtemp(pattern);
    }
    ~TempDir() { std::filesystem::remove_all(path_); }
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
};

// A key file with the given mode.
class TempKey {
public:
    explicit TempKey(mode_t mode) {
        std::ofstream(path()) << "not a key\n";
        ::chmod(path().c_str(), mode);
    }
    std::string path() const { return (dir_.path() / "key.pem").string(); }

private:
    TempDir dir_;
};

TEST(TlsKeyPermissions, OwnerOnlyAndGroupReadableKeysAreAccepted) {
    EXPECT_EQ(private_key_permission_problem(TempKey(0600).path()), "");
    EXPECT_EQ(private_key_permission_problem(TempKey(0640).path()), "");  // a service group
}

TEST(TlsKeyPermissions, WorldReadableKeyIsRefusedWithTheFix) {
    const TempKey key(0644);
    const std::string path = key.path();
    const std::string problem = private_key_permission_problem(path);
    EXPECT_NE(problem.find("readable by every user (mode 644)"), std::string::npos) << problem;
    EXPECT_NE(problem.find("chmod o-rwx " + path), std::string::npos) << problem;
}

TEST(TlsKeyPermissions, MissingKeyIsNamed) {
    EXPECT_NE(private_key_permission_problem("/nonexistent/key.pem").find("/nonexistent/key.pem"), std::string::npos);
}

TEST(TlsKeyPermissions, ServerContextRefusesToStartWithAWorldReadableKey) {
    core::TlsConfig config;
    config.cert = "/nonexistent/cert.pem";
    const TempKey key(0644);
    config.key = key.path();
    try {
        TlsServerContext context(config);
        FAIL() << "a world-readable key was accepted";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("refusing to use the TLS key"), std::string::npos) << e.what();
    }
}

// ------------------------------------------------------------------------------ client certificates

constexpr auto none = core::ClientCertMode::none;
constexpr auto optional = core::ClientCertMode::optional;
constexpr auto required = core::ClientCertMode::required;

// The gateway's certificate, the client CA with its client "anne", and a stranger also named
// "anne" but issued by another CA; made once for the whole file.
struct Pki {
    test::Credential server = test::make_credential({.subject = {{"CN", "localhost"}}});
    test::Credential client_ca = test::make_ca("vmgate test client CA");
    test::Credential anne = test::make_leaf("anne", client_ca);
    test::Credential other_ca = test::make_ca("some other CA");
    test::Credential stranger = test::make_leaf("anne", other_ca);
    TempDir dir;

    Pki() {
        test::write_cert_pem(dir.path() / "server-cert.pem", server.cert.get());
        test::write_key_pem(dir.path() / "server-key.pem", server.key.get());
        test::write_cert_pem(dir.path() / "client-ca.pem", client_ca.cert.get());
    }

    core::TlsConfig config(bool with_client_ca) const {
        core::TlsConfig tls;
        tls.cert = dir.path() / "server-cert.pem";
        tls.key = dir.path() / "server-key.pem";
        if (with_client_ca) tls.client_ca = dir.path() / "client-ca.pem";
        return tls;
    }
};

const Pki& pki() {
    static const Pki shared;
    return shared;
}

const TlsServerContext& context_with_client_ca() {
    static const TlsServerContext context(pki().config(true));
    return context;
}

struct OpenSslFree {
    void operator()(SSL_CTX* p) const { SSL_CTX_free(p); }
    void operator()(SSL* p) const { SSL_free(p); }
    void operator()(SSL_SESSION* p) const { SSL_SESSION_free(p); }
};
using SessionPtr = std::unique_ptr<SSL_SESSION, OpenSslFree>;

struct ClientOptions {
    const test::Credential* cert = nullptr;  // presented when asked
    SSL_SESSION* resume = nullptr;           // offered for resumption
};

struct ClientSeen {
    bool connected = false;
    bool resumed = false;
    std::vector<std::string> requested_cas;  // CA names in the server's certificate request
    SessionPtr session;
};

std::vector<std::string> requested_cas(const SSL* ssl) {
    std::vector<std::string> names;
    const STACK_OF(X509_NAME)* list = SSL_get_client_CA_list(ssl);
    for (int i = 0; i < sk_X509_NAME_num(list); ++i) {  // -1 when no certificate was requested
        char buffer[256];
        names.emplace_back(X509_NAME_oneline(sk_X509_NAME_value(list, i), buffer, sizeof buffer));
    }
    return names;
}

// A blocking OpenSSL client, as a VNC viewer would be: handshakes, then reads until the server
// closes, which also takes in TLS 1.3 session tickets. The server certificate is not checked.
ClientSeen run_client(std::uint16_t port, const ClientOptions& options) {
    asio::io_context io;
    asio::ip::tcp::socket socket(io);
    socket.connect({asio::ip::address_v4::loopback(), port});
    const timeval timeout{5, 0};  // a broken test fails instead of hanging
    ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    const std::unique_ptr<SSL_CTX, OpenSslFree> ctx(SSL_CTX_new(TLS_client_method()));
    if (options.cert) {
        SSL_CTX_use_certificate(ctx.get(), options.cert->cert.get());
        SSL_CTX_use_PrivateKey(ctx.get(), options.cert->key.get());
    }
    const std::unique_ptr<SSL, OpenSslFree> ssl(SSL_new(ctx.get()));
    SSL_set_fd(ssl.get(), socket.native_handle());
    if (options.resume) SSL_set_session(ssl.get(), options.resume);
    ClientSeen seen;
    seen.connected = SSL_connect(ssl.get()) == 1;
    if (seen.connected) {
        char byte = 0;
        SSL_read(ssl.get(), &byte, 1);
        // Without a close_notify of its own, SSL_free would mark the session not resumable.
        SSL_shutdown(ssl.get());
        seen.resumed = SSL_session_reused(ssl.get()) == 1;
        seen.session.reset(SSL_get1_session(ssl.get()));
        seen.requested_cas = requested_cas(ssl.get());
    }
    ERR_clear_error();
    return seen;
}

struct ServerSeen {
    bool handshake_done = false;
    std::string error;  // why the handshake failed
    bool has_certificate = false;
    std::string subject;
    std::variant<core::Identity, std::string> identity;  // from the CN, in realm "OFFICE"
};

asio::awaitable<void> serve(asio::ip::tcp::acceptor& acceptor, const TlsServerContext& context,
                            core::ClientCertMode ask, ServerSeen& seen) {
    TlsStream stream(co_await acceptor.async_accept(asio::use_awaitable), context, ask);
    try {
        co_await stream.handshake();
        seen.handshake_done = true;
        X509* cert = stream.peer_certificate();
        seen.has_certificate = cert != nullptr;
        seen.subject = auth::certificate_subject_text(cert);
        seen.identity = auth::identity_from_certificate(cert, core::CertIdentityField::cn, "OFFICE");
        co_await stream.shutdown_send();
    } catch (const std::exception& e) {
        seen.error = e.what();
    }
    stream.close();
}

struct Exchange {
    ServerSeen server;
    ClientSeen client;
};

// One connection over loopback: the client in a thread, the gateway's side on an io_context.
Exchange connect_once(const TlsServerContext& context, core::ClientCertMode ask, const ClientOptions& options) {
    asio::io_context io;
    asio::ip::tcp::acceptor acceptor(io, {asio::ip::address_v4::loopback(), 0});
    const std::uint16_t port = acceptor.local_endpoint().port();
    Exchange exchange;
    std::thread client([&] { exchange.client = run_client(port, options); });
    asio::co_spawn(io, serve(acceptor, context, ask, exchange.server), asio::detached);
    io.run_for(std::chrono::seconds(10));
    client.join();
    return exchange;
}

void expect_anne(const ServerSeen& seen) {
    ASSERT_TRUE(seen.has_certificate);
    EXPECT_EQ(seen.subject, "CN=anne");
    ASSERT_TRUE(std::holds_alternative<core::Identity>(seen.identity)) << std::get<std::string>(seen.identity);
    const auto& who = std::get<core::Identity>(seen.identity);
    EXPECT_EQ(who.to_string(), "anne@OFFICE");
    EXPECT_EQ(who.mechanism, "certificate");
}

TEST(TlsClientCert, CertificateFromTheClientCaMapsToItsIdentity) {
    for (auto ask : {optional, required}) {
        const Exchange e = connect_once(context_with_client_ca(), ask, {.cert = &pki().anne});
        ASSERT_TRUE(e.server.handshake_done) << e.server.error;
        expect_anne(e.server);
    }
}

TEST(TlsClientCert, OptionalAcceptsAClientWithoutCertificate) {
    const Exchange e = connect_once(context_with_client_ca(), optional, {});
    ASSERT_TRUE(e.server.handshake_done) << e.server.error;
    EXPECT_FALSE(e.server.has_certificate);
    EXPECT_EQ(std::get<std::string>(e.server.identity), "the client presented no certificate");
}

TEST(TlsClientCert, RequiredFailsTheHandshakeWithoutCertificate) {
    const Exchange e = connect_once(context_with_client_ca(), required, {});
    EXPECT_FALSE(e.server.handshake_done);
    EXPECT_THAT(e.server.error, HasSubstr("peer did not return a certificate"));
}

TEST(TlsClientCert, CertificateFromAnotherCaFailsTheHandshake) {
    for (auto ask : {optional, required}) {
        const Exchange e = connect_once(context_with_client_ca(), ask, {.cert = &pki().stranger});
        EXPECT_FALSE(e.server.handshake_done);
        EXPECT_THAT(e.server.error, HasSubstr("certificate verify failed"));
    }
}

TEST(TlsClientCert, NotAskingLeavesTheCertificateOut) {
    const Exchange e = connect_once(context_with_client_ca(), none, {.cert = &pki().anne});
    ASSERT_TRUE(e.server.handshake_done) << e.server.error;
    EXPECT_FALSE(e.server.has_certificate);
    EXPECT_TRUE(e.client.requested_cas.empty());
}

TEST(TlsClientCert, CertificateRequestNamesTheClientCa) {
    const Exchange e = connect_once(context_with_client_ca(), optional, {});
    ASSERT_TRUE(e.client.connected);
    EXPECT_EQ(e.client.requested_cas, std::vector<std::string>{"/CN=vmgate test client CA"});
}

TEST(TlsClientCert, SessionWithoutCertificateIsNotResumedWhereOneIsRequired) {
    const Exchange first = connect_once(context_with_client_ca(), optional, {});
    ASSERT_TRUE(first.server.handshake_done) << first.server.error;
    ASSERT_TRUE(first.client.session);
    // The session does resume where as little is asked, so the refusal below is not an accident.
    const Exchange again = connect_once(context_with_client_ca(), optional, {.resume = first.client.session.get()});
    EXPECT_TRUE(again.client.resumed);

    const Exchange required_now = connect_once(context_with_client_ca(), required, {.resume = first.client.session.get()});
    EXPECT_FALSE(required_now.client.resumed);
    EXPECT_FALSE(required_now.server.handshake_done);
    EXPECT_THAT(required_now.server.error, HasSubstr("peer did not return a certificate"));
}

TEST(TlsClientCert, ResumedSessionKeepsTheVerifiedCertificate) {
    const Exchange first = connect_once(context_with_client_ca(), required, {.cert = &pki().anne});
    ASSERT_TRUE(first.server.handshake_done) << first.server.error;
    ASSERT_TRUE(first.client.session);
    const Exchange resumed = connect_once(context_with_client_ca(), required, {.resume = first.client.session.get()});
    ASSERT_TRUE(resumed.server.handshake_done) << resumed.server.error;
    EXPECT_TRUE(resumed.client.resumed);
    expect_anne(resumed.server);
}

TEST(TlsClientCert, AskingWithoutAClientCaIsALogicError) {
    const TlsServerContext without_ca(pki().config(false));
    EXPECT_FALSE(without_ca.has_client_ca());
    asio::io_context io;
    EXPECT_THROW(TlsStream(asio::ip::tcp::socket(io), without_ca, optional), std::logic_error);
    EXPECT_THROW(TlsStream(asio::ip::tcp::socket(io), without_ca, required), std::logic_error);
}

TEST(TlsClientCert, UnreadableClientCaNamesTheFile) {
    const TempDir dir;
    const std::string garbage = dir.path() / "garbage.pem";
    std::ofstream(garbage) << "not a certificate\n";
    for (const std::string& file : {std::string("/nonexistent/client-ca.pem"), garbage}) {
        core::TlsConfig config = pki().config(false);
        config.client_ca = file;
        try {
            TlsServerContext context(config);
            ADD_FAILURE() << "loaded " << file;
        } catch (const std::runtime_error& e) {
            EXPECT_THAT(e.what(), HasSubstr("cannot load client CA file " + file + ": ")) << e.what();
        }
    }
}

}  // namespace
}  // namespace vmgate::net
