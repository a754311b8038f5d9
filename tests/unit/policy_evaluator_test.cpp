#include "policy/policy.hpp"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

namespace vmgate::policy {
namespace {

using core::AllowRule;
using core::Date;
using core::Weekday;

constexpr std::string_view kRealm = "example.com";

// Unix groups as a table; also counts lookups to show when the evaluator must not ask.
class FakeGroups final : public GroupResolver {
public:
    std::map<std::string, std::set<std::string>, std::less<>> members;
    mutable int lookups = 0;

    bool user_in_unix_group(std::string_view user, std::string_view group) const override {
        ++lookups;
        const auto found = members.find(group);
        return found != members.end() && found->second.contains(std::string(user));
    }
};

core::DaySet days(std::initializer_list<Weekday> list) {
    core::DaySet set;
    for (Weekday d : list) set.add(d);
    return set;
}

core::TimeWindow hours(int start_hour, int end_hour) { return {start_hour * 60, end_hour * 60}; }

AllowRule user_rule(std::string user) {
    AllowRule rule;
    rule.users = {std::move(user)};
    return rule;
}

AllowRule group_rule(std::string group) {
    AllowRule rule;
    rule.groups = {std::move(group)};
    return rule;
}

std::vector<core::Cidr> cidrs(std::initializer_list<std::string_view> texts) {
    std::vector<core::Cidr> out;
    for (auto t : texts) out.push_back(*core::Cidr::parse(t));
    return out;
}

// Monday 2026-11-23 starts the week the tests live in; `day` picks a date in it.
core::CivilTime at(Weekday day, int hour, int minute = 0) {
    const int offset = static_cast<int>(day);
    return {Date{2026, 11, 23 + offset}, day, hour * 60 + minute};
}

core::CivilTime at_date(Date date, Weekday day, int hour, int minute = 0) { return {date, day, hour * 60 + minute}; }

class EvaluatorTest : public ::testing::Test {
protected:
    core::Config config;
    FakeGroups unix_groups;

    core::VmConfig& add_vm(std::string name, std::vector<AllowRule> rules) {
        core::VmConfig vm;
        vm.name = std::move(name);
        vm.allow = std::move(rules);
        config.vms.push_back(std::move(vm));
        return config.vms.back();
    }

    Decision decide(core::Identity who, std::string vm, core::CivilTime when, std::string channel = "",
                    std::optional<core::IpAddress> source = std::nullopt) const {
        const Evaluator evaluator(config, unix_groups, std::string(kRealm));
        return evaluator.decide(Request{std::move(who), std::move(vm), std::move(channel), when, source});
    }

