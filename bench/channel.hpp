// The client side of one benchmark connection: plain or TLS, over TCP or a unix socket, with
// blocking I/O (each load pattern runs its connections on threads of its own), and the SPICE
// login a spice-gtk client performs in front of the data phase (VNC's: vnc_login.hpp).
#pragma once

#include <openssl/ssl.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace vmgate::bench {

// "unix:PATH" or "HOST:PORT" with a numeric host ("[::1]:PORT" for IPv6); resolved once, so
// the connect loops of the handshake benchmark never resolve.
class Endpoint {
public:
    static Endpoint parse(std::string_view text);  // throws std::invalid_argument

    int connect() const;  // a connected blocking socket; throws std::system_error
    const std::string& host() const { return host_; }  // "" for a unix socket

private:
    sockaddr_storage address_{};
    socklen_t length_ = 0;
    std::string host_;
};

// TLS 1.3 only, the server certificate verified against CA, no session reuse: every
// connection pays for a full handshake, as a fresh console client does.
class TlsClientContext {
public:
    explicit TlsClientContext(const std::string& ca_file);
    ~TlsClientContext();
    TlsClientContext(const TlsClientContext&) = delete;
    TlsClientContext& operator=(const TlsClientContext&) = delete;

    SSL_CTX* native() const { return ctx_; }

private:
    SSL_CTX* ctx_ = nullptr;
};

struct Target {
    Endpoint endpoint;
    const TlsClientContext* tls = nullptr;  // nullptr: plain
};

// What TLS the server agreed to; the same for every peer if the comparison is fair.
struct TlsParameters {
    std::string version;
    std::string cipher;
    std::string group;
};

class Channel {
public:
    static Channel connect(const Target& target);  // open(), then start_tls() if target.tls
    static Channel open(const Endpoint& endpoint);  // the TCP/unix connect only

    // The TLS client handshake on this connection: at once (connect) or where the protocol
    // switches to TLS (VeNCrypt, after the subtype's ack). target.tls must be set.
    void start_tls(const Target& target);

    Channel(Channel&& other) noexcept;
    Channel& operator=(Channel&& other) noexcept;
    ~Channel();

    void write_all(std::span<const std::uint8_t> data);
    void read_exact(std::span<std::uint8_t> data);
    std::size_t read_some(std::span<std::uint8_t> data);  // throws at end of stream
    TlsParameters tls_parameters() const;                  // empty fields when plain

private:
    Channel(int fd, SSL* ssl) : fd_(fd), ssl_(ssl) {}
    void release();

    int fd_ = -1;
    SSL* ssl_ = nullptr;
};

// spice-gtk's main-channel login (spice-protocol.md §2.1, §3.2, §4): link with AUTH_SELECTION
// and MINI_HEADER, u32 AUTH_SPICE + the ticket encrypted to the server's key, result 0, then
// MAIN_INIT. Returns the session id it carries. Throws std::runtime_error on any refusal.
std::uint32_t spice_main_login(Channel& channel, const std::string& ticket);

// The same login for a display channel of the session (§6.2): connection_id = session_id,
// the same ticket; no MAIN_INIT follows.
void spice_display_login(Channel& channel, const std::string& ticket, std::uint32_t session_id);

}  // namespace vmgate::bench
