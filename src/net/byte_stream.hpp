// One side of a relayed connection, whatever carries it: TLS over TCP toward a client, a plain
// TCP or unix socket toward QEMU. The relay and the handshakes only see this interface.
#pragma once

#include <asio/awaitable.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace vmgate::net {

class ByteStream {
public:
    virtual ~ByteStream() = default;

    // Completes when read_some() can make progress without blocking (data, EOF or an error).
    // Lets the relay wait without holding a buffer, so idle channels cost no buffer memory.
    virtual asio::awaitable<void> wait_readable() = 0;
    // Reads at least one byte; returns 0 on end of stream. Throws std::system_error.
    virtual asio::awaitable<std::size_t> read_some(std::span<std::uint8_t> buffer) = 0;
    // Reads what is available now without waiting: nullopt when nothing is, 0 on end of
    // stream. Lets a busy relay keep reading without a trip through the reactor per buffer.
    virtual std::optional<std::size_t> try_read_some(std::span<std::uint8_t> buffer) = 0;
    virtual asio::awaitable<void> write_all(std::span<const std::uint8_t> data) = 0;
    // Half-close: no more data will be written (TCP FIN; TLS close_notify then FIN).
    virtual asio::awaitable<void> shutdown_send() = 0;
    // Abort: cancels pending operations and closes the descriptor. Safe to call more than once.
    virtual void close() = 0;
};

}  // namespace vmgate::net
