#include "auth/ticket_store.hpp"

#include "auth/random_text.hpp"

#include <openssl/evp.h>

#include <stdexcept>

namespace vmgate::auth {

namespace {

constexpr std::size_t kSecretLength = 24;     // 24 × log2(62) ≈ 143 bits
constexpr std::size_t kVncSecretLength = 8;   // ≈ 48 bits, one guess per connection, one use
constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

// A main channel that redeemed a ticket learns its session id within its handshake deadline; one
// that has not bound by then is gone, and its ticket with it.
constexpr std::chrono::minutes kBindGrace{1};

std::array<std::uint8_t, 32> digest_of(std::string_view secret) {
    std::array<std::uint8_t, 32> digest{};
    if (EVP_Digest(secret.data(), secret.size(), digest.data(), nullptr, EVP_sha256(), nullptr) !=
        1)
        throw std::runtime_error("OpenSSL SHA-256 failed");
    return digest;
}

std::string wrong_vm(const std::string& ticket_vm, std::string_view vm) {
    return "ticket is for " + ticket_vm + ", not " + std::string(vm);
}

std::string expired_reason(TicketStore::Clock::time_point expires_at,
                           TicketStore::Clock::time_point now) {
    const auto ago = std::chrono::duration_cast<std::chrono::seconds>(now - expires_at);
    return "ticket expired " + std::to_string(ago.count()) + " s ago";
}

}  // namespace

std::string TicketStore::issue(core::Identity who, std::string vm, std::chrono::seconds ttl,
                               Clock::time_point now, Protocol protocol) {
    who.mechanism = "ticket";
    expire(now);  // issuing is the one regular event here: drop what can open nothing any more
    const bool vnc = protocol == Protocol::vnc;
    std::string secret = random_text(kAlphabet, vnc ? kVncSecretLength : kSecretLength);
    Ticket ticket;
    ticket.who = std::move(who);
    ticket.vm = std::move(vm);
    ticket.expires_at = now + ttl;
    if (vnc) ticket.vnc_secret = secret; else ticket.digest = digest_of(secret);
    std::lock_guard lock(mutex_);
    const std::uint64_t id = next_id_++;
    if (!vnc) ids_by_digest_.emplace(ticket.digest, id);
    tickets_.emplace(id, std::move(ticket));
    return secret;
}

TicketStore::Outcome TicketStore::redeem_for_main(std::string_view secret, std::string_view vm,
                                                  Clock::time_point now) {
    std::lock_guard lock(mutex_);
    std::uint64_t id = 0;
    Ticket* ticket = find(secret, id);
    if (ticket == nullptr) return "unknown ticket";
    if (ticket->vm != vm) return wrong_vm(ticket->vm, vm);
    if (ticket->state != State::issued) return "ticket already used";
    if (now >= ticket->expires_at) return expired_reason(ticket->expires_at, now);
    ticket->state = State::redeemed;
    return Redeemed{id, ticket->who, ticket->vm};
}

void TicketStore::bind_session(std::uint64_t ticket_id, std::uint32_t spice_session_id) {
    std::lock_guard lock(mutex_);
    const auto found = tickets_.find(ticket_id);
    if (found == tickets_.end() || found->second.state != State::redeemed) return;
    found->second.state = State::bound;
    found->second.session_id = spice_session_id;
    bound_ids_by_session_.emplace(spice_session_id, ticket_id);
}

TicketStore::Outcome TicketStore::check_for_channel(std::string_view secret, std::string_view vm,
                                                    std::uint32_t connection_id) {
    std::lock_guard lock(mutex_);
    std::uint64_t id = 0;
    const Ticket* ticket = find(secret, id);
    if (ticket == nullptr) return "unknown ticket";
    if (ticket->vm != vm) return wrong_vm(ticket->vm, vm);
    switch (ticket->state) {
        case State::issued:
        case State::redeemed: return "ticket has no SPICE session yet";
        case State::ended: return "the session of this ticket has ended";
        case State::bound: break;
    }
    if (ticket->session_id != connection_id) return "ticket already used by another session";
    return Redeemed{id, ticket->who, ticket->vm};
}

void TicketStore::session_ended(std::uint32_t spice_session_id) {
    std::lock_guard lock(mutex_);
    const auto [first, last] = bound_ids_by_session_.equal_range(spice_session_id);
    for (auto it = first; it != last; ++it) tickets_.at(it->second).state = State::ended;
    bound_ids_by_session_.erase(first, last);
}

// Every VNC ticket is tried: which one the client answered with is unknown until one matches.
// A match that cannot be used (another VM, used, expired) is reported as such.
TicketStore::Outcome TicketStore::redeem_vnc(std::string_view vm, Clock::time_point now,
                                             const std::function<bool(std::string_view)>& answers) {
    std::lock_guard lock(mutex_);
    for (auto& [id, ticket] : tickets_) {
        if (ticket.vnc_secret.empty() || !answers(ticket.vnc_secret)) continue;
        if (ticket.vm != vm) return wrong_vm(ticket.vm, vm);
        if (ticket.state != State::issued) return "ticket already used";
        if (now >= ticket.expires_at) return expired_reason(ticket.expires_at, now);
        ticket.state = State::ended;
        return Redeemed{id, ticket.who, ticket.vm};
    }
    return "no VNC ticket matches the response (wrong or unknown ticket)";
}

void TicketStore::expire(Clock::time_point now) {
    std::lock_guard lock(mutex_);
    for (auto it = tickets_.begin(); it != tickets_.end();) {
        if (!forgettable(it->second, now)) {
            ++it;
            continue;
        }
        if (it->second.vnc_secret.empty()) ids_by_digest_.erase(it->second.digest);
        it = tickets_.erase(it);
    }
}

std::size_t TicketStore::size() const {
    std::lock_guard lock(mutex_);
    return tickets_.size();
}

TicketStore::Ticket* TicketStore::find(std::string_view secret, std::uint64_t& id) {
    const auto found = ids_by_digest_.find(digest_of(secret));
    if (found == ids_by_digest_.end()) return nullptr;
    id = found->second;
    return &tickets_.at(id);
}

// Ended tickets are kept until their TTL so that a replay is reported as such, not as unknown.
bool TicketStore::forgettable(const Ticket& ticket, Clock::time_point now) {
    switch (ticket.state) {
        case State::issued:
        case State::ended: return now >= ticket.expires_at;
        case State::redeemed: return now >= ticket.expires_at + kBindGrace;
        case State::bound: return false;
    }
    return false;
}

}  // namespace vmgate::auth
