#include "cli/policy_explain.hpp"

#include "cli/time_text.hpp"
#include "spice/protocol.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join lives here from fmt 11 on

#include <unistd.h>

#include <algorithm>
#include <array>
#include <iostream>
#include <optional>
#include <vector>

namespace vmgate::cli {

namespace {

constexpr int kUsageError = 2;

std::optional<core::CivilTime> civil_time_of(const std::string& at) {
    const core::SystemClock clock;
    if (at.empty()) return clock.civil_now();
    const auto t = parse_local_minute(at);
    if (!t) {
        std::cerr << "vmgate: --at: expected a local date and time that exists, as \"YYYY-MM-DD HH:MM\" "
                     "(e.g. \"2026-11-23 19:30\"); got \""
                  << at << "\"\n";
        return std::nullopt;
    }
    return clock.civil(*t);
}

// "" = unknown, which fails every rule limited to source addresses, as it would in the daemon.
bool parse_source(const std::string& from, std::optional<core::IpAddress>& source) {
    if (from.empty()) return true;
    source = core::IpAddress::parse(from);
    if (!source)
        std::cerr << "vmgate: --from: expected an IP address such as 192.0.2.10 or 2001:db8::1; got \"" << from
                  << "\"\n";
    return source.has_value();
}

// spice::channel_name answers "unknown" past the last channel type.
std::vector<std::string_view> spice_channel_names() {
    std::vector<std::string_view> names;
    for (std::uint8_t type = 1; spice::channel_name(type) != "unknown"; ++type)
        names.push_back(spice::channel_name(type));
    return names;
}

// A misspelt channel ("input") matches no denial and would look allowed.
bool known_channel(const std::string& channel) {
    if (channel.empty()) return true;
    const auto names = spice_channel_names();
    if (std::ranges::find(names, channel) != names.end()) return true;
    std::cerr << "vmgate: --channel: unknown SPICE channel \"" << channel << "\"; use one of "
              << fmt::format("{}", fmt::join(names, ", ")) << "\n";
    return false;
}

}  // namespace

std::string civil_text(const core::CivilTime& at) {
    return fmt::format("{} {} {}", core::to_string(at.date), core::long_name(at.weekday),
                       core::hh_mm(at.minute_of_day));
}

std::string explain_text(const policy::Request& request, const policy::Decision& decision) {
    std::string out = (decision.allowed ? "allowed: " : "denied: ") + decision.reason + "\n";
    if (!decision.rule.empty()) out += "rule: " + decision.rule + "\n";
    out += "at: " + civil_text(request.at) + "\n";
    if (request.source) out += "from: " + request.source->to_string() + "\n";
    return out;
}

nlohmann::json explain_json(const policy::Request& request, const policy::Decision& decision) {
    return {{"allowed", decision.allowed},
            {"reason", decision.reason},
            {"rule", decision.rule},
            {"view_only", decision.view_only},
            {"deny_channels", decision.deny_channels},
            {"user", request.who.user},
            {"realm", request.who.realm},
            {"vm", request.vm},
            {"at", civil_text(request.at)}};
}

int run_policy_explain(const ExplainArgs& args) {
    policy::Request request{core::Identity::parse(args.user), args.vm, args.channel, {}, std::nullopt};
    const auto at = civil_time_of(args.at);
    if (!at || !parse_source(args.from, request.source) || !known_channel(args.channel)) return kUsageError;
    request.at = *at;
    const auto result = core::load_config_file(args.config_path);
    if (!result.config) {
        print_config_errors(result.errors, args.config_path);
        return kUsageError;
    }
    const policy::SystemGroupResolver groups;
    const policy::Evaluator evaluator(*result.config, groups, result.config->sasl.realm_or_host_name());
    const auto decision = evaluator.decide(request);
    std::cout << (args.json ? explain_json(request, decision).dump() + "\n" : explain_text(request, decision));
    return decision.allowed ? 0 : 1;
}

}  // namespace vmgate::cli
