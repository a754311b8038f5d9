#include "doctor/file_checks.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace vmgate::doctor {
namespace {

constexpr unsigned owner_read = 0400;
constexpr unsigned group_read = 0040;
constexpr unsigned group_write = 0020;
constexpr unsigned other_read = 0004;
constexpr unsigned other_write = 0002;

std::string owner_text(const FileFacts& f) {
    const std::string user = f.owner.empty() ? std::to_string(f.uid) : f.owner;
    const std::string group = f.group.empty() ? std::to_string(f.gid) : f.group;
    return user + ":" + group;
}

bool owned_by_root_or(const FileFacts& f, const Account& a) { return f.uid == 0 || f.uid == a.uid; }

// The one-line fix for any secret: give it to the account alone.
std::string private_fix(const FileFacts& f, const Account& a) {
    return fmt::format("chown {}: {} && chmod 0600 {}", a.name, f.path, f.path);
}

Findings not_there(const FileFacts& f, const std::string& id_prefix, const std::string& what, Area area,
                   const std::string& create_fix) {
    if (!f.error.empty())
        return {{Severity::error, area, id_prefix + "-missing", f.path, what + " cannot be examined: " + f.error,
                 "make " + f.path + " a readable regular file"}};
    return {{Severity::error, area, id_prefix + "-missing", f.path, what + " does not exist", create_fix}};
}

}  // namespace

std::string mode_text(unsigned mode) { return fmt::format("{:04o}", mode & 07777); }

bool readable_by(const FileFacts& f, const Account& a) {
    if (a.uid == 0) return true;
    if (f.uid == a.uid) return (f.mode & owner_read) != 0;
    if (f.gid == a.gid) return (f.mode & group_read) != 0;
    return (f.mode & other_read) != 0;
}

Findings check_private_file(const FileFacts& f, const Account& a, const PrivateFileKind& kind) {
    if (!f.exists) return not_there(f, kind.id_prefix, kind.what, kind.area, kind.create_fix);
    Findings out;
    const std::string facts = fmt::format("owner {}, mode {}", owner_text(f), mode_text(f.mode));
    if (!owned_by_root_or(f, a))
        out.push_back({Severity::error, kind.area, kind.id_prefix + "-owner", f.path,
                       fmt::format("{} is owned by {}, who can read and change it ({}); only root or {} may own it",
                                   kind.what, f.owner.empty() ? std::to_string(f.uid) : f.owner, facts, a.name),
                       private_fix(f, a)});
    std::vector<std::string> who;
    if (f.mode & other_read) who.push_back("every user can read it");
    if (f.mode & other_write) who.push_back("every user can change it");
    if ((f.mode & group_read) && f.gid != a.gid)
        who.push_back(fmt::format("group {} can read it", f.group.empty() ? std::to_string(f.gid) : f.group));
    if ((f.mode & group_write) && f.gid != a.gid)
        who.push_back(fmt::format("group {} can change it", f.group.empty() ? std::to_string(f.gid) : f.group));
    if (!who.empty())
        out.push_back({Severity::error, kind.area, kind.id_prefix + "-permissions", f.path,
                       fmt::format("{}: {} ({})", kind.what, fmt::join(who, ", "), facts), private_fix(f, a)});
    if (!readable_by(f, a))
        out.push_back({Severity::error, kind.area, kind.id_prefix + "-access", f.path,
                       fmt::format("{} cannot be read by {}, the user vmgate runs as ({}): vmgate would fail",
                                   kind.what, a.name, facts),
                       private_fix(f, a)});
    return out;
}

Findings check_certificate_file(const FileFacts& f, const Account& a) {
    if (!f.exists)
        return not_there(f, "tls-cert", "TLS certificate ([tls] cert)", Area::tls,
                         "set [tls] cert to the server certificate (PEM), or create it there");
    Findings out;
    const std::string facts = fmt::format("owner {}, mode {}", owner_text(f), mode_text(f.mode));
    const std::string fix = fmt::format("chown root: {} && chmod 0644 {}", f.path, f.path);
    if (!owned_by_root_or(f, a))
        out.push_back({Severity::warning, Area::tls, "tls-cert-permissions", f.path,
                       fmt::format("the certificate is owned by {}, who can replace it ({})",
                                   f.owner.empty() ? std::to_string(f.uid) : f.owner, facts),
                       fix});
    if (f.mode & (group_write | other_write))
        out.push_back({Severity::warning, Area::tls, "tls-cert-permissions", f.path,
                       fmt::format("the certificate can be replaced by {} ({})",
                                   (f.mode & other_write) ? "every user" : "its group", facts),
                       fix});
    if (!readable_by(f, a))
        out.push_back({Severity::error, Area::tls, "tls-cert-access", f.path,
                       fmt::format("{} cannot read the certificate ({}): vmgate would fail", a.name, facts), fix});
    return out;
}

}  // namespace vmgate::doctor
