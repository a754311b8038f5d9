#include "net/upstream.hpp"

#include <asio/connect.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace vmgate::net {

asio::awaitable<std::unique_ptr<SocketStream>> connect_upstream(asio::any_io_executor executor,
                                                                const core::UpstreamConfig& upstream) {
    asio::generic::stream_protocol::socket socket(executor);
    try {
        if (upstream.kind == core::UpstreamConfig::Kind::unix_socket) {
            co_await socket.async_connect(asio::local::stream_protocol::endpoint(upstream.path),
                                          asio::use_awaitable);
        } else {
            asio::ip::tcp::resolver resolver(executor);
            auto results = co_await resolver.async_resolve(upstream.host, std::to_string(upstream.port),
                                                           asio::use_awaitable);
            std::error_code last = asio::error::host_not_found;
            for (const auto& entry : results) {
                socket = asio::generic::stream_protocol::socket(executor);
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
        }
    } catch (const std::system_error& e) {
        throw std::system_error(e.code(), "upstream " + upstream.text);
    }
    co_return std::make_unique<SocketStream>(std::move(socket));
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
