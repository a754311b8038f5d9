#include "policy/policy.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join lives here from fmt 11 on

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <utility>

namespace vmgate::policy {

namespace {

using core::AllowRule;
using core::hh_mm;
using core::Identity;

constexpr std::string_view kUnixPrefix = "unix:";
constexpr int kDaysPerWeek = 7;
// Channels through which a client acts on the VM rather than watches it.
constexpr std::array<std::string_view, 4> kInputChannels{"inputs", "usbredir", "smartcard", "webdav"};

// ---- who ----

bool iequals(std::string_view a, std::string_view b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
        return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
    });
}

bool starts_with_unix(std::string_view entry) { return entry.starts_with(kUnixPrefix); }

// Everything needed to decide whether a rule entry names the requesting identity.
struct Naming {
    const core::Config& config;
    const GroupResolver& resolver;
    std::string_view default_realm;
    const Identity& who;

    // The realm is typed freely by the client, so a bare name or a local Unix account only
    // stands for the identity when the realm is the gateway's own one.
    bool local() const { return who.realm.empty() || iequals(who.realm, default_realm); }

    bool user_entry(std::string_view entry) const {
        const auto [user, realm] = Identity::split(entry);  // as Cyrus splits, so both agree
        if (realm.empty()) return user == who.user && local();
        return user == who.user && iequals(realm, who.realm);
    }

    bool unix_group(std::string_view entry) const {
        return local() && resolver.user_in_unix_group(who.user, entry.substr(kUnixPrefix.size()));
    }

    bool group_member_entry(std::string_view entry) const {
        return starts_with_unix(entry) ? unix_group(entry) : user_entry(entry);
    }

    bool group(std::string_view name) const {
        if (starts_with_unix(name)) return unix_group(name);
        const auto found = config.groups.find(std::string(name));
        if (found == config.groups.end()) return false;
        return std::ranges::any_of(found->second, [&](const std::string& e) { return group_member_entry(e); });
    }

    // A rule naming nobody matches nobody: deny by default beats "every set field matches".
    bool names(const AllowRule& rule) const {
        return std::ranges::any_of(rule.users, [&](const std::string& u) { return user_entry(u); }) ||
               std::ranges::any_of(rule.groups, [&](const std::string& g) { return group(g); });
    }
};

// ---- when and where ----

enum class Condition { days, hours, from, until, sources };

// The calendar day a moment counts for. The early-morning part of a window that wraps past
// midnight belongs to the day the window opened: fri 22:00-06:00 covers Saturday 01:00.
struct Anchor {
    core::Weekday weekday;
    core::Date date;
    bool previous_day = false;
};

bool in_window(const core::TimeWindow& w, int minute) {
    if (w.start_minute < w.end_minute) return minute >= w.start_minute && minute < w.end_minute;
    return minute >= w.start_minute || minute < w.end_minute;
}

bool in_wrapped_morning(const core::TimeWindow& w, int minute) {
    return w.end_minute <= w.start_minute && minute < w.end_minute;
}

core::Date day_before(const core::Date& d) {
    using namespace std::chrono;
    const year_month_day ymd{year{d.year}, month{static_cast<unsigned>(d.month)},
                             day{static_cast<unsigned>(d.day)}};
    const year_month_day before{sys_days{ymd} - days{1}};
    return core::Date{static_cast<int>(before.year()), static_cast<int>(static_cast<unsigned>(before.month())),
                      static_cast<int>(static_cast<unsigned>(before.day()))};
}

core::Weekday weekday_before(core::Weekday d) {
    return static_cast<core::Weekday>((static_cast<int>(d) + kDaysPerWeek - 1) % kDaysPerWeek);
}

Anchor anchor_of(const AllowRule& rule, const core::CivilTime& at) {
    if (!rule.hours || !in_wrapped_morning(*rule.hours, at.minute_of_day)) return {at.weekday, at.date};
    return {weekday_before(at.weekday), day_before(at.date), true};
}

bool source_allowed(const AllowRule& rule, const std::optional<core::IpAddress>& source) {
    if (rule.sources.empty()) return true;
    if (!source) return false;
    return std::ranges::any_of(rule.sources, [&](const core::Cidr& c) { return c.contains(*source); });
}

std::vector<Condition> failed_conditions(const AllowRule& rule, const Request& r) {
    const Anchor anchor = anchor_of(rule, r.at);
    std::vector<Condition> out;
    if (rule.days && !rule.days->contains(anchor.weekday)) out.push_back(Condition::days);
    if (rule.hours && !in_window(*rule.hours, r.at.minute_of_day)) out.push_back(Condition::hours);
    if (rule.from && anchor.date < *rule.from) out.push_back(Condition::from);
    if (rule.until && anchor.date > *rule.until) out.push_back(Condition::until);
    if (!source_allowed(rule, r.source)) out.push_back(Condition::sources);
    return out;
}

