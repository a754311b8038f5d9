// TLS toward clients: OpenSSL driven directly on the non-blocking socket (SSL_set_fd), with
// asio only waiting for readiness. Records are decrypted straight into the relay's buffer,
// without the extra copy through a memory BIO that asio::ssl makes.
#pragma once

#include "core/config.hpp"
#include "net/byte_stream.hpp"

#include <asio/generic/stream_protocol.hpp>
#include <openssl/ssl.h>

#include <memory>
#include <stdexcept>
#include <string>

namespace vmgate::net {

class TlsError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Server-side SSL_CTX: TLS >= 1.2, no renegotiation, no compression, the configured
// certificate chain and key, and the client CA when [tls] client_ca is set (the CAs a client
// certificate must chain to, also named to clients in the certificate request). Whether a
// connection asks for a certificate is decided per TlsStream. Throws std::runtime_error with a
// message an admin can act on.
class TlsServerContext {
public:
    explicit TlsServerContext(const core::TlsConfig& config);
    TlsServerContext(const TlsServerContext&) = delete;
    TlsServerContext& operator=(const TlsServerContext&) = delete;

    SSL_CTX* native() const { return ctx_.get(); }
    bool has_client_ca() const { return has_client_ca_; }

private:
    struct Free {
        void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
    };
    std::unique_ptr<SSL_CTX, Free> ctx_;
    bool has_client_ca_ = false;
};

// Every error queued on this thread by OpenSSL, oldest first; the queue is left empty so that a
// later failure does not report a stale reason.
std::string openssl_errors();

// "" when the key file's mode is acceptable; otherwise why it is not. A key readable by
// everyone on the host is refused: whoever reads it can impersonate the gateway.
std::string private_key_permission_problem(const std::string& path);

class TlsStream final : public ByteStream {
public:
    // `ask` says whether this connection asks the client for a certificate: none never asks;
    // optional asks, and a certificate that is presented must verify against the client CA or
    // the handshake fails; required also fails the handshake when none is presented. Asking
    // needs a context with a client CA (std::logic_error otherwise).
    // `socket`: a TCP connection (a tcp::socket converts), which may already have carried
    // plain bytes such as an HTTP CONNECT exchange.
    TlsStream(asio::generic::stream_protocol::socket socket, const TlsServerContext& context,
              core::ClientCertMode ask = core::ClientCertMode::none);
    ~TlsStream() override;

    asio::awaitable<void> handshake();  // throws TlsError

    void async_wait_readable(ReadableHandler handler) override;
    asio::awaitable<std::size_t> read_some(std::span<std::uint8_t> buffer) override;
    std::optional<std::size_t> try_read_some(std::span<std::uint8_t> buffer) override;
    asio::awaitable<void> write_all(std::span<const std::uint8_t> data) override;
    asio::awaitable<void> shutdown_send() override;
    void close() override;

    std::string server_name() const;  // SNI, "" if none
    unsigned cipher_bits() const;     // for SASL's external SSF
    // After a successful handshake: the client's certificate, verified against the client CA;
    // nullptr when none was asked for or presented. Borrowed: valid while this stream lives.
    X509* peer_certificate() const;

private:
    template <class Op>
    asio::awaitable<int> drive(Op op);
    // Appends decrypted bytes already available (buffered records, readable socket) after
    // `filled`, without waiting; stops at would-block, end of stream or a full buffer.
    std::size_t fill_available(std::span<std::uint8_t> buffer, std::size_t filled, bool& eof);

    asio::generic::stream_protocol::socket socket_;
    SSL* ssl_ = nullptr;
    core::ClientCertMode ask_;
    bool starved_ = false;  // the last read wanted bytes the socket did not have yet
};

}  // namespace vmgate::net
