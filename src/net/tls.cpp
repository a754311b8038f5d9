#include "net/tls.hpp"

#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>
#include <openssl/err.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <stdexcept>
#include <string_view>
#include <system_error>

namespace vmgate::net {
std::string openssl_errors() {
    std::string out;
    while (unsigned long e = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        if (!out.empty()) out += "; ";
        out += buf;
    }
    return out.empty() ? "unknown OpenSSL error" : out;
}

namespace {

// OpenSSL's record read buffer with read-ahead: room for four full records per read(2).
constexpr std::size_t tls_read_buffer_size = 4 * (16 * 1024 + 512);

void configure_protocol(SSL_CTX* ctx) {
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    // Clients that just close are normal for consoles: treat a missing close_notify as EOF.
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_CIPHER_SERVER_PREFERENCE);
    // Idle channels then hold no record buffers (memory per idle channel matters at scale).
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE);
    // Read whole bursts of records per read(2) instead of a header read and a body read each.
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_default_read_buffer_len(ctx, tls_read_buffer_size);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
}

void load_server_certificate(SSL_CTX* ctx, const core::TlsConfig& config) {
    if (SSL_CTX_use_certificate_chain_file(ctx, config.cert.c_str()) != 1)
        throw std::runtime_error("cannot load certificate " + config.cert + ": " + openssl_errors());
    if (SSL_CTX_use_PrivateKey_file(ctx, config.key.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1)
        throw std::runtime_error("cannot load key " + config.key + " (or it does not match " + config.cert +
                                 "): " + openssl_errors());
}

// The same file gives the trust anchors and the CA names sent in the certificate request, so
// clients choosing among several certificates are steered to one that will verify.
void load_client_ca(SSL_CTX* ctx, const std::string& path) {
    if (SSL_CTX_load_verify_locations(ctx, path.c_str(), nullptr) != 1)
        throw std::runtime_error("cannot load client CA file " + path + ": " + openssl_errors());
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(path.c_str());
    if (!names) throw std::runtime_error("cannot read the CA names in client CA file " + path + ": " + openssl_errors());
    SSL_CTX_set_client_CA_list(ctx, names);
}

int verify_mode(core::ClientCertMode ask) {
    switch (ask) {
        case core::ClientCertMode::none: return SSL_VERIFY_NONE;
        case core::ClientCertMode::optional: return SSL_VERIFY_PEER;
        case core::ClientCertMode::required: return SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    }
    throw std::logic_error("unknown client certificate mode");
}

// A session resumes only on a connection that asks exactly as the one that made it did: a
// session begun without a certificate must not let a client skip a "required" request. (Without
// any session id context, OpenSSL fails the handshake of every client that tries to resume on a
// connection that verifies certificates.)
std::string_view session_id_context(core::ClientCertMode ask) {
    switch (ask) {
        case core::ClientCertMode::none: return "vmgate client-cert none";
        case core::ClientCertMode::optional: return "vmgate client-cert optional";
        case core::ClientCertMode::required: return "vmgate client-cert required";
    }
    throw std::logic_error("unknown client certificate mode");
}

SSL* new_server_ssl(const TlsServerContext& context, core::ClientCertMode ask) {
    if (ask != core::ClientCertMode::none && !context.has_client_ca())
        throw std::logic_error("a client certificate was asked for without a client CA to verify it");
    SSL* ssl = SSL_new(context.native());
    if (!ssl) throw TlsError("SSL_new: " + openssl_errors());
    const std::string_view id = session_id_context(ask);
    if (SSL_set_session_id_context(ssl, reinterpret_cast<const unsigned char*>(id.data()),
                                   static_cast<unsigned>(id.size())) != 1) {
        SSL_free(ssl);
        throw TlsError("SSL_set_session_id_context: " + openssl_errors());
    }
    SSL_set_verify(ssl, verify_mode(ask), nullptr);
    return ssl;
}

}  // namespace

std::string private_key_permission_problem(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0)
        return "cannot stat " + path + ": " + std::generic_category().message(errno);
    char mode[8];
    std::snprintf(mode, sizeof mode, "%03o", static_cast<unsigned>(st.st_mode & 0777));
    if (st.st_mode & S_IROTH)
        return path + " is readable by every user (mode " + mode + "); run: chmod o-rwx " + path;
    if (st.st_mode & S_IWOTH) return path + " is writable by every user; run: chmod o-rwx " + path;
    return "";
}

TlsServerContext::TlsServerContext(const core::TlsConfig& config) {
    if (config.cert.empty() || config.key.empty())
        throw std::runtime_error("[tls] cert and key are required for TLS listeners");
    if (auto problem = private_key_permission_problem(config.key); !problem.empty())
        throw std::runtime_error("refusing to use the TLS key: " + problem);
    ctx_.reset(SSL_CTX_new(TLS_server_method()));
    if (!ctx_) throw std::runtime_error("SSL_CTX_new: " + openssl_errors());
    configure_protocol(ctx_.get());
    load_server_certificate(ctx_.get(), config);
    if (!config.client_ca.empty()) {
        load_client_ca(ctx_.get(), config.client_ca);
        has_client_ca_ = true;
    }
}

TlsStream::TlsStream(asio::generic::stream_protocol::socket socket, const TlsServerContext& context, core::ClientCertMode ask)
    : socket_(std::move(socket)), ssl_(new_server_ssl(context, ask)), ask_(ask) {
    socket_.non_blocking(true);
    SSL_set_fd(ssl_, static_cast<int>(socket_.native_handle()));
    SSL_set_accept_state(ssl_);
}

TlsStream::~TlsStream() { SSL_free(ssl_); }