// ---- words ----

std::string short_day(core::Weekday d) {
    std::string name(core::to_string(d));
    name[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(name[0])));
    return name;
}

// Consecutive days collapse into ranges: "Mon-Fri", "Mon, Wed", "Mon-Tue, Sat".
std::string render_days(const core::DaySet& days) {
    std::vector<std::string> runs;
    for (int d = 0; d < kDaysPerWeek; ++d) {
        if (!days.contains(static_cast<core::Weekday>(d))) continue;
        int last = d;
        while (last + 1 < kDaysPerWeek && days.contains(static_cast<core::Weekday>(last + 1))) ++last;
        std::string run = short_day(static_cast<core::Weekday>(d));
        if (last > d) run += "-" + short_day(static_cast<core::Weekday>(last));
        runs.push_back(std::move(run));
        d = last;
    }
    return runs.empty() ? "no day" : fmt::format("{}", fmt::join(runs, ", "));
}

std::string render_sources(const std::vector<core::Cidr>& sources) {
    std::vector<std::string> texts;
    for (const auto& c : sources) texts.push_back(c.text);
    return fmt::format("{}", fmt::join(texts, " or "));
}

// The limits a rule sets, in words. `on_days` prefixes the day list for use inside a sentence.
std::vector<std::string> rule_limits(const AllowRule& rule, bool on_days) {
    std::vector<std::string> limits;
    if (rule.days) limits.push_back((on_days ? "on " : "") + render_days(*rule.days));
    if (rule.hours) limits.push_back(core::to_string(*rule.hours));
    if (rule.from) limits.push_back("from " + core::to_string(*rule.from));
    if (rule.until) limits.push_back("until " + core::to_string(*rule.until));
    if (!rule.sources.empty()) limits.push_back("only from " + render_sources(rule.sources));
    return limits;
}

bool failed(const std::vector<Condition>& conditions, Condition c) {
    return std::ranges::find(conditions, c) != conditions.end();
}

// "Friday", "2027-01-02" or "Friday 2027-01-02": only the calendar facts that broke the rule.
std::string calendar_facts(const std::vector<Condition>& why, core::Weekday day, const core::Date& date) {
    std::vector<std::string> parts;
    if (failed(why, Condition::days)) parts.emplace_back(core::long_name(day));
    if (failed(why, Condition::from) || failed(why, Condition::until)) parts.push_back(core::to_string(date));
    return fmt::format("{}", fmt::join(parts, " "));
}

std::string calendar_fact(const std::vector<Condition>& why, const AllowRule& rule, const core::CivilTime& at) {
    const Anchor anchor = anchor_of(rule, at);
    if (!anchor.previous_day) return "today is " + calendar_facts(why, at.weekday, at.date);
    return fmt::format("it is {} {}, in the night that began on {}", core::long_name(at.weekday),
                       hh_mm(at.minute_of_day), calendar_facts(why, anchor.weekday, anchor.date));
}

std::string source_fact(const std::optional<core::IpAddress>& source) {
    return source ? "connection from " + source->to_string() : "the connection's source address is unknown";
}

std::vector<std::string> facts(const std::vector<Condition>& why, const AllowRule& rule, const Request& r) {
    std::vector<std::string> out;
    const bool calendar =
        failed(why, Condition::days) || failed(why, Condition::from) || failed(why, Condition::until);
    if (calendar) out.push_back(calendar_fact(why, rule, r.at));
    if (failed(why, Condition::hours)) out.push_back("it is " + hh_mm(r.at.minute_of_day));
    if (failed(why, Condition::sources)) out.push_back(source_fact(r.source));
    return out;
}

// "boss may use vm1 18:00-23:00; it is 09:15"
std::string explain_miss(const std::vector<Condition>& why, const AllowRule& rule, const Request& r) {
    return fmt::format("{} may use {} {}; {}", r.who.to_string(), r.vm, fmt::join(rule_limits(rule, true), " "),
                       fmt::join(facts(why, rule, r), ", "));
}

std::string rule_label(const core::VmConfig& vm, std::size_t index) {
    std::string label = fmt::format("{} allow[{}]", vm.name, index);
    // Rules built in code rather than read from a file have no line to point at.
    if (vm.allow[index].where.line > 0) label += fmt::format(" (line {})", vm.allow[index].where.line);
    return label;
}

