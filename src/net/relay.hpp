// The data phase: bytes both ways, unchanged, until both directions have ended.
// Each direction reads into a pooled buffer and writes it out before reading again, so a slow
// reader on one side stops reads from the other (backpressure) and memory per connection is
// bounded by one buffer per direction in flight. A direction with nothing to read waits through
// a callback, not a coroutine: an idle channel holds no buffer and no coroutine frame, only its
// two pending readiness waits (memory per idle channel is what a gateway of thousands pays).
#pragma once

#include "metrics/registry.hpp"
#include "net/byte_stream.hpp"
#include "session/traffic.hpp"

#include <asio/any_io_executor.hpp>
#include <asio/steady_timer.hpp>

#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
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
    using EndHandler = std::function<void(const std::string& reason)>;

    Relay(asio::any_io_executor executor, ByteStream& client, ByteStream& upstream,
          session::Traffic& traffic, RelayTransforms transforms = {}, RelayCounters counters = {});

    // Starts both directions and returns. `owner` (what owns this relay and its streams) is
    // kept alive by every pending operation; `on_end` runs once, on the executor, with the
    // reason, after both directions ended (or stop()) and nothing of the relay is pending.
    void start(std::weak_ptr<void> owner, EndHandler on_end);
    // Ends the relay now (from the connection's executor). The reason is what on_end gets.
    void stop(const std::string& reason);

private:
    enum class Direction { to_upstream, to_client };
    ByteStream& source(Direction direction) const;
    ByteStream& sink(Direction direction) const;
    void wait(Direction direction);
    void on_readable(Direction direction, std::error_code ec);
    // Relays what is there now; true when the source may have more later, false at its end.
    asio::awaitable<bool> drain(Direction direction);
    void on_drained(Direction direction, std::exception_ptr error, bool open);
    asio::awaitable<void> forward(Direction direction, std::span<const std::uint8_t> data);
    void finish_direction(Direction direction);
    // One pending operation completed; the relay ends when none is left.
    void operation_done();

    asio::any_io_executor executor_;
    ByteStream& client_;
    ByteStream& upstream_;
    session::Traffic& traffic_;
    RelayTransforms transforms_;
    RelayCounters counters_;
    asio::steady_timer linger_;
    std::weak_ptr<void> owner_;
    EndHandler on_end_;
    int pending_ = 0;
    int directions_done_ = 0;
    bool stopped_ = false;
    std::string reason_;
    // One per direction: both directions may be writing out transformed bytes at the same time.
    std::vector<std::uint8_t> transformed_to_client_;
    std::vector<std::uint8_t> transformed_to_upstream_;
};

}  // namespace vmgate::net
