// The data phase: bytes both ways, unchanged, until both directions have ended.
// Each direction reads into a pooled buffer and writes it out before reading again, so a slow
// reader on one side stops reads from the other (backpressure) and memory per connection is
// bounded by one buffer per direction in flight; an idle channel holds none.
#pragma once

#include "metrics/registry.hpp"
#include "net/byte_stream.hpp"
#include "session/traffic.hpp"

#include <asio/any_io_executor.hpp>
#include <asio/steady_timer.hpp>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace vmgate::net {

// Rewrites one direction's byte stream (the SPICE main channel filter toward the client, the
// RFB message filter toward QEMU). Appends the bytes to send for `in` to `out`; may hold bytes
// back until a message is complete; throws to end the relay.
class StreamTransform {
public:
    virtual ~StreamTransform() = default;
    virtual void transform(std::span<const std::uint8_t> in, std::vector<std::uint8_t>& out) = 0;
};

// Either may be null: that direction is copied unchanged.
struct RelayTransforms {
    StreamTransform* to_client = nullptr;
    StreamTransform* to_upstream = nullptr;
};

// Where the relay adds the bytes it wrote each way (the gateway's metrics); null counts nothing.
struct RelayCounters {
    metrics::Counter* to_client = nullptr;
    metrics::Counter* to_vm = nullptr;
};

class Relay {
public:
    Relay(asio::any_io_executor executor, ByteStream& client, ByteStream& upstream,
          session::Traffic& traffic, RelayTransforms transforms = {}, RelayCounters counters = {});

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
    RelayTransforms transforms_;
    RelayCounters counters_;
    asio::steady_timer linger_;
    int directions_done_ = 0;
    std::string reason_;
    // One per direction: both pumps may be writing out transformed bytes at the same time.
    std::vector<std::uint8_t> transformed_to_client_;
    std::vector<std::uint8_t> transformed_to_upstream_;
};

}  // namespace vmgate::net