// "anne may use leaptest (allow[1], Wed-Thu)"
std::string explain_grant(const core::VmConfig& vm, std::size_t index, const Request& r) {
    const AllowRule& rule = vm.allow[index];
    std::vector<std::string> notes{fmt::format("allow[{}]", index)};
    for (auto& limit : rule_limits(rule, false)) notes.push_back(std::move(limit));
    if (rule.view_only) notes.emplace_back("view only");
    return fmt::format("{} may use {} ({})", r.who.to_string(), vm.name, fmt::join(notes, ", "));
}

// Why the deciding rule refuses this channel, or nullopt when it does not.
std::optional<std::string> channel_refusal(const core::VmConfig& vm, std::size_t index, const Request& r) {
    const AllowRule& rule = vm.allow[index];
    if (r.channel.empty()) return std::nullopt;
    if (std::ranges::find(rule.deny_channels, r.channel) != rule.deny_channels.end())
        return fmt::format("the {} channel of {} is denied to {} (allow[{}])", r.channel, vm.name,
                           r.who.to_string(), index);
    if (rule.view_only && std::ranges::find(kInputChannels, r.channel) != kInputChannels.end())
        return fmt::format("view-only access: the {} channel is refused", r.channel);
    return std::nullopt;
}

Decision denial(Cause cause, std::string reason) {
    Decision d;
    d.cause = cause;
    d.reason = std::move(reason);
    return d;
}

Cause cause_of(Condition first_failed) {
    switch (first_failed) {
    case Condition::days: return Cause::wrong_day;
    case Condition::hours: return Cause::outside_hours;
    case Condition::from: return Cause::not_yet_valid;
    case Condition::until: return Cause::expired;
    case Condition::sources: return Cause::source;
    }
    return Cause::no_rule;
}

// The first rule that matches decides, including a refusal of the requested channel.
Decision decide_by_rule(const core::VmConfig& vm, std::size_t index, const Request& r) {
    const AllowRule& rule = vm.allow[index];
    Decision d;
    d.rule_index = index;
    d.rule = rule_label(vm, index);
    d.view_only = rule.view_only;
    d.deny_channels = rule.deny_channels;
    auto refusal = channel_refusal(vm, index, r);
    d.allowed = !refusal;
    d.cause = !refusal                                                                   ? Cause::allowed
              : std::ranges::find(rule.deny_channels, r.channel) != rule.deny_channels.end() ? Cause::channel_denied
                                                                                          : Cause::view_only;
    d.reason = refusal ? std::move(*refusal) : explain_grant(vm, index, r);
    return d;
}

// A rule that names the identity but failed on some limits; the one failing fewest is explained.
struct NearMiss {
    std::size_t index;
    std::vector<Condition> why;
};

}  // namespace

std::string_view to_string(Cause cause) {
    switch (cause) {
    case Cause::allowed: return "allowed";
    case Cause::no_vm: return "no_vm";
    case Cause::no_rule: return "no_rule";
    case Cause::wrong_day: return "wrong_day";
    case Cause::outside_hours: return "outside_hours";
    case Cause::not_yet_valid: return "not_yet_valid";
    case Cause::expired: return "expired";
    case Cause::source: return "source";
    case Cause::channel_denied: return "channel_denied";
    case Cause::view_only: return "view_only";
    }
    return "unknown";
}

Evaluator::Evaluator(const core::Config& config, const GroupResolver& groups, std::string default_realm)
    : config_(config), groups_(groups), default_realm_(std::move(default_realm)) {}

Decision Evaluator::decide(const Request& request) const {
    const core::VmConfig* vm = config_.find_vm(request.vm);
    if (vm == nullptr) return denial(Cause::no_vm, "no VM named " + request.vm);
    const Naming naming{config_, groups_, default_realm_, request.who};
    std::optional<NearMiss> nearest;
    for (std::size_t i = 0; i < vm->allow.size(); ++i) {
        if (!naming.names(vm->allow[i])) continue;
        auto why = failed_conditions(vm->allow[i], request);
        if (why.empty()) return decide_by_rule(*vm, i, request);
        if (!nearest || why.size() < nearest->why.size()) nearest = NearMiss{i, std::move(why)};
    }
    if (!nearest)
        return denial(Cause::no_rule, fmt::format("no allow rule of {} names {}", vm->name, request.who.to_string()));
    return denial(cause_of(nearest->why.front()), explain_miss(nearest->why, vm->allow[nearest->index], request));
}

}  // namespace vmgate::policy
