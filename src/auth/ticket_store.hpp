// One-time tickets: how a user who authenticated elsewhere (the admin API, a web portal) opens a
// console with an unmodified SPICE client, the ticket being the SPICE password.
//
// A ticket opens exactly one SPICE session. The main channel redeems it once, before its TTL;
// after that it authorizes the session's other channels, which may connect much later
// (spice-protocol.md §12, pitfall 14), and nothing else. The store keeps only SHA-256 digests of
// SPICE secrets, so neither a memory dump nor timing of the lookup gives a usable ticket away.
//
// A VNC ticket opens one VNC connection (a VNC session is one connection). VNC authentication
// proves knowledge of the password with a DES response and never sends it (rfb-protocol.md §2),
// so checking one needs the secret itself: VNC secrets are kept as they are, 8 characters (all
// VNC auth uses), for their TTL.
// Thread-safe; time is passed in, never read.
#pragma once

#include "core/identity.hpp"

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <variant>

namespace vmgate::auth {

class TicketStore {
public:
    using Clock = std::chrono::steady_clock;

    struct Redeemed {
        std::uint64_t ticket_id;
        core::Identity who;  // mechanism "ticket"
        std::string vm;
    };
    // Redeemed, or why not, in words for the audit log ("ticket expired 12 s ago").
    using Outcome = std::variant<Redeemed, std::string>;

    enum class Protocol { spice, vnc };

    // A fresh secret of [A-Za-z0-9]: 24 characters for SPICE (within its 59-character password
    // limit), 8 for VNC (its passwords stop there).
    std::string issue(core::Identity who, std::string vm, std::chrono::seconds ttl,
                      Clock::time_point now, Protocol protocol = Protocol::spice);

    // For a main channel: the ticket must be unexpired, for this vm, and never redeemed before.
    Outcome redeem_for_main(std::string_view secret, std::string_view vm, Clock::time_point now);

    // The main channel's session id (SPICE_MSG_MAIN_INIT) is known: bind the ticket to it.
    void bind_session(std::uint64_t ticket_id, std::uint32_t spice_session_id);

    // For any other channel: accepted only for the session the ticket is bound to, even after
    // the TTL.
    Outcome check_for_channel(std::string_view secret, std::string_view vm,
                              std::uint32_t connection_id);

    // The ticket of this session opens nothing any more.
    void session_ended(std::uint32_t spice_session_id);

    // For a VNC connection: the unexpired, unused VNC ticket for `vm` whose secret `answers` (the
    // client's DES response matches it); it is used up.
    Outcome redeem_vnc(std::string_view vm, Clock::time_point now,
                       const std::function<bool(std::string_view secret)>& answers);

    // Forgets tickets that can no longer open anything.
    void expire(Clock::time_point now);

    std::size_t size() const;

private:
    using Digest = std::array<std::uint8_t, 32>;
    enum class State { issued, redeemed, bound, ended };
    struct Ticket {
        core::Identity who;
        std::string vm;
        Clock::time_point expires_at;
        State state = State::issued;
        std::uint32_t session_id = 0;  // State::bound and State::ended
        Digest digest{};               // SPICE tickets
        std::string vnc_secret;        // VNC tickets: never empty
    };

    Ticket* find(std::string_view secret, std::uint64_t& id);
    static bool forgettable(const Ticket& ticket, Clock::time_point now);

    mutable std::mutex mutex_;
    std::map<std::uint64_t, Ticket> tickets_;
    std::map<Digest, std::uint64_t> ids_by_digest_;
    // Bound tickets by session, so that a session's end costs no walk over every ticket.
    std::multimap<std::uint32_t, std::uint64_t> bound_ids_by_session_;
    std::uint64_t next_id_ = 1;
};

}  // namespace vmgate::auth
