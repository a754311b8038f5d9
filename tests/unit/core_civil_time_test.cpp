#include "core/civil_time.hpp"

#include "scoped_time_zone.hpp"

#include <gtest/gtest.h>

#include <chrono>

namespace vmgate::core {
namespace {

TEST(CivilTime, WeekdayNames) {
    EXPECT_EQ(to_string(Weekday::mon), "mon");
    EXPECT_EQ(to_string(Weekday::thu), "thu");
    EXPECT_EQ(to_string(Weekday::sun), "sun");
    EXPECT_EQ(long_name(Weekday::mon), "Monday");
    EXPECT_EQ(long_name(Weekday::wed), "Wednesday");
    EXPECT_EQ(long_name(Weekday::sun), "Sunday");
}

TEST(CivilTime, DateIsZeroPadded) {
    EXPECT_EQ(to_string(Date{2026, 11, 23}), "2026-11-23");
    EXPECT_EQ(to_string(Date{2027, 1, 2}), "2027-01-02");
}

TEST(CivilTime, DatesOrderByYearMonthDay) {
    EXPECT_LT((Date{2026, 12, 31}), (Date{2027, 1, 1}));
    EXPECT_LT((Date{2026, 2, 28}), (Date{2026, 3, 1}));
    EXPECT_EQ((Date{2026, 3, 1}), (Date{2026, 3, 1}));
}

TEST(CivilTime, TimeWindowText) {
    EXPECT_EQ(to_string(TimeWindow{1080, 1380}), "18:00-23:00");
    EXPECT_EQ(to_string(TimeWindow{1320, 360}), "22:00-06:00");
    EXPECT_EQ(to_string(TimeWindow{5, 65}), "00:05-01:05");
    EXPECT_EQ(to_string(TimeWindow{0, 1440}), "00:00-24:00");
}

TEST(CivilTime, DaySetHoldsEachDay) {
    DaySet days;
    days.add(Weekday::mon);
    days.add(Weekday::sun);
    EXPECT_TRUE(days.contains(Weekday::mon));
    EXPECT_TRUE(days.contains(Weekday::sun));
    EXPECT_FALSE(days.contains(Weekday::tue));
    EXPECT_FALSE(days.contains(Weekday::sat));
}

using test_support::ScopedTimeZone;

// 2026-11-22 23:30:00 UTC, a Sunday.
const auto kSundayLateUtc = std::chrono::system_clock::time_point{std::chrono::seconds{1795390200}};

TEST(SystemClock, ConvertsInUtc) {
    const ScopedTimeZone utc("UTC0");
    const CivilTime c = SystemClock{}.civil(kSundayLateUtc);
    EXPECT_EQ(c.date, (Date{2026, 11, 22}));
    EXPECT_EQ(c.weekday, Weekday::sun);
    EXPECT_EQ(c.minute_of_day, 23 * 60 + 30);
}

TEST(SystemClock, ConvertsInTheLocalZone) {
    // POSIX TZ syntax: "EET-2" is two hours east of UTC, so Sunday night is Monday morning.
    const ScopedTimeZone east("EET-2");
    const CivilTime c = SystemClock{}.civil(kSundayLateUtc);
    EXPECT_EQ(c.date, (Date{2026, 11, 23}));
    EXPECT_EQ(c.weekday, Weekday::mon);
    EXPECT_EQ(c.minute_of_day, 1 * 60 + 30);
}

}  // namespace
}  // namespace vmgate::core
