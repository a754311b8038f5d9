// Ownership and permission checks of the files vmgate keeps secrets in (the TLS key, the sasldb)
// and of its certificate. Pure: the facts of a file (from stat) in, findings out.
#pragma once

#include "doctor/finding.hpp"

#include <string>

namespace vmgate::doctor {

// A file as stat(2) saw it (following symlinks).
struct FileFacts {
    std::string path;      // as shown in findings and fixes
    bool exists = false;
    std::string error;     // stat failed for another reason than "does not exist"
    unsigned mode = 0;     // permission bits only (07777)
    unsigned uid = 0;
    unsigned gid = 0;
    std::string owner;     // user name of uid ("" when it has none)
    std::string group;     // group name of gid ("" when it has none)
};

// The user vmgate runs as.
struct Account {
    std::string name;
    unsigned uid = 0;
    unsigned gid = 0;  // primary group: the one group that may share the secrets
    std::string group;
};

// Which secret a private file holds: names its check ids ("tls-key-..." / "sasldb-..."), what
// it is called in problems, and how to create it when it is missing.
struct PrivateFileKind {
    std::string id_prefix;   // "tls-key"
    std::string what;        // "TLS private key ([tls] key)"
    std::string create_fix;  // one line that creates it
    Area area = Area::tls;
};

// A secret: must exist, be readable by `account`, owned by root or `account`, and readable or
// writable by nobody else, except reading by `account`'s own primary group.
Findings check_private_file(const FileFacts& file, const Account& account, const PrivateFileKind& kind);

// The server certificate ([tls] cert): public, so world-readable is fine; it must be readable by
// `account` and changeable only by root or `account`.
Findings check_certificate_file(const FileFacts& file, const Account& account);

// Whether `account` can read a file with these facts (root reads everything).
bool readable_by(const FileFacts& file, const Account& account);

// "0640"
std::string mode_text(unsigned mode);

}  // namespace vmgate::doctor
