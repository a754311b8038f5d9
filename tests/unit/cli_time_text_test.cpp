// The timestamps the CLI reads (the daemon's UTC "since", the user's local --at) and prints.
#include "cli/time_text.hpp"
#include "core/civil_time.hpp"

#include "scoped_time_zone.hpp"

#include <gtest/gtest.h>

namespace vmgate::cli {
namespace {

using namespace std::chrono;
using test_support::ScopedTimeZone;

constexpr const char* kTwoHoursEast = "EET-2";
// Central Europe with its DST rules: UTC+1 in winter, UTC+2 from March to October.
constexpr const char* kCentralEurope = "CET-1CEST,M3.5.0,M10.5.0/3";

TimePoint utc(year_month_day date, hours h, minutes m, seconds s = seconds{0}) {
    return sys_days{date} + h + m + s;
}

TEST(ParseUtcTimestamp, ReadsTheAdminSocketForm) {
    EXPECT_EQ(parse_utc_timestamp("2026-11-23T19:30:05Z"), utc(2026y / 11 / 23, 19h, 30min, 5s));
    EXPECT_EQ(parse_utc_timestamp("2028-02-29T00:00:00Z"), utc(2028y / 2 / 29, 0h, 0min));
}

TEST(ParseUtcTimestamp, RefusesAnythingElse) {
    for (const char* text : {"", "2026-11-23 19:30:05Z", "2026-11-23T19:30:05", "2026-11-23T19:30:05+01:00",
                             "2026-11-23T19:30Z", " 2026-11-23T19:30:05Z", "+026-11-23T19:30:05Z",
                             "2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z", "2026-11-31T00:00:00Z",
                             "2026-11-23T24:00:00Z", "2026-11-23T19:60:00Z", "2026-11-23T19:30:60Z"})
        EXPECT_FALSE(parse_utc_timestamp(text).has_value()) << text;
}

TEST(ParseLocalMinute, ReadsLocalTime) {
    const ScopedTimeZone zone(kTwoHoursEast);
    EXPECT_EQ(parse_local_minute("2026-11-23 10:00"), utc(2026y / 11 / 23, 8h, 0min));
    // Local midnight is still the previous day in UTC.
    EXPECT_EQ(parse_local_minute("2026-11-24 01:15"), utc(2026y / 11 / 23, 23h, 15min));
}

TEST(ParseLocalMinute, UsesTheOffsetOfThatDateNotOfToday) {
    const ScopedTimeZone zone(kCentralEurope);
    EXPECT_EQ(parse_local_minute("2026-07-01 12:00"), utc(2026y / 7 / 1, 10h, 0min));
    EXPECT_EQ(parse_local_minute("2026-01-15 12:00"), utc(2026y / 1 / 15, 11h, 0min));
}

TEST(ParseLocalMinute, GivesThePolicyTheCivilTimeTyped) {
    const ScopedTimeZone zone(kCentralEurope);
    const auto t = parse_local_minute("2026-11-23 19:30");
    ASSERT_TRUE(t.has_value());
    const core::CivilTime c = core::SystemClock{}.civil(*t);
    EXPECT_EQ(c.date, (core::Date{2026, 11, 23}));
    EXPECT_EQ(c.weekday, core::Weekday::mon);
    EXPECT_EQ(c.minute_of_day, 19 * 60 + 30);
}

TEST(ParseLocalMinute, RefusesMalformedAndImpossibleTimes) {
    for (const char* text : {"", "2026-11-23", "19:30", "2026-11-23 9:30", "2026-11-23T19:30",
                             "2026-11-23 19:30:00", "2026-11-23  19:30", "26-11-23 19:30", "2026/11/23 19:30", "2026-11-23 19:3a",
                             "2026-02-30 10:00", "2026-00-10 10:00", "2026-11-00 10:00", "2026-11-23 24:00",
                             "2026-11-23 10:60"})
        EXPECT_FALSE(parse_local_minute(text).has_value()) << text;
}

TEST(LocalTimestampText, PrintsLocalTimeToTheSecond) {
    const ScopedTimeZone zone(kTwoHoursEast);
    EXPECT_EQ(local_timestamp_text(utc(2026y / 11 / 23, 19h, 30min, 5s)), "2026-11-23 21:30:05");
    EXPECT_EQ(local_timestamp_text(utc(2026y / 12 / 31, 23h, 0min)), "2027-01-01 01:00:00");
}

}  // namespace
}  // namespace vmgate::cli
