// The data phase: bytes both ways, unchanged, until both directions have ended.
// Each direction reads into a pooled buffer and writes it out before reading again, so a slow
// reader on one side stops reads from the other (backpressure) and memory per connection is
// bounded by one buffer per direction in flight; an idle channel holds none.
#pragma once

#include "net/byte_stream.hpp"
#include "session/traffic.hpp"

#include <asio/any_io_executor.hpp>
#include <asio/steady_timer.hpp>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace vmgate::net {

// Rewrites the upstream -> client byte stream (the SPICE main channel filter). Appends the
// bytes to send for `in` to `out`; may hold bytes back until a message is complete.
class DownstreamTransform {
public:
    virtual ~DownstreamTransform() = default;
    virtual void transform(std::span<const std::uint8_t> in, std::vector<std::uint8_t>& out) = 0;
};

class Relay {
public:
    Relay(asio::any_io_executor executor, ByteStream& client, ByteStream& upstream,
          session::Traffic& traffic, DownstreamTransform* transform);

    // Runs until both directions ended or the relay was stopped; returns why it ended.
    asio::awaitable<std::string> run();
    // Ends the relay now (from the connection's executor). The reason is what run() returns.
    void stop(const std::string& reason);

private:
    enum class Direction { to_upstream, to_client };
    asio::awaitable<void> pump(Direction direction);
    asio::awaitable<void> forward(Direction direction, std::span<const std::uint8_t> data);
    void finish_direction(const std::string& reason);

    ByteStream& client_;
    ByteStream& upstream_;
    session::Traffic& traffic_;
    DownstreamTransform* transform_;
    asio::steady_timer linger_;
    int directions_done_ = 0;
    std::string reason_;
    std::vector<std::uint8_t> transformed_;
};

}  // namespace vmgate::net
