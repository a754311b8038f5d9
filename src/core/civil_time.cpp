#include "core/civil_time.hpp"

#include <fmt/format.h>

#include <array>
#include <ctime>

namespace vmgate::core {

namespace {

constexpr std::array<std::string_view, 7> kShortNames{"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
constexpr std::array<std::string_view, 7> kLongNames{"Monday", "Tuesday",  "Wednesday", "Thursday",
                                                     "Friday", "Saturday", "Sunday"};
constexpr int kMinutesPerHour = 60;
constexpr int kTmYearBase = 1900;
constexpr int kDaysPerWeek = 7;

}  // namespace

std::string hh_mm(int minute_of_day) {
    return fmt::format("{:02}:{:02}", minute_of_day / kMinutesPerHour, minute_of_day % kMinutesPerHour);
}

std::string_view to_string(Weekday d) { return kShortNames.at(static_cast<std::size_t>(d)); }

std::string_view long_name(Weekday d) { return kLongNames.at(static_cast<std::size_t>(d)); }

std::string to_string(const Date& d) { return fmt::format("{:04}-{:02}-{:02}", d.year, d.month, d.day); }

std::string to_string(const TimeWindow& w) { return hh_mm(w.start_minute) + "-" + hh_mm(w.end_minute); }

std::chrono::system_clock::time_point SystemClock::now() const { return std::chrono::system_clock::now(); }

CivilTime SystemClock::civil(std::chrono::system_clock::time_point t) const {
    const std::time_t seconds = std::chrono::system_clock::to_time_t(t);
    std::tm local{};
    localtime_r(&seconds, &local);
    CivilTime c;
    c.date = Date{local.tm_year + kTmYearBase, local.tm_mon + 1, local.tm_mday};
    // struct tm counts weekdays from Sunday; Weekday counts from Monday.
    c.weekday = static_cast<Weekday>((local.tm_wday + kDaysPerWeek - 1) % kDaysPerWeek);
    c.minute_of_day = local.tm_hour * kMinutesPerHour + local.tm_min;
    return c;
}

}  // namespace vmgate::core
