#include "session/expiry.hpp"

#include "core/config.hpp"

namespace vmgate::session {

std::optional<Expiry> expiry(const Limits& limits, SteadyTime started, SteadyTime last_input, bool view_only,
                             SteadyTime now) {
    if (limits.max_session.count() > 0 && now - started >= limits.max_session)
        return Expiry{EndReason::max_session, "the session reached max_session = " + core::format_duration(limits.max_session)};
    if (limits.idle_timeout.count() > 0 && !view_only && now - last_input >= limits.idle_timeout)
        return Expiry{EndReason::idle_timeout,
                      "no input from the client for idle_timeout = " + core::format_duration(limits.idle_timeout)};
    return std::nullopt;
}

}  // namespace vmgate::session
