// How many connections may be in their handshake (TLS, link, authentication) at once, in all and
// per source address, like OpenSSH's MaxStartups: a flood of unauthenticated connections must not
// take the CPU (TLS, RSA keys) and QEMU's link slots from everyone else. Thread-safe.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace vmgate::net {

class HandshakeLimiter {
public:
    // Held for the duration of one handshake; releases its place when destroyed.
    class Slot {
    public:
        Slot(HandshakeLimiter& limiter, std::string source);
        Slot(Slot&& other) noexcept;
        Slot& operator=(Slot&&) = delete;
        Slot(const Slot&) = delete;
        ~Slot();

    private:
        HandshakeLimiter* limiter_;
        std::string source_;
    };

    HandshakeLimiter(unsigned total, unsigned per_source);

    // A slot, or nullopt with `why` saying which limit was reached.
    std::optional<Slot> try_acquire(const std::string& source, std::string& why);
    unsigned in_progress() const;

private:
    void release(const std::string& source);

    const unsigned total_limit_;
    const unsigned per_source_limit_;
    mutable std::mutex mutex_;
    unsigned total_ = 0;
    std::map<std::string, unsigned> per_source_;
};

}  // namespace vmgate::net
