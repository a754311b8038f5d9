#include "channel.hpp"

#include "bench_wire.hpp"

#include "auth/ticket_key.hpp"
#include "spice/upstream_link.hpp"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>
#include <utility>

namespace vmgate::bench {
namespace {

constexpr std::string_view unix_prefix = "unix:";
constexpr std::size_t login_read_size = 4096;

std::runtime_error openssl_failure(const std::string& what) {
    std::string text = what;
    while (const unsigned long e = ERR_get_error()) {
        char buffer[256];
        ERR_error_string_n(e, buffer, sizeof buffer);
        text += std::string(": ") + buffer;
    }
    return std::runtime_error(text);
}

std::system_error errno_failure(const std::string& what) {
    return std::system_error(errno, std::generic_category(), what);
}

}  // namespace

// ---- Endpoint --------------------------------------------------------------------------------

Endpoint Endpoint::parse(std::string_view text) {
    Endpoint endpoint;
    if (text.starts_with(unix_prefix)) {
        const std::string_view path = text.substr(unix_prefix.size());
        sockaddr_un address{};
        if (path.empty() || path.size() >= sizeof address.sun_path)
            throw std::invalid_argument("unix socket path empty or too long: " + std::string(path));
        address.sun_family = AF_UNIX;
        std::memcpy(address.sun_path, path.data(), path.size());
        std::memcpy(&endpoint.address_, &address, sizeof address);
        endpoint.length_ = sizeof address;
        return endpoint;
    }
    const auto colon = text.rfind(':');
    if (colon == text.npos) throw std::invalid_argument("expected HOST:PORT or unix:PATH, got " + std::string(text));
    std::string host(text.substr(0, colon));
    const std::string port(text.substr(colon + 1));
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    addrinfo* found = nullptr;
    if (const int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0)
        throw std::invalid_argument("bad address " + std::string(text) + ": " + ::gai_strerror(rc));
    std::memcpy(&endpoint.address_, found->ai_addr, found->ai_addrlen);
    endpoint.length_ = found->ai_addrlen;
    ::freeaddrinfo(found);
    endpoint.host_ = host;
    return endpoint;
}

int Endpoint::connect() const {
    const int fd = ::socket(address_.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw errno_failure("socket");
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&address_), length_) != 0) {
        const auto failure = errno_failure("connect");
        ::close(fd);
        throw failure;
    }
    if (address_.ss_family != AF_UNIX) {
        // An interactive protocol: small messages must leave at once, as SPICE clients set it.
        const int on = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    }
    return fd;
}

// ---- TlsClientContext ------------------------------------------------------------------------

TlsClientContext::TlsClientContext(const std::string& ca_file) : ctx_(SSL_CTX_new(TLS_client_method())) {
    if (!ctx_) throw openssl_failure("SSL_CTX_new");
    SSL_CTX_set_min_proto_version(ctx_, TLS1_3_VERSION);
    SSL_CTX_set_max_proto_version(ctx_, TLS1_3_VERSION);
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    SSL_CTX_set_session_cache_mode(ctx_, SSL_SESS_CACHE_OFF);
    // The idle benchmark holds thousands of channels in this process; they need no buffers.
    SSL_CTX_set_mode(ctx_, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_load_verify_locations(ctx_, ca_file.c_str(), nullptr) != 1) {
        auto failure = openssl_failure("cannot load CA " + ca_file);
        SSL_CTX_free(ctx_);
        throw failure;
    }
}

TlsClientContext::~TlsClientContext() { SSL_CTX_free(ctx_); }

// ---- Channel ---------------------------------------------------------------------------------

Channel Channel::connect(const Target& target) {
    Channel channel = open(target.endpoint);
    if (target.tls) channel.start_tls(target);
    return channel;
}

Channel Channel::open(const Endpoint& endpoint) { return Channel(endpoint.connect(), nullptr); }

void Channel::start_tls(const Target& target) {
    if (!target.tls) throw std::invalid_argument("TLS needs --tls and --ca");
    ssl_ = SSL_new(target.tls->native());
    if (!ssl_) throw openssl_failure("SSL_new");
    SSL_set_fd(ssl_, fd_);
    const std::string& host = target.endpoint.host();
    if (!host.empty()) X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), host.c_str());
    if (SSL_connect(ssl_) != 1) throw openssl_failure("TLS handshake with " + host);
}

Channel::Channel(Channel&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), ssl_(std::exchange(other.ssl_, nullptr)) {}

Channel& Channel::operator=(Channel&& other) noexcept {
    if (this != &other) {
        release();
        fd_ = std::exchange(other.fd_, -1);
        ssl_ = std::exchange(other.ssl_, nullptr);
    }
    return *this;
}

Channel::~Channel() { release(); }

