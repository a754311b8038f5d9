#include "doctor/sasl_checks.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace vmgate::doctor {
namespace {

bool checks_passwords(const core::ListenerConfig& l) {
    return l.offers(core::AuthMethod::sasl) || l.offers(core::AuthMethod::password);
}

bool any_listener(const core::Config& config, core::Protocol protocol) {
    return std::any_of(config.listeners.begin(), config.listeners.end(), [&](const core::ListenerConfig& l) {
        return l.protocol == protocol && l.tls && checks_passwords(l);
    });
}

}  // namespace

std::string sasldb_in_use(const core::Config& config) {
    if (config.sasl.pwcheck_method == "saslauthd") return "";
    if (!any_listener(config, core::Protocol::spice) && !any_listener(config, core::Protocol::vnc)) return "";
    return config.sasl.sasldb.empty() ? cyrus_default_sasldb : config.sasl.sasldb;
}

std::vector<std::string> pam_services_needed(const core::Config& config) {
    std::vector<std::string> services;
    if (config.sasl.pwcheck_method != "saslauthd") return services;
    if (any_listener(config, core::Protocol::spice)) services.push_back(config.sasl.service_spice);
    if (any_listener(config, core::Protocol::vnc) &&
        std::find(services.begin(), services.end(), config.sasl.service_vnc) == services.end())
        services.push_back(config.sasl.service_vnc);
    return services;
}

Findings check_pam_services(const core::Config& config, const std::string& pam_dir,
                            const std::function<bool(const std::string& path)>& exists) {
    Findings out;
    for (const auto& service : pam_services_needed(config)) {
        const std::string path = pam_dir + "/" + service;
        if (exists(path)) continue;
        out.push_back({Severity::error, Area::sasl, "pam-service-missing", path,
                       fmt::format("pwcheck_method = \"saslauthd\": saslauthd -a pam checks passwords with PAM "
                                   "service \"{}\", which has no file here, so PAM uses \"other\" (on Debian: "
                                   "deny everyone)",
                                   service),
                       fmt::format("printf '@include common-auth\\n@include common-account\\n' > {}", path)});
    }
    return out;
}

}  // namespace vmgate::doctor
