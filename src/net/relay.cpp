#include "net/relay.hpp"

#include <asio/experimental/awaitable_operators.hpp>
#include <asio/redirect_error.hpp>
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


}  // namespace

Relay::Relay(asio::any_io_executor executor, ByteStream& client, ByteStream& upstream,
             session::Traffic& traffic, RelayTransforms transforms, RelayCounters counters)
    : client_(client), upstream_(upstream), traffic_(traffic), transforms_(transforms), counters_(counters),
      linger_(std::move(executor)) {}

asio::awaitable<std::string> Relay::run() {
    using namespace asio::experimental::awaitable_operators;
    co_await (pump(Direction::to_upstream) && pump(Direction::to_client));
    co_return reason_;
}

void Relay::stop(const std::string& reason) {
    if (reason_.empty()) reason_ = reason;
    client_.close();
    upstream_.close();
    linger_.cancel();
}

asio::awaitable<void> Relay::pump(Direction direction) {
    ByteStream& from = direction == Direction::to_upstream ? client_ : upstream_;
    ByteStream& to = direction == Direction::to_upstream ? upstream_ : client_;
    const char* from_name = direction == Direction::to_upstream ? "client" : "upstream";
    try {
        for (bool open = true; open;) {
            co_await from.wait_readable();
            PooledBuffer buffer;
            std::optional<std::size_t> n = co_await from.read_some(buffer.span());
            // While data keeps coming, read again at once; back to the reactor (and the
            // buffer back to the pool) only when the source has nothing more right now.
            while (n) {
                if (*n == 0) {
                    open = false;
                    break;
                }
                co_await forward(direction, buffer.span().first(*n));
                n = from.try_read_some(buffer.span());
            }
        }
    } catch (const std::exception& e) {
        // A closed stream makes the other pump's operations fail too; the first reason stands.
        stop(std::string(from_name) + " connection error: " + e.what());
        co_return;
    }
    co_await to.shutdown_send();
    finish_direction(std::string(from_name) + " closed");
    if (directions_done_ == 2) co_return;
    std::error_code ec;
    linger_.expires_after(half_close_linger);
    co_await linger_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (!ec) stop(std::string(from_name) + " closed; the other side did not finish in time");
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

void Relay::finish_direction(const std::string& reason) {
    ++directions_done_;
    if (reason_.empty()) reason_ = reason;
    if (directions_done_ == 2) linger_.cancel();
}

}  // namespace vmgate::net
