#include "cli/time_text.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <ctime>

namespace vmgate::cli {

namespace {

// '9' stands for one digit. Both shapes put the date, hour and minute at the same offsets.
constexpr std::string_view kUtcShape = "9999-99-99T99:99:99Z";
constexpr std::string_view kLocalShape = "9999-99-99 99:99";
constexpr int kTmYearBase = 1900;
constexpr int kHoursPerDay = 24;
constexpr int kMinutesPerHour = 60;
constexpr int kSecondsPerMinute = 60;

struct Fields {
    int year = 0;
    int month = 0;
    int day = 0;
    int hour = 0;
    int minute = 0;
    int second = 0;
};

// Checking the whole shape first leaves no room for signs, blanks or short fields, which
// from_chars and sscanf would let through.
bool has_shape(std::string_view text, std::string_view shape) {
    return std::ranges::equal(text, shape, [](char t, char s) {
        return s == '9' ? std::isdigit(static_cast<unsigned char>(t)) != 0 : t == s;
    });
}

// The number at [pos, pos + len) of a text whose shape was checked.
int number_at(std::string_view text, std::size_t pos, std::size_t len) {
    int value = 0;
    for (const char c : text.substr(pos, len)) value = value * 10 + (c - '0');
    return value;
}

Fields date_and_minute(std::string_view text) {
    Fields f;
    f.year = number_at(text, 0, 4);
    f.month = number_at(text, 5, 2);
    f.day = number_at(text, 8, 2);
    f.hour = number_at(text, 11, 2);
    f.minute = number_at(text, 14, 2);
    return f;
}

std::chrono::year_month_day ymd(const Fields& f) {
    using namespace std::chrono;
    return year_month_day{year{f.year}, month{static_cast<unsigned>(f.month)}, day{static_cast<unsigned>(f.day)}};
}

// Rejects what mktime would silently roll over: February 30th, 24:00, 10:75.
bool valid(const Fields& f) {
    return ymd(f).ok() && f.hour < kHoursPerDay && f.minute < kMinutesPerHour && f.second < kSecondsPerMinute;
}

}  // namespace

std::optional<TimePoint> parse_utc_timestamp(std::string_view text) {
    if (!has_shape(text, kUtcShape)) return std::nullopt;
    Fields f = date_and_minute(text);
    f.second = number_at(text, 17, 2);
    if (!valid(f)) return std::nullopt;
    using namespace std::chrono;
    return sys_days{ymd(f)} + hours{f.hour} + minutes{f.minute} + seconds{f.second};
}

std::optional<TimePoint> parse_local_minute(std::string_view text) {
    if (!has_shape(text, kLocalShape)) return std::nullopt;
    const Fields f = date_and_minute(text);
    if (!valid(f)) return std::nullopt;
    std::tm local{};
    local.tm_year = f.year - kTmYearBase;
    local.tm_mon = f.month - 1;
    local.tm_mday = f.day;
    local.tm_hour = f.hour;
    local.tm_min = f.minute;
    local.tm_isdst = -1;  // whatever the zone says for that date, not for today
    const std::time_t t = std::mktime(&local);
    if (t == static_cast<std::time_t>(-1)) return std::nullopt;
    return std::chrono::system_clock::from_time_t(t);
}

std::string local_timestamp_text(TimePoint t) {
    const std::time_t seconds = std::chrono::system_clock::to_time_t(t);
    std::tm local{};
    localtime_r(&seconds, &local);
    return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02}", local.tm_year + kTmYearBase, local.tm_mon + 1,
                       local.tm_mday, local.tm_hour, local.tm_min, local.tm_sec);
}

}  // namespace vmgate::cli
