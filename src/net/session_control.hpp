// Decisions about sessions that are already running: the once-a-second check of time windows
// and limits, the re-decision after a reload, and how a session looks to the admin socket.
#pragma once

#include "core/civil_time.hpp"
#include "net/generation.hpp"
#include "session/registry.hpp"

#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace vmgate::net {

// Why GENERATION's policy no longer admits SESSION at AT — the VM as a whole or one of the
// channels it has open — or nullopt while it still does.
std::optional<std::string> why_revoked(const Generation& generation, const session::Session& session,
                                       const core::CivilTime& at);

// Ends every session whose limit ran out (idle_timeout, max_session) or whose allow rule
// stopped matching (window-closed).
void supervise(const Generation& generation, const std::vector<std::shared_ptr<session::Session>>& sessions,
               const core::CivilTime& at, session::SteadyTime now);

// The admin socket's view of a session (`vmgate sessions --json`).
nlohmann::json describe(const session::Session& session);

}  // namespace vmgate::net