void Channel::release() {
    if (ssl_) {
        // close_notify without waiting for the peer's, as a client that is done does.
        if (SSL_is_init_finished(ssl_)) SSL_shutdown(ssl_);
        SSL_free(ssl_);
        ssl_ = nullptr;
        // A peer already gone leaves errors that would otherwise mislead this thread's next call.
        ERR_clear_error();
    }
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

void Channel::write_all(std::span<const std::uint8_t> data) {
    while (!data.empty()) {
        std::size_t written = 0;
        if (ssl_) {
            if (SSL_write_ex(ssl_, data.data(), data.size(), &written) != 1) throw openssl_failure("TLS write");
        } else {
            const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) throw errno_failure("send");
            written = static_cast<std::size_t>(n);
        }
        data = data.subspan(written);
    }
}

std::size_t Channel::read_some(std::span<std::uint8_t> data) {
    for (;;) {
        if (ssl_) {
            std::size_t n = 0;
            if (SSL_read_ex(ssl_, data.data(), data.size(), &n) == 1) return n;
            if (SSL_get_error(ssl_, 0) == SSL_ERROR_ZERO_RETURN) throw std::runtime_error("server closed the channel");
            throw openssl_failure("TLS read");
        }
        const ssize_t n = ::recv(fd_, data.data(), data.size(), 0);
        if (n > 0) return static_cast<std::size_t>(n);
        if (n == 0) throw std::runtime_error("server closed the channel");
        if (errno != EINTR) throw errno_failure("recv");
    }
}

void Channel::read_exact(std::span<std::uint8_t> data) {
    while (!data.empty()) data = data.subspan(read_some(data));
}

TlsParameters Channel::tls_parameters() const {
    if (!ssl_) return {};
    const auto group = static_cast<int>(SSL_get_negotiated_group(ssl_));
    const char* group_name = SSL_group_to_name(ssl_, group);
    return {SSL_get_version(ssl_), SSL_get_cipher_name(ssl_), group_name ? group_name : "unknown"};
}

// ---- SPICE login -----------------------------------------------------------------------------

namespace {

spice::LinkMess link_message(spice::ChannelType type, std::uint32_t connection_id) {
    spice::LinkMess link;
    link.connection_id = connection_id;
    link.channel_type = static_cast<std::uint8_t>(type);
    link.common_caps.set(spice::CommonCap::auth_selection);
    link.common_caps.set(spice::CommonCap::mini_header);
    return link;
}

spice::UpstreamEvent next_event(Channel& channel, spice::UpstreamLink& link) {
    std::array<std::uint8_t, login_read_size> buffer;
    for (;;) {
        if (auto event = link.next_event()) return std::move(*event);
        if (link.closed()) throw std::runtime_error("SPICE link closed");
        link.feed(std::span(buffer.data(), channel.read_some(buffer)));
    }
}

template <typename Event>
Event expect(spice::UpstreamEvent event) {
    if (auto* failed = std::get_if<spice::Failed>(&event))
        throw std::runtime_error("SPICE link failed: " + failed->detail);
    return std::get<Event>(std::move(event));
}

// Link, ticket, result; returns the server bytes that followed the result.
std::vector<std::uint8_t> login(Channel& channel, const spice::LinkMess& message, const std::string& ticket) {
    spice::UpstreamLink link(message);
    channel.write_all(link.take_output());
    const auto reply = expect<spice::ReplyReceived>(next_event(channel, link)).reply;
    if (reply.error != spice::LinkError::ok)
        throw std::runtime_error("SPICE link refused: " + std::string(spice::to_string(reply.error)));
    const auto ciphertext = auth::encrypt_ticket(reply.pub_key, ticket);
    if (!ciphertext) throw std::runtime_error("cannot encrypt the ticket to the server's key");
    link.send_ticket(*ciphertext);
    channel.write_all(link.take_output());
    const auto result = expect<spice::Result>(next_event(channel, link));
    if (result.code != spice::LinkError::ok)
        throw std::runtime_error("SPICE login refused: " + std::string(spice::to_string(result.code)));
    return link.take_excess();
}

}  // namespace

std::uint32_t spice_main_login(Channel& channel, const std::string& ticket) {
    const auto excess = login(channel, link_message(spice::ChannelType::main, 0), ticket);
    // The sink says nothing more until the client speaks, so anything beyond MAIN_INIT is wrong.
    if (excess.size() > main_init_size) throw std::runtime_error("unexpected data after MAIN_INIT");
    std::array<std::uint8_t, main_init_size> init{};
    std::copy(excess.begin(), excess.end(), init.begin());
    channel.read_exact(std::span(init).subspan(excess.size()));
    const auto session_id = parse_main_init(init);
    if (!session_id) throw std::runtime_error("the first main-channel message is not MAIN_INIT");
    return *session_id;
}

void spice_display_login(Channel& channel, const std::string& ticket, std::uint32_t session_id) {
    if (!login(channel, link_message(spice::ChannelType::display, session_id), ticket).empty())
        throw std::runtime_error("unexpected data after the display channel's login");
}

}  // namespace vmgate::bench
