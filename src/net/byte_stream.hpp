// One side of a relayed connection, whatever carries it: TLS over TCP toward a client, a plain
// TCP or unix socket toward QEMU. The relay and the handshakes only see this interface.
#pragma once

#include <asio/awaitable.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <system_error>

namespace vmgate::net {

class ByteStream {
public:
    virtual ~ByteStream() = default;

    // Calls `handler` (through the stream's executor, never inline) when try_read_some() may
    // make progress: data, EOF or an error; with an error code when the stream was closed. A
    // callback rather than a coroutine, so that an idle relay holds no buffer and no coroutine
    // frame: only this pending wait.
    using ReadableHandler = std::function<void(std::error_code)>;
    virtual void async_wait_readable(ReadableHandler handler) = 0;
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
