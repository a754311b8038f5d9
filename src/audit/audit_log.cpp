#include "audit/audit_log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <stdexcept>

namespace vmgate::audit {
namespace {

std::string utc_timestamp() {
    const auto now = std::chrono::system_clock::now();
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) % 1000;
    const std::time_t t = std::chrono::system_clock::to_time_t(now);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[40];
    const std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(ms.count()));
    return buf;
}

}  // namespace

AuditLog::AuditLog(const std::string& path) {
    if (path == "-") {
        fd_ = STDERR_FILENO;
        return;
    }
    // 0640: the audit trail names users and sources; it is not for everyone on the host.
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd_ < 0)
        throw std::runtime_error("cannot open audit log " + path + ": " + std::strerror(errno));
    owns_fd_ = true;
}

AuditLog::~AuditLog() {
    if (owns_fd_) ::close(fd_);
}

void AuditLog::record(std::string_view event, nlohmann::json fields) {
    nlohmann::json line = {{"ts", utc_timestamp()}, {"event", event}};
    if (fields.is_object()) line.update(fields);
    // Replace invalid UTF-8 (a SASL user name is client-chosen bytes) instead of throwing.
    std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    text += '\n';
    std::lock_guard lock(mutex_);
    const char* p = text.data();
    std::size_t left = text.size();
    while (left > 0) {
        const ssize_t n = ::write(fd_, p, left);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;  // a full disk must not take the gateway down; stderr logs say why
        p += n;
        left -= static_cast<std::size_t>(n);
    }
}

}  // namespace vmgate::audit
