// Who a downstream client proved to be. Shared by auth (which produces it), policy (which judges
// it), sessions and audit.
#pragma once

#include <string>
#include <string_view>
#include <utility>

namespace vmgate::core {

struct Identity {
    std::string user;
    std::string realm;      // "" = no realm given
    std::string mechanism;  // "SCRAM-SHA-256", "PLAIN", "ticket", ...
    // "user@realm" split at the last '@', as Cyrus splits it; a bare name has realm "".
    static std::pair<std::string_view, std::string_view> split(std::string_view principal) {
        const auto at = principal.rfind('@');
        if (at == std::string_view::npos) return {principal, {}};
        return {principal.substr(0, at), principal.substr(at + 1)};
    }
    static Identity parse(std::string_view principal, std::string mechanism = "") {
        const auto [user, realm] = split(principal);
        return {std::string(user), std::string(realm), std::move(mechanism)};
    }

    bool same_principal(const Identity& o) const { return user == o.user && realm == o.realm; }
    std::string to_string() const { return realm.empty() ? user : user + "@" + realm; }
};

}  // namespace vmgate::core
