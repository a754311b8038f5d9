// Pre-generated ticket keys. SPICE wants a fresh RSA-1024 key per connection, and generating one
// costs milliseconds of CPU: too slow for the accept path under a burst of channel connects (a
// SPICE session opens several channels at once). A background thread at a lower priority keeps
// a stock ready ([gateway] ticket_key_stock).
#pragma once

#include "auth/ticket_key.hpp"

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>
#include <stop_token>
#include <thread>

namespace vmgate::auth {

class TicketKeyPool {
public:
    // Starts the thread that fills the pool up to capacity keys (none for 0).
    explicit TicketKeyPool(std::size_t capacity);

    TicketKeyPool(const TicketKeyPool&) = delete;
    TicketKeyPool& operator=(const TicketKeyPool&) = delete;

    // Hands a key out for good: the pool keeps no copy, so no key ever serves two connections.
    // nullopt when the stock is empty: the caller then makes one where the milliseconds it
    // costs hold up nobody else. Thread-safe.
    std::optional<TicketKey> try_take();

    // Keys ready now (for metrics and tests).
    std::size_t available() const;

private:
    void fill(const std::stop_token& stop);

    const std::size_t capacity_;
    mutable std::mutex mutex_;
    std::condition_variable_any taken_;
    std::deque<TicketKey> keys_;
    std::jthread filler_;  // last: it starts after, and is joined before, the members it uses
};

}  // namespace vmgate::auth