// Runs an SSL_* call until it completes, waiting for socket readiness whenever OpenSSL asks.
// Returns the call's positive result, or 0 when the peer ended the stream.
template <class Op>
asio::awaitable<int> TlsStream::drive(Op op) {
    for (;;) {
        // OpenSSL holds the raw descriptor number: once close() released it, the number may
        // already belong to another client's socket, so no SSL call may run any more.
        if (!socket_.is_open()) throw std::system_error(asio::error::operation_aborted);
        ERR_clear_error();
        errno = 0;
        const int r = op();
        if (r > 0) co_return r;
        switch (SSL_get_error(ssl_, r)) {
            case SSL_ERROR_WANT_READ:
                co_await socket_.async_wait(asio::socket_base::wait_read, asio::use_awaitable);
                break;
            case SSL_ERROR_WANT_WRITE:
                co_await socket_.async_wait(asio::socket_base::wait_write, asio::use_awaitable);
                break;
            case SSL_ERROR_ZERO_RETURN:
                co_return 0;
            case SSL_ERROR_SYSCALL:
                if (errno == 0 || errno == ECONNRESET || errno == EPIPE) co_return 0;
                throw std::system_error(errno, std::generic_category(), "TLS socket");
            default:
                throw TlsError(openssl_errors());
        }
    }
}

asio::awaitable<void> TlsStream::handshake() {
    if (co_await drive([this] { return SSL_do_handshake(ssl_); }) == 0)
        throw TlsError("client closed during the TLS handshake");
}

void TlsStream::async_wait_readable(ReadableHandler handler) {
    // Records already buffered need no socket readiness; a partial one (the last read starved)
    // does, or the relay would spin on it.
    if (!socket_.is_open() || (!starved_ && SSL_has_pending(ssl_))) {
        const std::error_code ec = socket_.is_open() ? std::error_code() : asio::error::operation_aborted;
        asio::post(socket_.get_executor(), [handler = std::move(handler), ec] { handler(ec); });
        return;
    }
    // A read that found nothing leaves OpenSSL's record buffer allocated; an idle channel
    // should not keep tens of KiB for data that may not come for hours.
    SSL_free_buffers(ssl_);
    socket_.async_wait(asio::socket_base::wait_read, std::move(handler));
}

asio::awaitable<std::size_t> TlsStream::read_some(std::span<std::uint8_t> buffer) {
    std::size_t n = 0;
    const int r = co_await drive([&] { return SSL_read_ex(ssl_, buffer.data(), buffer.size(), &n); });
    if (r == 0) co_return 0;
    bool eof = false;  // reported by the next read
    co_return fill_available(buffer, n, eof);
}

std::optional<std::size_t> TlsStream::try_read_some(std::span<std::uint8_t> buffer) {
    if (!socket_.is_open()) throw std::system_error(asio::error::operation_aborted);
    bool eof = false;
    const std::size_t n = fill_available(buffer, 0, eof);
    if (n > 0) return n;
    if (eof) return 0;
    return std::nullopt;
}

// SSL_read returns one record (16 KiB at most) per call; gathering several into the relay's
// buffer means one write per buffer instead of one per record.
std::size_t TlsStream::fill_available(std::span<std::uint8_t> buffer, std::size_t filled, bool& eof) {
    starved_ = false;
    while (filled < buffer.size()) {
        ERR_clear_error();
        errno = 0;
        std::size_t n = 0;
        if (SSL_read_ex(ssl_, buffer.data() + filled, buffer.size() - filled, &n) == 1) {
            filled += n;
            continue;
        }
        const int error = SSL_get_error(ssl_, 0);
        if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
            starved_ = error == SSL_ERROR_WANT_READ;
            break;
        }
        if (error == SSL_ERROR_ZERO_RETURN ||
            (error == SSL_ERROR_SYSCALL && (errno == 0 || errno == ECONNRESET || errno == EPIPE))) {
            eof = true;
            break;
        }
        if (filled > 0) break;  // deliver what arrived; the error recurs on the next read
        if (error == SSL_ERROR_SYSCALL) throw std::system_error(errno, std::generic_category(), "TLS socket");
        throw TlsError(openssl_errors());
    }
    return filled;
}

asio::awaitable<void> TlsStream::write_all(std::span<const std::uint8_t> data) {
    while (!data.empty()) {
        std::size_t n = 0;
        const int r =
            co_await drive([&] { return SSL_write_ex(ssl_, data.data(), data.size(), &n); });
        if (r == 0) throw std::system_error(std::make_error_code(std::errc::broken_pipe));
        data = data.subspan(n);
    }
}

asio::awaitable<void> TlsStream::shutdown_send() {
    // One SSL_shutdown sends close_notify; the peer's own close_notify arrives through reads.
    if (!socket_.is_open()) co_return;
    try {
        co_await drive([this] { return SSL_shutdown(ssl_) >= 0 ? 1 : -1; });
    } catch (const std::exception&) {
        // The peer is gone already; there is nobody left to tell.
    }
    std::error_code ignored;
    socket_.shutdown(asio::socket_base::shutdown_send, ignored);
}

void TlsStream::close() {
    std::error_code ignored;
    socket_.close(ignored);
}

std::string TlsStream::server_name() const {
    const char* name = SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name);
    return name ? name : "";
}

unsigned TlsStream::cipher_bits() const {
    return static_cast<unsigned>(SSL_get_cipher_bits(ssl_, nullptr));
}

X509* TlsStream::peer_certificate() const {
    if (ask_ == core::ClientCertMode::none || !SSL_is_init_finished(ssl_)) return nullptr;
    X509* cert = SSL_get0_peer_certificate(ssl_);
    // A certificate that fails verification ends the handshake; this guards the invariant.
    return cert && SSL_get_verify_result(ssl_) == X509_V_OK ? cert : nullptr;
}

}  // namespace vmgate::net
