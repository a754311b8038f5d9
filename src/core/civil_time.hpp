// Calendar time as the policy sees it: local date, weekday and minute of day. The policy never
// reads a clock; callers convert a time point with a Clock and pass the result in.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace vmgate::core {

enum class Weekday : std::uint8_t { mon = 0, tue, wed, thu, fri, sat, sun };

// A set of weekdays, bit n = Weekday(n).
struct DaySet {
    std::uint8_t bits = 0;
    bool contains(Weekday d) const { return (bits >> static_cast<unsigned>(d)) & 1u; }
    void add(Weekday d) { bits = static_cast<std::uint8_t>(bits | (1u << static_cast<unsigned>(d))); }
    bool operator==(const DaySet&) const = default;
};

struct Date {
    int year = 1970;
    int month = 1;  // 1..12
    int day = 1;    // 1..31
    auto operator<=>(const Date&) const = default;
};

// [start, end) in minutes since midnight; end <= start means the window wraps past midnight.
// "18:00-23:00" -> {1080, 1380}; "22:00-06:00" -> {1320, 360}.
struct TimeWindow {
    int start_minute = 0;
    int end_minute = 0;
    bool operator==(const TimeWindow&) const = default;
};

struct CivilTime {
    Date date;
    Weekday weekday = Weekday::mon;
    int minute_of_day = 0;  // 0..1439
};

std::string_view to_string(Weekday d);     // "mon"
std::string_view long_name(Weekday d);     // "Monday"
std::string to_string(const Date& d);      // "2026-11-23"
std::string to_string(const TimeWindow&);  // "18:00-23:00"
std::string hh_mm(int minute_of_day);      // "09:05"

// The clock the daemon uses; tests use a fixed one.
class Clock {
public:
    virtual ~Clock() = default;
    virtual std::chrono::system_clock::time_point now() const = 0;
    virtual CivilTime civil(std::chrono::system_clock::time_point t) const = 0;
    CivilTime civil_now() const { return civil(now()); }
};

// Wall clock in the process's local time zone (TZ).
class SystemClock final : public Clock {
public:
    std::chrono::system_clock::time_point now() const override;
    CivilTime civil(std::chrono::system_clock::time_point t) const override;
};

}  // namespace vmgate::core
