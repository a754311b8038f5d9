#include "doctor/domain_checks.hpp"

#include <fmt/format.h>

namespace vmgate::doctor {
namespace {

bool listens_on_tcp(const inventory::GraphicsDevice& g) {
    return g.listen == inventory::ListenKind::address || g.listen == inventory::ListenKind::network;
}

}  // namespace

Findings check_domain(const inventory::DomainDescription& domain, const std::string& source) {
    Findings out;
    const std::string subject = fmt::format("domain {} ({})", domain.name, source);
    for (const auto& g : domain.graphics) {
        if (g.type == inventory::GraphicsType::other) continue;
        const std::string fix = fmt::format("virsh edit {}: <listen type='socket'/> in its <graphics type='{}'> (or "
                                            "type='none'), then restart the domain",
                                            domain.name, g.type_text);
        const auto exposed = inventory::exposure(g);
        if (exposed.level == inventory::Exposure::network)
            out.push_back({Severity::error, Area::domain, "domain-display-exposed", subject,
                           exposed.what + ": reachable from other hosts around vmgate", fix});
        else if (exposed.level == inventory::Exposure::local_tcp)
            out.push_back({Severity::warning, Area::domain, "domain-display-local-tcp", subject,
                           exposed.what + ": every local user can reach it without vmgate", fix});
        if (g.type == inventory::GraphicsType::spice && g.default_mode == "any" && listens_on_tcp(g))
            out.push_back({Severity::warning, Area::domain, "domain-spice-default-mode", subject,
                           "SPICE defaultMode='any': channels not listed may use the plain port, in clear",
                           fmt::format("virsh edit {}: defaultMode='secure' on its <graphics type='spice'> (needs "
                                       "spice_tls = 1), or <listen type='socket'/>",
                                       domain.name)});
    }
    return out;
}

}  // namespace vmgate::doctor
