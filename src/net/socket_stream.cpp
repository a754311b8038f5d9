#include "net/socket_stream.hpp"

#include <asio/read.hpp>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>

namespace vmgate::net {

SocketStream::SocketStream(asio::generic::stream_protocol::socket socket) : socket_(std::move(socket)) {
    socket_.non_blocking(true);  // for try_read_some; asio's own operations work either way
}

void SocketStream::async_wait_readable(ReadableHandler handler) {
    socket_.async_wait(asio::socket_base::wait_read, std::move(handler));
}

asio::awaitable<std::size_t> SocketStream::read_some(std::span<std::uint8_t> buffer) {
    std::error_code ec;
    const std::size_t n = co_await socket_.async_read_some(
        asio::buffer(buffer.data(), buffer.size()), asio::redirect_error(asio::use_awaitable, ec));
    if (ec == asio::error::eof) co_return 0;
    if (ec) throw std::system_error(ec);
    co_return n;
}

std::optional<std::size_t> SocketStream::try_read_some(std::span<std::uint8_t> buffer) {
    std::error_code ec;
    const std::size_t n = socket_.read_some(asio::buffer(buffer.data(), buffer.size()), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) return std::nullopt;
    if (ec == asio::error::eof) return 0;
    if (ec) throw std::system_error(ec);
    return n;
}

// Writes at once while the socket takes data; the reactor only when it is full. (asio's
// async_write would pass every write through the scheduler: one more epoll_wait each.)
asio::awaitable<void> SocketStream::write_all(std::span<const std::uint8_t> data) {
    while (!data.empty()) {
        std::error_code ec;
        const std::size_t n = socket_.write_some(asio::buffer(data.data(), data.size()), ec);
        if (ec == asio::error::would_block || ec == asio::error::try_again) {
            co_await socket_.async_wait(asio::socket_base::wait_write, asio::use_awaitable);
            continue;
        }
        if (ec) throw std::system_error(ec);
        data = data.subspan(n);
    }
}

asio::awaitable<void> SocketStream::shutdown_send() {
    std::error_code ignored;  // the peer may already be gone; a half-close then has nothing to do
    socket_.shutdown(asio::socket_base::shutdown_send, ignored);
    co_return;
}

void SocketStream::close() {
    std::error_code ignored;
    socket_.close(ignored);
}

}  // namespace vmgate::net
