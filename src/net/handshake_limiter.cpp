#include "net/handshake_limiter.hpp"

#include <utility>

namespace vmgate::net {

HandshakeLimiter::Slot::Slot(HandshakeLimiter& limiter, std::string source)
    : limiter_(&limiter), source_(std::move(source)) {}

HandshakeLimiter::Slot::Slot(Slot&& other) noexcept
    : limiter_(std::exchange(other.limiter_, nullptr)), source_(std::move(other.source_)) {}

HandshakeLimiter::Slot::~Slot() {
    if (limiter_) limiter_->release(source_);
}

HandshakeLimiter::HandshakeLimiter(unsigned total, unsigned per_source)
    : total_limit_(total), per_source_limit_(per_source) {}

std::optional<HandshakeLimiter::Slot> HandshakeLimiter::try_acquire(const std::string& source,
                                                                    std::string& why) {
    std::lock_guard lock(mutex_);
    if (total_ >= total_limit_) {
        why = "too many handshakes in progress (max_handshakes = " + std::to_string(total_limit_) + ")";
        return std::nullopt;
    }
    unsigned& from_source = per_source_[source];
    if (from_source >= per_source_limit_) {
        why = "too many handshakes in progress from " + source +
              " (max_handshakes_per_source = " + std::to_string(per_source_limit_) + ")";
        return std::nullopt;
    }
    ++from_source;
    ++total_;
    return Slot(*this, source);
}

unsigned HandshakeLimiter::in_progress() const {
    std::lock_guard lock(mutex_);
    return total_;
}

void HandshakeLimiter::release(const std::string& source) {
    std::lock_guard lock(mutex_);
    --total_;
    if (auto it = per_source_.find(source); it != per_source_.end() && --it->second == 0) per_source_.erase(it);
}

}  // namespace vmgate::net
