// What `vmgate doctor` reports: findings (a problem on this host that lets clients around vmgate
// or stops vmgate from working), each with a stable id and a one-line fix, and how they are
// printed. Pure: no I/O here.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace vmgate::doctor {

enum class Severity { warning, error };

// Where a finding belongs; the text output groups findings by it, in this order.
enum class Area { tls, sasl, qemu_conf, qemu_process, domain };

struct Finding {
    Severity severity = Severity::error;
    Area area = Area::tls;
    std::string id;       // stable, e.g. "tls-key-permissions": scripts match on it
    std::string subject;  // the file, process or domain concerned
    std::string problem;  // what is wrong, in words
    std::string fix;      // one line that fixes it
};

using Findings = std::vector<Finding>;

struct Report {
    Findings findings;
    std::vector<std::string> checked;  // what was looked at, so an empty report says something

    unsigned count(Severity s) const;
    // 0 nothing found, 1 warnings only, 2 any error.
    int exit_status() const;
};

std::string_view to_string(Severity s);
std::string_view to_string(Area a);

// Findings grouped by area, one line each ("error tls-key-permissions SUBJECT: PROBLEM"), the
// fix indented below it, then a summary line.
std::string report_text(const Report& report);
// {"findings": [{severity, id, area, subject, problem, fix}], "errors": N, "warnings": N, "checked": [...]}
nlohmann::json report_json(const Report& report);

}  // namespace vmgate::doctor