    Decision decide_from(core::Identity who, std::string vm, std::string_view source) const {
        return decide(std::move(who), std::move(vm), at(Weekday::mon, 12), "", core::IpAddress::parse(source));
    }
};

core::Identity user(std::string name, std::string realm = "") { return {std::move(name), std::move(realm), "PLAIN"}; }

// ---- basics ----

TEST_F(EvaluatorTest, UnknownVm) {
    add_vm("vm1", {user_rule("anne")});
    const Decision d = decide(user("anne"), "vm9", at(Weekday::mon, 12));
    EXPECT_FALSE(d.allowed);
    EXPECT_EQ(d.reason, "no VM named vm9");
    EXPECT_EQ(d.rule, "");
    EXPECT_FALSE(d.rule_index);
}

TEST_F(EvaluatorTest, VmWithoutRulesIsReachableByNobody) {
    add_vm("vm1", {});
    const Decision d = decide(user("root"), "vm1", at(Weekday::mon, 12));
    EXPECT_FALSE(d.allowed);
    EXPECT_EQ(d.reason, "no allow rule of vm1 names root");
}

TEST_F(EvaluatorTest, RuleNamingNobodyMatchesNobody) {
    AllowRule anyone_in_the_evening;
    anyone_in_the_evening.hours = hours(18, 23);
    add_vm("vm1", {anyone_in_the_evening});
    EXPECT_FALSE(decide(user("anne"), "vm1", at(Weekday::mon, 19)).allowed);
}

TEST_F(EvaluatorTest, UnrestrictedRuleAllowsAtAnyTime) {
    add_vm("vm1", {user_rule("anne")});
    for (int h = 0; h < 24; ++h) EXPECT_TRUE(decide(user("anne"), "vm1", at(Weekday::sun, h, 59)).allowed) << h;
}

// ---- who: realms and groups ----

TEST_F(EvaluatorTest, BareUserMatchesNoRealmOrTheDefaultRealm) {
    add_vm("vm1", {user_rule("anne")});
    EXPECT_TRUE(decide(user("anne"), "vm1", at(Weekday::mon, 12)).allowed);
    EXPECT_TRUE(decide(user("anne", "example.com"), "vm1", at(Weekday::mon, 12)).allowed);
    EXPECT_TRUE(decide(user("anne", "EXAMPLE.COM"), "vm1", at(Weekday::mon, 12)).allowed);
    EXPECT_FALSE(decide(user("anne", "evil.org"), "vm1", at(Weekday::mon, 12)).allowed);
    EXPECT_FALSE(decide(user("Anne"), "vm1", at(Weekday::mon, 12)).allowed);
    EXPECT_FALSE(decide(user("ann"), "vm1", at(Weekday::mon, 12)).allowed);
}

TEST_F(EvaluatorTest, UserWithRealmMatchesExactlyThatRealm) {
    add_vm("vm1", {user_rule("bob@Partner.org")});
    EXPECT_TRUE(decide(user("bob", "partner.org"), "vm1", at(Weekday::mon, 12)).allowed);
    EXPECT_FALSE(decide(user("bob"), "vm1", at(Weekday::mon, 12)).allowed);
    EXPECT_FALSE(decide(user("bob", "example.com"), "vm1", at(Weekday::mon, 12)).allowed);
    EXPECT_FALSE(decide(user("bob", "partner.org.evil"), "vm1", at(Weekday::mon, 12)).allowed);
}

TEST_F(EvaluatorTest, RealmIsSplitAtTheLastAt) {
    add_vm("vm1", {user_rule("bob@home@partner.org")});
    EXPECT_TRUE(decide(user("bob@home", "partner.org"), "vm1", at(Weekday::mon, 12)).allowed);
    EXPECT_FALSE(decide(user("bob", "home@partner.org"), "vm1", at(Weekday::mon, 12)).allowed);
}

TEST_F(EvaluatorTest, ConfigGroupsHoldUsersWithTheSameRealmRules) {
    config.groups["team"] = {"anne", "bob@partner.org"};
    add_vm("vm1", {group_rule("team")});
    EXPECT_TRUE(decide(user("anne"), "vm1", at(Weekday::mon, 12)).allowed);
    EXPECT_TRUE(decide(user("bob", "partner.org"), "vm1", at(Weekday::mon, 12)).allowed);
    EXPECT_FALSE(decide(user("bob"), "vm1", at(Weekday::mon, 12)).allowed);
    EXPECT_FALSE(decide(user("anne", "partner.org"), "vm1", at(Weekday::mon, 12)).allowed);
    EXPECT_FALSE(decide(user("eve"), "vm1", at(Weekday::mon, 12)).allowed);
}

TEST_F(EvaluatorTest, UnknownGroupNamesNobody) {
    add_vm("vm1", {group_rule("nosuchgroup")});
    EXPECT_FALSE(decide(user("anne"), "vm1", at(Weekday::mon, 12)).allowed);
}

TEST_F(EvaluatorTest, UnixGroupInARule) {
    unix_groups.members["wheel"] = {"ralph"};
    add_vm("vm1", {group_rule("unix:wheel")});
    EXPECT_TRUE(decide(user("ralph"), "vm1", at(Weekday::mon, 12)).allowed);
    EXPECT_TRUE(decide(user("ralph", "Example.com"), "vm1", at(Weekday::mon, 12)).allowed);
    EXPECT_FALSE(decide(user("eve"), "vm1", at(Weekday::mon, 12)).allowed);
}

TEST_F(EvaluatorTest, UnixGroupsAreNotConsultedForForeignRealms) {
    // The client types its realm freely: "ralph@evil.org" is not the local account ralph.
    unix_groups.members["wheel"] = {"ralph"};
    add_vm("vm1", {group_rule("unix:wheel")});
    EXPECT_FALSE(decide(user("ralph", "evil.org"), "vm1", at(Weekday::mon, 12)).allowed);
    EXPECT_EQ(unix_groups.lookups, 0);
}

TEST_F(EvaluatorTest, UnixGroupInsideAConfigGroup) {
    unix_groups.members["ops"] = {"olga"};
    config.groups["team"] = {"anne", "unix:ops"};
    add_vm("vm1", {group_rule("team")});
    EXPECT_TRUE(decide(user("olga"), "vm1", at(Weekday::mon, 12)).allowed);
    EXPECT_TRUE(decide(user("anne"), "vm1", at(Weekday::mon, 12)).allowed);
    EXPECT_FALSE(decide(user("eve"), "vm1", at(Weekday::mon, 12)).allowed);
}

TEST_F(EvaluatorTest, UsersOrGroupsEitherNameTheIdentity) {
    unix_groups.members["wheel"] = {"ralph"};
    AllowRule rule = user_rule("anne");
    rule.groups = {"unix:wheel"};
    add_vm("vm1", {rule});
    EXPECT_TRUE(decide(user("anne"), "vm1", at(Weekday::mon, 12)).allowed);
    EXPECT_TRUE(decide(user("ralph"), "vm1", at(Weekday::mon, 12)).allowed);
    EXPECT_FALSE(decide(user("eve"), "vm1", at(Weekday::mon, 12)).allowed);
}

// ---- when ----

TEST_F(EvaluatorTest, HoursAreHalfOpen) {
    AllowRule rule = user_rule("boss");
    rule.hours = hours(18, 23);
    add_vm("vm1", {rule});
    EXPECT_FALSE(decide(user("boss"), "vm1", at(Weekday::mon, 17, 59)).allowed);
    EXPECT_TRUE(decide(user("boss"), "vm1", at(Weekday::mon, 18, 0)).allowed);
    EXPECT_TRUE(decide(user("boss"), "vm1", at(Weekday::mon, 22, 59)).allowed);
    EXPECT_FALSE(decide(user("boss"), "vm1", at(Weekday::mon, 23, 0)).allowed);
}

TEST_F(EvaluatorTest, WindowPastMidnightBelongsToTheDayItStarted) {
    AllowRule rule = user_rule("nina");
    rule.days = days({Weekday::fri});
    rule.hours = hours(22, 6);
    add_vm("vm1", {rule});
    const auto allowed = [&](core::CivilTime t) { return decide(user("nina"), "vm1", t).allowed; };
    EXPECT_TRUE(allowed(at(Weekday::fri, 22, 0)));
    EXPECT_TRUE(allowed(at(Weekday::fri, 23, 59)));
    EXPECT_TRUE(allowed(at(Weekday::sat, 0, 0)));
    EXPECT_TRUE(allowed(at(Weekday::sat, 1, 0)));
    EXPECT_TRUE(allowed(at(Weekday::sat, 5, 59)));
    EXPECT_FALSE(allowed(at(Weekday::sat, 6, 0)));
    EXPECT_FALSE(allowed(at(Weekday::sat, 22, 30)));
    EXPECT_FALSE(allowed(at(Weekday::fri, 1, 0)));
    EXPECT_FALSE(allowed(at(Weekday::fri, 21, 59)));
    EXPECT_FALSE(allowed(at(Weekday::thu, 23, 0)));
}

TEST_F(EvaluatorTest, WindowPastMidnightFromSundayEndsOnMonday) {
    AllowRule rule = user_rule("nina");
    rule.days = days({Weekday::sun});
    rule.hours = hours(22, 6);
    add_vm("vm1", {rule});
    EXPECT_TRUE(decide(user("nina"), "vm1", at_date({2026, 11, 30}, Weekday::mon, 3)).allowed);
    EXPECT_FALSE(decide(user("nina"), "vm1", at(Weekday::sun, 3)).allowed);
}

TEST_F(EvaluatorTest, EqualStartAndEndIsTheWholeDay) {
    AllowRule rule = user_rule("nina");
    rule.hours = hours(0, 0);
    add_vm("vm1", {rule});
    for (int h = 0; h < 24; ++h) EXPECT_TRUE(decide(user("nina"), "vm1", at(Weekday::wed, h, 30)).allowed) << h;
}

TEST_F(EvaluatorTest, DatesAreInclusive) {
    AllowRule rule = user_rule("tom");
    rule.from = Date{2026, 3, 1};
    rule.until = Date{2026, 3, 31};
    add_vm("vm1", {rule});
    EXPECT_FALSE(decide(user("tom"), "vm1", at_date({2026, 2, 28}, Weekday::sat, 12)).allowed);
    EXPECT_TRUE(decide(user("tom"), "vm1", at_date({2026, 3, 1}, Weekday::sun, 0)).allowed);
    EXPECT_TRUE(decide(user("tom"), "vm1", at_date({2026, 3, 31}, Weekday::tue, 23, 59)).allowed);
    EXPECT_FALSE(decide(user("tom"), "vm1", at_date({2026, 4, 1}, Weekday::wed, 0)).allowed);
}

TEST_F(EvaluatorTest, NightAfterTheLastDayStillCountsForTheLastDay) {
    AllowRule rule = user_rule("tom");
    rule.hours = hours(22, 6);
    rule.until = Date{2026, 12, 31};
    add_vm("vm1", {rule});
    EXPECT_TRUE(decide(user("tom"), "vm1", at_date({2027, 1, 1}, Weekday::fri, 1)).allowed);
    EXPECT_FALSE(decide(user("tom"), "vm1", at_date({2027, 1, 1}, Weekday::fri, 22)).allowed);
}

TEST_F(EvaluatorTest, NightBeforeTheFirstDayDoesNotCount) {
    AllowRule rule = user_rule("tom");
    rule.hours = hours(22, 6);
    rule.from = Date{2028, 3, 1};
    add_vm("vm1", {rule});
    // 2028 is a leap year: the night of 03-01 01:00 began on 02-29.
    EXPECT_FALSE(decide(user("tom"), "vm1", at_date({2028, 3, 1}, Weekday::wed, 1)).allowed);
    EXPECT_TRUE(decide(user("tom"), "vm1", at_date({2028, 3, 1}, Weekday::wed, 22)).allowed);
    rule.from = Date{2028, 2, 29};
    config.vms[0].allow = {rule};
    EXPECT_TRUE(decide(user("tom"), "vm1", at_date({2028, 3, 1}, Weekday::wed, 1)).allowed);
}

// ---- where ----

TEST_F(EvaluatorTest, Ipv4Sources) {
    AllowRule rule = user_rule("ralph");
    rule.sources = cidrs({"10.0.0.0/8"});
    add_vm("vm3", {rule});
    EXPECT_TRUE(decide_from(user("ralph"), "vm3", "10.1.2.3").allowed);
    EXPECT_TRUE(decide_from(user("ralph"), "vm3", "::ffff:10.1.2.3").allowed);
    EXPECT_FALSE(decide_from(user("ralph"), "vm3", "192.0.2.7").allowed);
    EXPECT_FALSE(decide_from(user("ralph"), "vm3", "2001:db8::1").allowed);
}

TEST_F(EvaluatorTest, Ipv6AndMixedSources) {
    AllowRule rule = user_rule("ralph");
    rule.sources = cidrs({"2001:db8::/32", "192.168.0.0/16"});
    add_vm("vm3", {rule});
    EXPECT_TRUE(decide_from(user("ralph"), "vm3", "2001:db8::5").allowed);
    EXPECT_TRUE(decide_from(user("ralph"), "vm3", "192.168.7.7").allowed);
    EXPECT_FALSE(decide_from(user("ralph"), "vm3", "2001:db9::1").allowed);
    EXPECT_FALSE(decide_from(user("ralph"), "vm3", "::1").allowed);
}

TEST_F(EvaluatorTest, UnknownSourceFailsARuleWithSources) {
    AllowRule rule = user_rule("ralph");
    rule.sources = cidrs({"::/0"});
    add_vm("vm3", {rule});
    const Decision d = decide(user("ralph"), "vm3", at(Weekday::mon, 12));
    EXPECT_FALSE(d.allowed);
    EXPECT_EQ(d.reason, "ralph may use vm3 only from ::/0; the connection's source address is unknown");
}

TEST_F(EvaluatorTest, RuleWithoutSourcesIgnoresTheSource) {
    add_vm("vm3", {user_rule("ralph")});
    EXPECT_TRUE(decide_from(user("ralph"), "vm3", "203.0.113.1").allowed);
    EXPECT_TRUE(decide(user("ralph"), "vm3", at(Weekday::mon, 12)).allowed);
}

// ---- channels ----

TEST_F(EvaluatorTest, DeniedChannelIsRefused) {
    AllowRule rule = user_rule("anne");
    rule.deny_channels = {"usbredir", "smartcard"};
    add_vm("leaptest", {rule});
    const Decision d = decide(user("anne"), "leaptest", at(Weekday::mon, 12), "usbredir");
    EXPECT_FALSE(d.allowed);
    EXPECT_EQ(d.rule_index, 0u);
    EXPECT_EQ(d.reason, "the usbredir channel of leaptest is denied to anne (allow[0])");
    EXPECT_EQ(d.deny_channels, rule.deny_channels);
    EXPECT_TRUE(decide(user("anne"), "leaptest", at(Weekday::mon, 12), "display").allowed);
    const Decision whole_vm = decide(user("anne"), "leaptest", at(Weekday::mon, 12));
    EXPECT_TRUE(whole_vm.allowed);
    EXPECT_EQ(whole_vm.deny_channels, rule.deny_channels);
}

TEST_F(EvaluatorTest, ViewOnlyRefusesChannelsThatAct) {
    AllowRule rule = group_rule("auditors");
    rule.view_only = true;
    config.groups["auditors"] = {"ida"};
    add_vm("leaptest", {rule});
    for (const char* channel : {"inputs", "usbredir", "smartcard", "webdav"}) {
        const Decision d = decide(user("ida"), "leaptest", at(Weekday::mon, 12), channel);
        EXPECT_FALSE(d.allowed) << channel;
        EXPECT_TRUE(d.view_only);
        EXPECT_EQ(d.reason, std::string("view-only access: the ") + channel + " channel is refused");
    }
    for (const char* channel : {"", "main", "display", "cursor", "playback", "record"}) {
        const Decision d = decide(user("ida"), "leaptest", at(Weekday::mon, 12), channel);
        EXPECT_TRUE(d.allowed) << channel;
        EXPECT_TRUE(d.view_only);
    }
}

// ---- first match wins ----

TEST_F(EvaluatorTest, FirstMatchingRuleDecides) {
    AllowRule evening = user_rule("anne");
    evening.hours = hours(18, 23);
    evening.view_only = true;
    add_vm("vm1", {evening, user_rule("anne")});
    const Decision day = decide(user("anne"), "vm1", at(Weekday::mon, 9));
    EXPECT_TRUE(day.allowed);
    EXPECT_EQ(day.rule_index, 1u);
    EXPECT_FALSE(day.view_only);
    const Decision night = decide(user("anne"), "vm1", at(Weekday::mon, 19));
    EXPECT_TRUE(night.allowed);
    EXPECT_EQ(night.rule_index, 0u);
    EXPECT_TRUE(night.view_only);
}

TEST_F(EvaluatorTest, ChannelRefusedByTheFirstMatchIsFinal) {
    AllowRule viewer = user_rule("anne");
    viewer.view_only = true;
    AllowRule no_usb = user_rule("anne");
    no_usb.deny_channels = {"usbredir"};
    add_vm("vm1", {viewer, user_rule("anne")});
    add_vm("vm2", {no_usb, user_rule("anne")});
    const Decision inputs = decide(user("anne"), "vm1", at(Weekday::mon, 12), "inputs");
    EXPECT_FALSE(inputs.allowed);
    EXPECT_EQ(inputs.rule_index, 0u);
    const Decision usb = decide(user("anne"), "vm2", at(Weekday::mon, 12), "usbredir");
    EXPECT_FALSE(usb.allowed);
    EXPECT_EQ(usb.rule_index, 0u);
}

TEST_F(EvaluatorTest, RulesOfOtherUsersAreSkipped) {
    AllowRule other = user_rule("bob");
    other.view_only = true;
    add_vm("vm1", {other, user_rule("anne")});
    const Decision d = decide(user("anne"), "vm1", at(Weekday::mon, 12), "inputs");
    EXPECT_TRUE(d.allowed);
    EXPECT_EQ(d.rule_index, 1u);
}

// ---- reasons ----

TEST_F(EvaluatorTest, RuleLabelNamesVmIndexAndLine) {
    AllowRule rule = user_rule("anne");
    rule.where.line = 41;
    add_vm("leaptest", {user_rule("maggie"), rule});
    EXPECT_EQ(decide(user("anne"), "leaptest", at(Weekday::mon, 12)).rule, "leaptest allow[1] (line 41)");
    EXPECT_EQ(decide(user("maggie"), "leaptest", at(Weekday::mon, 12)).rule, "leaptest allow[0]");
    EXPECT_EQ(decide(user("eve"), "leaptest", at(Weekday::mon, 12)).rule, "");
}

TEST_F(EvaluatorTest, GrantReasonListsTheRuleLimits) {
    AllowRule anne = user_rule("anne");
    anne.days = days({Weekday::wed, Weekday::thu});
    AllowRule ida = user_rule("ida");
    ida.hours = hours(8, 17);
    ida.until = Date{2026, 12, 31};
    ida.sources = cidrs({"10.0.0.0/8"});
    ida.view_only = true;
    add_vm("leaptest", {user_rule("maggie"), anne, ida});
    EXPECT_EQ(decide(user("anne"), "leaptest", at(Weekday::wed, 12)).reason,
              "anne may use leaptest (allow[1], Wed-Thu)");
    EXPECT_EQ(decide(user("maggie"), "leaptest", at(Weekday::wed, 12)).reason,
              "maggie may use leaptest (allow[0])");
    EXPECT_EQ(decide_from(user("ida"), "leaptest", "10.0.0.1").reason,
              "ida may use leaptest (allow[2], 08:00-17:00, until 2026-12-31, only from 10.0.0.0/8, view only)");
}

TEST_F(EvaluatorTest, DenialReasonsExplainTheFailedLimit) {
    AllowRule anne = user_rule("anne");
    anne.days = days({Weekday::wed, Weekday::thu});
    AllowRule boss = user_rule("boss");
    boss.hours = hours(18, 23);
    AllowRule ralph = user_rule("ralph");
    ralph.sources = cidrs({"10.0.0.0/8"});
    AllowRule tom = user_rule("tom");
    tom.until = Date{2026, 12, 31};
    AllowRule una = user_rule("una");
    una.from = Date{2027, 2, 1};
    add_vm("leaptest", {anne, boss, ralph, tom, una});
    EXPECT_EQ(decide(user("anne"), "leaptest", at(Weekday::fri, 12)).reason,
              "anne may use leaptest on Wed-Thu; today is Friday");
    EXPECT_EQ(decide(user("boss"), "leaptest", at(Weekday::mon, 9, 15)).reason,
              "boss may use leaptest 18:00-23:00; it is 09:15");
    EXPECT_EQ(decide_from(user("ralph"), "leaptest", "192.0.2.7").reason,
              "ralph may use leaptest only from 10.0.0.0/8; connection from 192.0.2.7");
    EXPECT_EQ(decide(user("tom"), "leaptest", at_date({2027, 1, 2}, Weekday::sat, 12)).reason,
              "tom may use leaptest until 2026-12-31; today is 2027-01-02");
    EXPECT_EQ(decide(user("una"), "leaptest", at_date({2027, 1, 2}, Weekday::sat, 12)).reason,
              "una may use leaptest from 2027-02-01; today is 2027-01-02");
}

TEST_F(EvaluatorTest, DenialReasonCombinesEveryFailedLimit) {
    AllowRule rule = user_rule("anne");
    rule.days = days({Weekday::mon, Weekday::tue, Weekday::wed, Weekday::fri});
    rule.hours = hours(18, 23);
    rule.until = Date{2026, 1, 31};
    rule.sources = cidrs({"10.0.0.0/8", "2001:db8::/32"});
    add_vm("vm1", {rule});
    const Decision d = decide(user("anne"), "vm1", at(Weekday::sun, 9, 5), "", core::IpAddress::parse("::1"));
    EXPECT_EQ(d.reason,
              "anne may use vm1 on Mon-Wed, Fri 18:00-23:00 until 2026-01-31 only from 10.0.0.0/8 or 2001:db8::/32; "
              "today is Sunday 2026-11-29, it is 09:05, connection from ::1");
}

TEST_F(EvaluatorTest, DenialReasonExplainsTheNightAfterMidnight) {
    AllowRule rule = user_rule("nina");
    rule.days = days({Weekday::fri});
    rule.hours = hours(22, 6);
    add_vm("vm1", {rule});
    EXPECT_EQ(decide(user("nina"), "vm1", at(Weekday::fri, 1)).reason,
              "nina may use vm1 on Fri 22:00-06:00; it is Friday 01:00, in the night that began on Thursday");
}

TEST_F(EvaluatorTest, DenialReasonExplainsTheNearestRule) {
    AllowRule far = user_rule("anne");
    far.days = days({Weekday::mon});
    far.hours = hours(18, 23);
    AllowRule near = user_rule("anne");
    near.days = days({Weekday::mon, Weekday::wed});
    AllowRule equally_near = user_rule("anne");
    equally_near.hours = hours(6, 8);
    add_vm("vm1", {far, near, equally_near});
    EXPECT_EQ(decide(user("anne"), "vm1", at(Weekday::fri, 12)).reason,
              "anne may use vm1 on Mon, Wed; today is Friday");
}

TEST_F(EvaluatorTest, DayListsRenderAsRanges) {
    AllowRule weekdays = user_rule("a");
    weekdays.days = days({Weekday::mon, Weekday::tue, Weekday::wed, Weekday::thu, Weekday::fri});
    AllowRule weekend = user_rule("b");
    weekend.days = days({Weekday::sat, Weekday::sun});
    AllowRule scattered = user_rule("c");
    scattered.days = days({Weekday::mon, Weekday::wed, Weekday::thu, Weekday::sun});
    AllowRule never = user_rule("d");
    never.days = core::DaySet{};
    add_vm("vm1", {weekdays, weekend, scattered, never});
    EXPECT_EQ(decide(user("a"), "vm1", at(Weekday::sat, 12)).reason, "a may use vm1 on Mon-Fri; today is Saturday");
    EXPECT_EQ(decide(user("b"), "vm1", at(Weekday::mon, 12)).reason, "b may use vm1 on Sat-Sun; today is Monday");
    EXPECT_EQ(decide(user("c"), "vm1", at(Weekday::tue, 12)).reason,
              "c may use vm1 on Mon, Wed-Thu, Sun; today is Tuesday");
    EXPECT_EQ(decide(user("d"), "vm1", at(Weekday::tue, 12)).reason, "d may use vm1 on no day; today is Tuesday");
}

TEST_F(EvaluatorTest, ReasonsNameTheRealm) {
    add_vm("vm1", {user_rule("anne")});
    EXPECT_EQ(decide(user("anne", "evil.org"), "vm1", at(Weekday::mon, 12)).reason,
              "no allow rule of vm1 names anne@evil.org");
}

// ---- the real resolver, against this machine's account database ----

// ---- causes: the bounded word a metric counts decisions by ----

TEST_F(EvaluatorTest, CauseNamesWhatTheDecisionRestsOn) {
    AllowRule weekdays = user_rule("anne");
    weekdays.days = days({Weekday::mon, Weekday::tue});
    weekdays.hours = hours(9, 17);
    AllowRule dated = user_rule("bob");
    dated.from = Date{2026, 11, 25};
    dated.until = Date{2026, 11, 26};
    AllowRule office = user_rule("carl");
    office.sources = cidrs({"10.0.0.0/8"});
    AllowRule viewer = user_rule("dora");
    viewer.view_only = true;
    viewer.deny_channels = {"usbredir"};
    add_vm("vm1", {weekdays, dated, office, viewer});
    EXPECT_EQ(decide(user("anne"), "vm1", at(Weekday::mon, 12)).cause, Cause::allowed);
    EXPECT_EQ(decide(user("anne"), "vm9", at(Weekday::mon, 12)).cause, Cause::no_vm);
    EXPECT_EQ(decide(user("eve"), "vm1", at(Weekday::mon, 12)).cause, Cause::no_rule);
    EXPECT_EQ(decide(user("anne"), "vm1", at(Weekday::wed, 12)).cause, Cause::wrong_day);
    EXPECT_EQ(decide(user("anne"), "vm1", at(Weekday::mon, 20)).cause, Cause::outside_hours);
    EXPECT_EQ(decide(user("anne"), "vm1", at(Weekday::sat, 20)).cause, Cause::wrong_day);  // the first failed limit
    EXPECT_EQ(decide(user("bob"), "vm1", at(Weekday::mon, 12)).cause, Cause::not_yet_valid);
    EXPECT_EQ(decide(user("bob"), "vm1", at(Weekday::fri, 12)).cause, Cause::expired);
    EXPECT_EQ(decide_from(user("carl"), "vm1", "192.168.1.1").cause, Cause::source);
    EXPECT_EQ(decide(user("dora"), "vm1", at(Weekday::mon, 12), "usbredir").cause, Cause::channel_denied);
    EXPECT_EQ(decide(user("dora"), "vm1", at(Weekday::mon, 12), "inputs").cause, Cause::view_only);
    EXPECT_EQ(decide(user("dora"), "vm1", at(Weekday::mon, 12), "display").cause, Cause::allowed);
}

TEST(PolicyCause, EveryCauseHasItsOwnLabel) {
    std::set<std::string_view> labels;
    for (int c = 0; c <= static_cast<int>(Cause::view_only); ++c) labels.insert(to_string(static_cast<Cause>(c)));
    EXPECT_EQ(labels.size(), static_cast<std::size_t>(Cause::view_only) + 1);
    EXPECT_EQ(to_string(Cause::outside_hours), "outside_hours");
}

TEST(SystemGroupResolver, FindsThePrimaryGroupAndRejectsUnknownNames) {
    const SystemGroupResolver resolver;
    // root's primary group is gid 0 ("root") on every Linux system; it is rarely listed in gr_mem.
    EXPECT_TRUE(resolver.user_in_unix_group("root", "root"));
    EXPECT_FALSE(resolver.user_in_unix_group("no-such-user-vmgate", "root"));
    EXPECT_FALSE(resolver.user_in_unix_group("root", "no-such-group-vmgate"));
    EXPECT_FALSE(resolver.user_in_unix_group(std::string_view("root\0x", 6), "root"));
}

}  // namespace
}  // namespace vmgate::policy
