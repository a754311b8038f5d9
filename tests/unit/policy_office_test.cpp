// The office of design.md: Charlie uses vm1 (his boss too, in the evening); Maggie uses vm2 on
// Mondays and Tuesdays, Anne on Wednesdays and Thursdays; only Ralph uses vm3; nobody else.
// Every user x VM x weekday x hour is checked against a table written independently of the
// evaluator.
#include "policy/policy.hpp"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

namespace vmgate::policy {
namespace {

using core::Weekday;

const std::vector<std::string> kUsers{"charlie", "boss", "maggie", "anne", "ralph", "eve"};
const std::vector<std::string> kVms{"vm1", "vm2", "vm3"};
constexpr int kDays = 7;
constexpr int kHours = 24;

// The office's answer, as the people in it would state it.
bool office_allows(const std::string& user, const std::string& vm, Weekday day, int hour) {
    const bool evening = hour >= 18 && hour < 23;
    const bool mon_tue = day == Weekday::mon || day == Weekday::tue;
    const bool wed_thu = day == Weekday::wed || day == Weekday::thu;
    if (vm == "vm1") return user == "charlie" || (user == "boss" && evening);
    if (vm == "vm2") return (user == "maggie" && mon_tue) || (user == "anne" && wed_thu);
    if (vm == "vm3") return user == "ralph";
    return false;
}

// Anne reaches vm2 through a local Unix group; nobody else is in any Unix group.
class OfficeUnixGroups final : public GroupResolver {
public:
    bool user_in_unix_group(std::string_view user, std::string_view group) const override {
        return group == "leap-users" && user == "anne";
    }
};

core::DaySet days(std::initializer_list<Weekday> list) {
    core::DaySet set;
    for (Weekday d : list) set.add(d);
    return set;
}

core::VmConfig vm(std::string name, std::vector<core::AllowRule> rules) {
    core::VmConfig v;
    v.name = std::move(name);
    v.allow = std::move(rules);
    return v;
}

// Direct users and both kinds of groups: the evening rule comes first, so Charlie's evening
// access is decided by the group and his daytime access by his own rule.
core::Config office_config() {
    core::Config c;
    c.groups["accounting"] = {"charlie", "boss"};
    core::AllowRule accounting_evening;
    accounting_evening.groups = {"accounting"};
    accounting_evening.hours = core::TimeWindow{18 * 60, 23 * 60};
    core::AllowRule charlie;
    charlie.users = {"charlie"};
    core::AllowRule maggie;
    maggie.users = {"maggie"};
    maggie.days = days({Weekday::mon, Weekday::tue});
    core::AllowRule anne;
    anne.groups = {"unix:leap-users"};
    anne.days = days({Weekday::wed, Weekday::thu});
    core::AllowRule ralph;
    ralph.users = {"ralph"};
    c.vms = {vm("vm1", {accounting_evening, charlie}), vm("vm2", {maggie, anne}), vm("vm3", {ralph})};
    return c;
}

class OfficeTest : public ::testing::Test {
protected:
    const core::Config config = office_config();
    const OfficeUnixGroups unix_groups;
    const Evaluator evaluator{config, unix_groups, "office.example"};

    // Monday 2026-11-23 starts the week; minute 30 of each hour.
    Decision decide(const std::string& user, const std::string& vm_name, Weekday day, int hour) const {
        const core::CivilTime when{core::Date{2026, 11, 23 + static_cast<int>(day)}, day, hour * 60 + 30};
        return evaluator.decide(Request{core::Identity{user, "", "SCRAM-SHA-256"}, vm_name, "", when, std::nullopt});
    }
};

TEST_F(OfficeTest, EveryUserVmDayAndHour) {
    int cases = 0;
    for (const auto& user : kUsers)
        for (const auto& vm_name : kVms)
            for (int d = 0; d < kDays; ++d)
                for (int hour = 0; hour < kHours; ++hour) {
                    const auto day = static_cast<Weekday>(d);
                    const Decision got = decide(user, vm_name, day, hour);
                    EXPECT_EQ(got.allowed, office_allows(user, vm_name, day, hour))
                        << user << " " << vm_name << " " << core::to_string(day) << " " << hour
                        << ":30: " << got.reason;
                    EXPECT_EQ(got.allowed, got.rule_index.has_value()) << got.reason;
                    ++cases;
                }
    EXPECT_EQ(cases, 6 * 3 * 7 * 24);
}

TEST_F(OfficeTest, CharlieIsDecidedByTheGroupInTheEveningAndByHisOwnRuleByDay) {
    EXPECT_EQ(decide("charlie", "vm1", Weekday::tue, 19).rule_index, 0u);
    EXPECT_EQ(decide("charlie", "vm1", Weekday::tue, 9).rule_index, 1u);
    EXPECT_EQ(decide("boss", "vm1", Weekday::sun, 22).rule_index, 0u);
}

TEST_F(OfficeTest, GrantsSayWhichRule) {
    EXPECT_EQ(decide("anne", "vm2", Weekday::thu, 3).reason, "anne may use vm2 (allow[1], Wed-Thu)");
    EXPECT_EQ(decide("charlie", "vm1", Weekday::sun, 3).reason, "charlie may use vm1 (allow[1])");
    EXPECT_EQ(decide("boss", "vm1", Weekday::fri, 18).reason, "boss may use vm1 (allow[0], 18:00-23:00)");
}

TEST_F(OfficeTest, DenialsSayWhy) {
    EXPECT_EQ(decide("eve", "vm1", Weekday::mon, 12).reason, "no allow rule of vm1 names eve");
    EXPECT_EQ(decide("eve", "vm2", Weekday::wed, 12).reason, "no allow rule of vm2 names eve");
    EXPECT_EQ(decide("charlie", "vm3", Weekday::mon, 12).reason, "no allow rule of vm3 names charlie");
    EXPECT_EQ(decide("ralph", "vm1", Weekday::mon, 19).reason, "no allow rule of vm1 names ralph");
    EXPECT_EQ(decide("maggie", "vm1", Weekday::mon, 12).reason, "no allow rule of vm1 names maggie");
    EXPECT_EQ(decide("boss", "vm1", Weekday::mon, 9).reason, "boss may use vm1 18:00-23:00; it is 09:30");
    EXPECT_EQ(decide("boss", "vm1", Weekday::sat, 23).reason, "boss may use vm1 18:00-23:00; it is 23:30");
    EXPECT_EQ(decide("maggie", "vm2", Weekday::wed, 12).reason, "maggie may use vm2 on Mon-Tue; today is Wednesday");
    EXPECT_EQ(decide("anne", "vm2", Weekday::fri, 12).reason, "anne may use vm2 on Wed-Thu; today is Friday");
    EXPECT_EQ(decide("anne", "vm2", Weekday::mon, 8).reason, "anne may use vm2 on Wed-Thu; today is Monday");
}

TEST_F(OfficeTest, EveryDenialHasAReasonAndNoRule) {
    for (const auto& user : kUsers)
        for (const auto& vm_name : kVms)
            for (int d = 0; d < kDays; ++d) {
                const Decision got = decide(user, vm_name, static_cast<Weekday>(d), 4);
                if (got.allowed) continue;
                EXPECT_FALSE(got.reason.empty());
                EXPECT_NE(got.reason.find(user), std::string::npos) << got.reason;
                EXPECT_EQ(got.rule, "");
            }
}

}  // namespace
}  // namespace vmgate::policy
