#include "policy/policy.hpp"

#include <grp.h>
#include <pwd.h>

#include <cerrno>
#include <optional>
#include <string>
#include <vector>

namespace vmgate::policy {

namespace {

// Start size for the string buffer of the *_r lookups; grown on ERANGE because sysconf() may
// answer -1 and a group with many members exceeds any fixed size.
constexpr std::size_t kInitialBuffer = 4096;
constexpr std::size_t kMaxBuffer = std::size_t{1} << 24;

// Calls lookup(buffer) until it stops failing with ERANGE; returns its final error code.
template <typename Lookup>
int with_growing_buffer(std::vector<char>& buffer, Lookup lookup) {
    buffer.resize(kInitialBuffer);
    int rc = lookup(buffer);
    while (rc == ERANGE && buffer.size() < kMaxBuffer) {
        buffer.resize(buffer.size() * 2);
        rc = lookup(buffer);
    }
    return rc;
}

std::optional<gid_t> primary_gid(const std::string& user) {
    passwd entry{};
    passwd* found = nullptr;
    std::vector<char> buffer;
    const int rc = with_growing_buffer(buffer, [&](std::vector<char>& b) {
        return getpwnam_r(user.c_str(), &entry, b.data(), b.size(), &found);
    });
    if (rc != 0 || found == nullptr) return std::nullopt;
    return entry.pw_gid;
}

bool listed_member(const group& g, const std::string& user) {
    for (char** member = g.gr_mem; member != nullptr && *member != nullptr; ++member)
        if (user == *member) return true;
    return false;
}

}  // namespace

bool SystemGroupResolver::user_in_unix_group(std::string_view user, std::string_view group_name) const {
    // getgrnam_r and friends read C strings: an embedded NUL would name someone else.
    if (user.find('\0') != std::string_view::npos || group_name.find('\0') != std::string_view::npos)
        return false;
    const std::string user_c(user);
    const std::string group_c(group_name);
    group entry{};
    group* found = nullptr;
    std::vector<char> buffer;
    const int rc = with_growing_buffer(buffer, [&](std::vector<char>& b) {
        return getgrnam_r(group_c.c_str(), &entry, b.data(), b.size(), &found);
    });
    if (rc != 0 || found == nullptr) return false;
    if (listed_member(entry, user_c)) return true;
    // The primary group of a user is usually not repeated in gr_mem.
    const auto gid = primary_gid(user_c);
    return gid && *gid == entry.gr_gid;
}

}  // namespace vmgate::policy
