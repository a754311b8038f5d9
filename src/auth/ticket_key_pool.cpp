#include "auth/ticket_key_pool.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <exception>

namespace vmgate::auth {
namespace {

constexpr int filler_nice = 10;

}  // namespace

TicketKeyPool::TicketKeyPool(std::size_t capacity)
    : capacity_(capacity), filler_([this](std::stop_token stop) { fill(stop); }) {}

std::optional<TicketKey> TicketKeyPool::try_take() {
    std::lock_guard lock(mutex_);
    if (keys_.empty()) return std::nullopt;
    TicketKey key = std::move(keys_.front());
    keys_.pop_front();
    taken_.notify_one();
    return key;
}

std::size_t TicketKeyPool::available() const {
    std::lock_guard lock(mutex_);
    return keys_.size();
}

void TicketKeyPool::fill(const std::stop_token& stop) {
    // Keys made ahead are spare-time work: relays and the keys a burst needs now come first.
    // (On Linux a thread has its own nice value; failing to lower it only costs fairness.)
    ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), filler_nice);
    for (;;) {
        {
            std::unique_lock lock(mutex_);
            if (!taken_.wait(lock, stop, [this] { return keys_.size() < capacity_; })) return;
        }
        try {
            TicketKey key = TicketKey::generate();  // outside the lock: try_take() must not wait
            std::lock_guard lock(mutex_);
            keys_.push_back(std::move(key));
        } catch (const std::exception&) {
            // OpenSSL refuses RSA-1024 (FIPS): stop filling; the caller's own attempt reports it.
            return;
        }
    }
}

}  // namespace vmgate::auth
