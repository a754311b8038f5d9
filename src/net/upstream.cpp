#include "net/upstream.hpp"

#include <asio/connect.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>
#include <sys/socket.h>

#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>

namespace vmgate::net {
namespace {

using GenericSocket = asio::generic::stream_protocol::socket;

constexpr int upstream_send_buffer = 1024 * 1024;  // the kernel doubles it for bookkeeping

asio::awaitable<GenericSocket> connect_unix(asio::any_io_executor executor, const std::string& path) {
    GenericSocket socket(executor);
    co_await socket.async_connect(asio::local::stream_protocol::endpoint(path), asio::use_awaitable);
    co_return socket;
}

asio::awaitable<GenericSocket> connect_tcp(asio::any_io_executor executor, const core::UpstreamConfig& upstream) {
    asio::ip::tcp::resolver resolver(executor);
    auto results = co_await resolver.async_resolve(upstream.host, std::to_string(upstream.port), asio::use_awaitable);
    std::error_code last = asio::error::host_not_found;
    GenericSocket socket(executor);
    for (const auto& entry : results) {
        socket = GenericSocket(executor);
        std::error_code ec;
        co_await socket.async_connect(entry.endpoint(), asio::redirect_error(asio::use_awaitable, ec));
        if (!ec) {
            last = {};
            break;
        }
        last = ec;
    }
    if (last) throw std::system_error(last);
    // Console input is many tiny messages: Nagle would add latency to every keystroke.
    socket.set_option(asio::ip::tcp::no_delay(true));
    co_return socket;
}

GenericSocket adopt(asio::any_io_executor executor, core::OwnedFd display_end) {
    GenericSocket socket(executor);
    socket.assign(asio::generic::stream_protocol(AF_UNIX, SOCK_STREAM), display_end.get());
    display_end.release();  // the socket owns it now
    return socket;
}

}  // namespace

asio::awaitable<std::unique_ptr<SocketStream>> connect_upstream(asio::any_io_executor executor,
                                                                const core::UpstreamConfig& upstream,
                                                                core::Protocol display, UpstreamBrokers brokers) {
    std::optional<GenericSocket> socket;
    try {
        switch (upstream.kind) {
        case core::UpstreamConfig::Kind::unix_socket: socket = co_await connect_unix(executor, upstream.path); break;
        case core::UpstreamConfig::Kind::tcp: socket = co_await connect_tcp(executor, upstream); break;
        case core::UpstreamConfig::Kind::qmp:
            socket = adopt(executor, co_await brokers.qmp.connect_display(upstream.path, display));
            break;
        case core::UpstreamConfig::Kind::libvirt:
            socket = adopt(executor, co_await brokers.libvirt.connect_display(upstream.uri, upstream.domain, display));
            break;
        }
    } catch (const std::system_error& e) {
        throw std::system_error(e.code(), "upstream " + upstream.text);
    } catch (const std::exception& e) {
        throw std::runtime_error("upstream " + upstream.text + ": " + e.what());
    }
    // A unix socket's default send buffer (208 KiB) is less than one relay buffer: a burst
    // toward QEMU would block half-way through each write. (TCP keeps its autotuning.)
    if (upstream.kind != core::UpstreamConfig::Kind::tcp) {
        std::error_code ignored;  // a smaller buffer only costs speed
        socket->set_option(asio::socket_base::send_buffer_size(upstream_send_buffer), ignored);
    }
    co_return std::make_unique<SocketStream>(std::move(*socket));
}

std::string read_upstream_password(const core::UpstreamConfig& upstream) {
    if (upstream.password_file.empty()) return "";
    std::ifstream in(upstream.password_file);
    if (!in) throw std::runtime_error("cannot read password_file " + upstream.password_file);
    std::string password;
    std::getline(in, password);  // first line; a trailing newline is not part of the password
    return password;
}

}  // namespace vmgate::net
