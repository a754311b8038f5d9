// ByteStream over a plain stream socket (TCP toward a client or QEMU, unix socket toward QEMU).
#pragma once

#include "net/byte_stream.hpp"

#include <asio/generic/stream_protocol.hpp>

namespace vmgate::net {

class SocketStream final : public ByteStream {
public:
    explicit SocketStream(asio::generic::stream_protocol::socket socket);

    void async_wait_readable(ReadableHandler handler) override;
    asio::awaitable<std::size_t> read_some(std::span<std::uint8_t> buffer) override;
    std::optional<std::size_t> try_read_some(std::span<std::uint8_t> buffer) override;
    asio::awaitable<void> write_all(std::span<const std::uint8_t> data) override;
    asio::awaitable<void> shutdown_send() override;
    void close() override;

    asio::generic::stream_protocol::socket& socket() { return socket_; }

private:
    asio::generic::stream_protocol::socket socket_;
};

}  // namespace vmgate::net
