#include "doctor/finding.hpp"

#include <algorithm>
#include <array>

namespace vmgate::doctor {
namespace {

constexpr std::array all_areas{Area::tls, Area::sasl, Area::qemu_conf, Area::qemu_process, Area::domain};

std::string_view heading(Area a) {
    switch (a) {
    case Area::tls: return "TLS certificate and key";
    case Area::sasl: return "SASL (sasldb, saslauthd and PAM)";
    case Area::qemu_conf: return "libvirt's qemu.conf and QEMU's SASL configuration";
    case Area::qemu_process: return "running QEMU processes";
    case Area::domain: return "libvirt domains";
    }
    return "";
}

}  // namespace

unsigned Report::count(Severity s) const {
    return static_cast<unsigned>(
        std::count_if(findings.begin(), findings.end(), [s](const Finding& f) { return f.severity == s; }));
}

int Report::exit_status() const {
    if (count(Severity::error) > 0) return 2;
    return findings.empty() ? 0 : 1;
}

std::string_view to_string(Severity s) { return s == Severity::error ? "error" : "warning"; }

std::string_view to_string(Area a) {
    switch (a) {
    case Area::tls: return "tls";
    case Area::sasl: return "sasl";
    case Area::qemu_conf: return "qemu-conf";
    case Area::qemu_process: return "qemu-process";
    case Area::domain: return "domain";
    }
    return "";
}

std::string report_text(const Report& report) {
    std::string out;
    for (const Area area : all_areas) {
        bool first = true;
        for (const auto& f : report.findings) {
            if (f.area != area) continue;
            if (first) out += std::string(heading(area)) + ":\n";
            first = false;
            out += "  " + std::string(to_string(f.severity)) + " " + f.id + " " + f.subject + ": " + f.problem + "\n";
            out += "      fix: " + f.fix + "\n";
        }
        if (!first) out += "\n";
    }
    const unsigned errors = report.count(Severity::error);
    const unsigned warnings = report.count(Severity::warning);
    if (report.findings.empty())
        out += "no problems found";
    else
        out += std::to_string(errors) + " error(s), " + std::to_string(warnings) + " warning(s)";
    if (!report.checked.empty()) {
        out += " (checked: ";
        for (std::size_t i = 0; i < report.checked.size(); ++i) out += (i ? "; " : "") + report.checked[i];
        out += ")";
    }
    return out + "\n";
}

nlohmann::json report_json(const Report& report) {
    auto findings = nlohmann::json::array();
    for (const auto& f : report.findings)
        findings.push_back({{"severity", to_string(f.severity)},
                            {"id", f.id},
                            {"area", to_string(f.area)},
                            {"subject", f.subject},
                            {"problem", f.problem},
                            {"fix", f.fix}});
    return {{"findings", std::move(findings)},
            {"errors", report.count(Severity::error)},
            {"warnings", report.count(Severity::warning)},
            {"checked", report.checked}};
}

}  // namespace vmgate::doctor
