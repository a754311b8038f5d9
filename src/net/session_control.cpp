#include "net/session_control.hpp"

#include <ctime>
#include <set>

namespace vmgate::net {
namespace {

std::string utc_text(std::chrono::system_clock::time_point t) {
    const std::time_t seconds = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    gmtime_r(&seconds, &tm);
    char text[sizeof "2026-11-23T19:30:05Z"];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return text;
}

session::Limits limits_of(const core::VmConfig& vm) { return {vm.idle_timeout, vm.max_session}; }

}  // namespace

std::optional<std::string> why_revoked(const Generation& generation, const session::Session& session,
                                       const core::CivilTime& at) {
    if (!generation.config.find_vm(session.vm())) return "no VM named " + session.vm() + " any more";
    const auto& origin = session.origin();
    policy::Request request{origin.who, origin.vm, "", at, origin.source};
    if (auto d = generation.policy->decide(request); !d.allowed) return d.reason;
    const auto names = session.channel_names();
    for (const auto& channel : std::set<std::string>(names.begin(), names.end())) {
        request.channel = channel;
        if (auto d = generation.policy->decide(request); !d.allowed) return d.reason;
    }
    return std::nullopt;
}

void supervise(const Generation& generation, const std::vector<std::shared_ptr<session::Session>>& sessions,
               const core::CivilTime& at, session::SteadyTime now) {
    for (const auto& s : sessions) {
        const core::VmConfig* vm = generation.config.find_vm(s->vm());
        if (!vm) continue;  // the reload that removed the VM ended its sessions
        s->observe_input(now);
        if (auto e = session::expiry(limits_of(*vm), s->origin().started, s->last_input(), s->origin().view_only, now))
            s->end(e->reason, e->detail);
        else if (auto why = why_revoked(generation, *s, at))
            s->end(session::EndReason::window_closed, *why);
    }
}

nlohmann::json describe(const session::Session& s) {
    const auto& o = s.origin();
    return {{"id", s.id()},
            {"vm", o.vm},
            {"user", o.who.user},
            {"realm", o.who.realm},
            {"mechanism", o.who.mechanism},
            {"source", o.source_text},
            {"since", utc_text(o.since)},
            {"channels", s.channel_names()},
            {"bytes_from_client", s.bytes_from_client()},
            {"bytes_to_client", s.bytes_to_client()},
            {"view_only", o.view_only},
            {"rule", o.rule},
            {"spice_session", s.spice_session_id().value_or(0)}};
}

}  // namespace vmgate::net
