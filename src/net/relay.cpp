#include "net/relay.hpp"

#include <asio/co_spawn.hpp>
#include <asio/use_awaitable.hpp>

#include <chrono>
#include <memory>
#include <optional>

namespace vmgate::net {
namespace {

// 256 KiB: a burst of TLS records gathered into one write, few syscalls per GiB. Only a busy
// direction holds one, so idle channels pay nothing for the size.
constexpr std::size_t relay_buffer_size = 256 * 1024;
// Buffers kept per thread for reuse; beyond that they go back to the allocator. Only busy
// channels hold one, so a few per thread cover the relays running at any moment.
constexpr std::size_t max_pooled_buffers = 4;
// After one side half-closed, how long the other may keep sending before the gateway closes.
constexpr auto half_close_linger = std::chrono::seconds(30);

using Buffer = std::unique_ptr<std::uint8_t[]>;

class BufferPool {
public:
    Buffer take() {
        if (free_.empty()) return Buffer(new std::uint8_t[relay_buffer_size]);
        Buffer b = std::move(free_.back());
        free_.pop_back();
        return b;
    }
    void give(Buffer b) {
        if (free_.size() < max_pooled_buffers) free_.push_back(std::move(b));
    }

private:
    std::vector<Buffer> free_;
};

// A connection lives on one thread, so a per-thread pool needs no locking.
thread_local BufferPool buffer_pool;

// Returns the buffer to this thread's pool however the pump leaves.
struct PooledBuffer {
    Buffer buffer = buffer_pool.take();
    ~PooledBuffer() { buffer_pool.give(std::move(buffer)); }
    std::span<std::uint8_t> span() { return {buffer.get(), relay_buffer_size}; }
};

const char* source_name(bool to_upstream) { return to_upstream ? "client" : "upstream"; }

std::string what(const std::exception_ptr& error) {
    try {
        std::rethrow_exception(error);
    } catch (const std::exception& e) {
        return e.what();
    } catch (...) {
        return "unknown error";
    }
}

}  // namespace

Relay::Relay(asio::any_io_executor executor, ByteStream& client, ByteStream& upstream,
             session::Traffic& traffic, RelayTransforms transforms, RelayCounters counters)
    : executor_(executor), client_(client), upstream_(upstream), traffic_(traffic), transforms_(transforms),
      counters_(counters), linger_(std::move(executor)) {}

void Relay::start(std::weak_ptr<void> owner, EndHandler on_end) {
    owner_ = std::move(owner);
    on_end_ = std::move(on_end);
    wait(Direction::to_upstream);
    wait(Direction::to_client);
}

void Relay::stop(const std::string& reason) {
    if (reason_.empty()) reason_ = reason;
    stopped_ = true;
    client_.close();
    upstream_.close();
    linger_.cancel();
}

ByteStream& Relay::source(Direction direction) const {
    return direction == Direction::to_upstream ? client_ : upstream_;
}

ByteStream& Relay::sink(Direction direction) const {
    return direction == Direction::to_upstream ? upstream_ : client_;
}

void Relay::wait(Direction direction) {
    ++pending_;
    source(direction).async_wait_readable([this, direction, keep = owner_.lock()](std::error_code ec) {
        on_readable(direction, ec);
    });
}

void Relay::on_readable(Direction direction, std::error_code ec) {
    if (stopped_ || ec) {
        // A wait ends with an error only when its stream was closed: by stop(), whose reason stands.
        const std::string from_name = source_name(direction == Direction::to_upstream);
        if (!stopped_) stop(from_name + " connection error: " + ec.message());
        operation_done();
        return;
    }
    // Busy: a coroutine for as long as data keeps coming; it ends when the source runs dry.
    asio::co_spawn(executor_, drain(direction),
                   [this, direction, keep = owner_.lock()](std::exception_ptr error, bool open) {
                       on_drained(direction, error, open);
                   });
}

asio::awaitable<bool> Relay::drain(Direction direction) {
    ByteStream& from = source(direction);
    PooledBuffer buffer;
    while (!stopped_) {
        const std::optional<std::size_t> n = from.try_read_some(buffer.span());
        if (!n) co_return true;
        if (*n == 0) {
            co_await sink(direction).shutdown_send();
            co_return false;
        }
        co_await forward(direction, buffer.span().first(*n));
    }
    co_return true;
}

void Relay::on_drained(Direction direction, std::exception_ptr error, bool open) {
    const bool to_upstream = direction == Direction::to_upstream;
    if (error) {
        // A closed stream makes the other direction's operations fail too; the first reason stands.
        stop(std::string(source_name(to_upstream)) + " connection error: " + what(error));
    } else if (!open) {
        finish_direction(direction);
    } else if (!stopped_) {
        wait(direction);
    }
    operation_done();
}

void Relay::finish_direction(Direction direction) {
    const std::string from_name = source_name(direction == Direction::to_upstream);
    ++directions_done_;
    if (reason_.empty()) reason_ = from_name + " closed";
    // Stopped while this direction was finishing: stop() cancelled no linger for it, so none starts.
    if (directions_done_ == 2 || stopped_) {
        linger_.cancel();
        return;
    }
    // After one side half-closed, the other gets a while to finish what it is sending.
    ++pending_;
    linger_.expires_after(half_close_linger);
    linger_.async_wait([this, from_name, keep = owner_.lock()](std::error_code ec) {
        if (!ec && !stopped_) stop(from_name + " closed; the other side did not finish in time");
        operation_done();
    });
}

void Relay::operation_done() {
    if (--pending_ > 0) return;
    // Nothing of the relay is pending: on_end may destroy it, so nothing of it is used after.
    const EndHandler on_end = std::move(on_end_);
    const std::string reason = reason_;
    on_end(reason);
}

// Traffic counts what crossed the client's connection: bytes read from it, bytes written to it.
asio::awaitable<void> Relay::forward(Direction direction, std::span<const std::uint8_t> data) {
    const bool to_upstream = direction == Direction::to_upstream;
    if (to_upstream) traffic_.add_from_client(data.size());
    if (StreamTransform* transform = to_upstream ? transforms_.to_upstream : transforms_.to_client) {
        auto& transformed = to_upstream ? transformed_to_upstream_ : transformed_to_client_;
        transformed.clear();
        transform->transform(data, transformed);
        data = transformed;
    }
    if (data.empty()) co_return;
    co_await (to_upstream ? upstream_ : client_).write_all(data);
    if (!to_upstream) traffic_.add_to_client(data.size());
    // One relaxed atomic add per write on a counter this connection resolved once: no lock.
    if (metrics::Counter* written = to_upstream ? counters_.to_vm : counters_.to_client) written->add(data.size());
}

}  // namespace vmgate::net
