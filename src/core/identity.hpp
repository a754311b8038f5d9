// Who a downstream client proved to be. Shared by auth (which produces it), policy (which judges
// it), sessions and audit.
#pragma once

#include <string>

namespace vmgate::core {

struct Identity {
    std::string user;
    std::string realm;      // "" = no realm given
    std::string mechanism;  // "SCRAM-SHA-256", "PLAIN", "ticket", ...
    bool same_principal(const Identity& o) const { return user == o.user && realm == o.realm; }
    std::string to_string() const { return realm.empty() ? user : user + "@" + realm; }
};

}  // namespace vmgate::core
