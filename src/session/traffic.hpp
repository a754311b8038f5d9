// Bytes one channel moved. Written only by the connection's own thread; read from others (the
// admin socket's session list, the supervisor's input watch), hence atomics. A single writer
// needs no read-modify-write: a relaxed load and store keep the hot path free of locked ops.
#pragma once

#include <atomic>
#include <cstdint>

namespace vmgate::session {

class Traffic {
public:
    void add_from_client(std::uint64_t n) { bump(from_client_, n); }
    void add_to_client(std::uint64_t n) { bump(to_client_, n); }
    // A person acted (a VNC key or pointer event): for channels whose bytes are not all input.
    void add_input() { bump(inputs_, 1); }
    std::uint64_t from_client() const { return from_client_.load(std::memory_order_relaxed); }
    std::uint64_t to_client() const { return to_client_.load(std::memory_order_relaxed); }
    std::uint64_t inputs() const { return inputs_.load(std::memory_order_relaxed); }

private:
    static void bump(std::atomic<std::uint64_t>& counter, std::uint64_t n) {
        counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }

    std::atomic<std::uint64_t> from_client_{0};  // bytes read from the client
    std::atomic<std::uint64_t> to_client_{0};    // bytes written to the client
    std::atomic<std::uint64_t> inputs_{0};       // input messages seen, where counted
};

}  // namespace vmgate::session
