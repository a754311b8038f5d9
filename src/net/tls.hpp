// TLS toward clients: OpenSSL driven directly on the non-blocking socket (SSL_set_fd), with
// asio only waiting for readiness. Records are decrypted straight into the relay's buffer,
// without the extra copy through a memory BIO that asio::ssl makes.
#pragma once

#include "core/config.hpp"
#include "net/byte_stream.hpp"

#include <asio/ip/tcp.hpp>
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
// certificate chain and key. Throws std::runtime_error with a message an admin can act on.
class TlsServerContext {
public:
    explicit TlsServerContext(const core::TlsConfig& config);
    ~TlsServerContext();
    TlsServerContext(const TlsServerContext&) = delete;
    TlsServerContext& operator=(const TlsServerContext&) = delete;

    SSL_CTX* native() const { return ctx_; }

private:
    SSL_CTX* ctx_ = nullptr;
};

// Every error queued on this thread by OpenSSL, oldest first; the queue is left empty so that a
// later failure does not report a stale reason.
std::string openssl_errors();

// "" when the key file's mode is acceptable; otherwise why it is not. A key readable by
// everyone on the host is refused: whoever reads it can impersonate the gateway.
std::string private_key_permission_problem(const std::string& path);

class TlsStream final : public ByteStream {
public:
    TlsStream(asio::ip::tcp::socket socket, const TlsServerContext& context);
    ~TlsStream() override;

    asio::awaitable<void> handshake();  // throws TlsError

    asio::awaitable<void> wait_readable() override;
    asio::awaitable<std::size_t> read_some(std::span<std::uint8_t> buffer) override;
    std::optional<std::size_t> try_read_some(std::span<std::uint8_t> buffer) override;
    asio::awaitable<void> write_all(std::span<const std::uint8_t> data) override;
    asio::awaitable<void> shutdown_send() override;
    void close() override;

    std::string server_name() const;  // SNI, "" if none
    unsigned cipher_bits() const;     // for SASL's external SSF

private:
    template <class Op>
    asio::awaitable<int> drive(Op op);
    // Appends decrypted bytes already available (buffered records, readable socket) after
    // `filled`, without waiting; stops at would-block, end of stream or a full buffer.
    std::size_t fill_available(std::span<std::uint8_t> buffer, std::size_t filled, bool& eof);

    asio::ip::tcp::socket socket_;
    SSL* ssl_ = nullptr;
};

}  // namespace vmgate::net
