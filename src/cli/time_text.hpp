// Timestamps as the CLI reads and prints them: the daemon reports UTC, people read and type
// local time (TZ), as the policy and the daemon's clock do.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace vmgate::cli {

using TimePoint = std::chrono::system_clock::time_point;

// "2026-11-23T19:30:05Z" (what the admin socket sends); nullopt when TEXT is anything else.
std::optional<TimePoint> parse_utc_timestamp(std::string_view text);

// "2026-11-23 19:30" in local time; nullopt when malformed or not a real date and time.
// A local time skipped by a DST change moves forward, as mktime moves it.
std::optional<TimePoint> parse_local_minute(std::string_view text);

// "2026-11-23 20:30:05" in local time.
std::string local_timestamp_text(TimePoint t);

}  // namespace vmgate::cli
