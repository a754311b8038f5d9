// The session limits that depend on time alone: idle_timeout and max_session. Pure: the caller
// passes the moments in, so the rules are tested with an injected clock.
#pragma once

#include "session/end_reason.hpp"

#include <chrono>
#include <optional>
#include <string>

namespace vmgate::session {

using SteadyTime = std::chrono::steady_clock::time_point;

struct Limits {
    std::chrono::seconds idle_timeout{0};  // 0: none
    std::chrono::seconds max_session{0};   // 0: none
};

struct Expiry {
    EndReason reason;
    std::string detail;
};

// Why a session that started at `started` and last saw client input at `last_input` must end
// at `now`, or nullopt. View-only sessions cannot send input, so idle_timeout spares them.
std::optional<Expiry> expiry(const Limits& limits, SteadyTime started, SteadyTime last_input, bool view_only,
                             SteadyTime now);

}  // namespace vmgate::session
