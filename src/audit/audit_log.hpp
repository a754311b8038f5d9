// The audit trail: one JSON object per line for every accept, authentication, decision, channel
// and close (design.md invariant 4). Thread-safe; each record is written with one write(2) so
// lines from different threads never interleave.
#pragma once

#include <nlohmann/json.hpp>

#include <mutex>
#include <string>

namespace vmgate::audit {

class AuditLog {
public:
    // path "-" = stderr. Throws std::runtime_error when the file cannot be opened.
    explicit AuditLog(const std::string& path);
    ~AuditLog();
    AuditLog(const AuditLog&) = delete;
    AuditLog& operator=(const AuditLog&) = delete;

    // Adds "ts" (UTC, milliseconds) and "event", then writes the record.
    void record(std::string_view event, nlohmann::json fields);

private:
    std::mutex mutex_;
    int fd_ = -1;
    bool owns_fd_ = false;
};

}  // namespace vmgate::audit
