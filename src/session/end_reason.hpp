// Why a session ended: a short code for audit records and scripts, plus a detail in words.
#pragma once

#include <string_view>

namespace vmgate::session {

enum class EndReason {
    client_closed,     // the main channel ended, from either side
    handshake_failed,  // the main channel claimed the seat, then its upstream login failed
    taken_over,        // a newcomer took the seat (seat = takeover | same-user)
    window_closed,     // no allow rule admits the session any more (days, hours, dates)
    idle_timeout,      // no input from the client for idle_timeout
    max_session,       // the session reached max_session
    policy_reload,     // a reloaded configuration no longer admits it
    killed,            // `vmgate sessions kill`
    gateway_stopping,  // SIGTERM / SIGINT
};

constexpr std::string_view to_string(EndReason r) {
    switch (r) {
    case EndReason::client_closed: return "client-closed";
    case EndReason::handshake_failed: return "handshake-failed";
    case EndReason::taken_over: return "taken-over";
    case EndReason::window_closed: return "window-closed";
    case EndReason::idle_timeout: return "idle-timeout";
    case EndReason::max_session: return "max-session";
    case EndReason::policy_reload: return "policy-reload";
    case EndReason::killed: return "killed";
    case EndReason::gateway_stopping: return "gateway-stopping";
    }
    return "unknown";
}

}  // namespace vmgate::session
