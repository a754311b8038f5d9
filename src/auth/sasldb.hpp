// The users in the sasldb that the gateway authenticates against: created, changed and removed
// through the Cyrus API (sasl_setpass, sasl_user_exists), so that vmgate and its demo need no
// saslpasswd2 and every entry is one saslpasswd2 writes: sasldblistusers2 lists them and
// saslpasswd2 can change them, and users saslpasswd2 made are managed here alike.
//
// Listing is the exception. Cyrus has no public call that enumerates users (sasldblistusers2
// links the library's internal _sasldb_* functions statically), so sasldb_entries() reads the
// file with the database library Debian's sasldb plugin is built on, Berkeley DB, through its
// public API, and splits each key the way Cyrus writes it: user NUL realm NUL property.
#pragma once

#include "core/config.hpp"

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vmgate::auth {

class SaslServerContext;

// Creates user@realm, or sets a new password if it exists. realm "" = the default realm of the
// SaslServerContext for config (which this initialises, if nothing has yet).
bool set_password(const core::SaslConfig& config, std::string_view user, std::string_view realm,
                  std::string_view password, std::string& error);

// The sasldb file of config: [sasl] sasldb, or Cyrus' default when that is "".
std::string sasldb_path(const core::SaslConfig& config);

// One record of a sasldb: one property (userPassword, ...) of user@realm.
struct SasldbEntry {
    std::string user;
    std::string realm;
    std::string property;
};

// A key as Cyrus' sasldb writes it, "user\0realm\0property"; nullopt for anything else.
std::optional<SasldbEntry> parse_sasldb_key(std::string_view key);

// Every entry of the sasldb file at path, in file order; nullopt (and error) when the file
// cannot be read as a Berkeley DB sasldb.
std::optional<std::vector<SasldbEntry>> sasldb_entries(const std::string& path, std::string& error);

// `vmgate users`: one user at a time in the sasldb of a [sasl] configuration. realm "" means the
// default realm ([sasl] default_realm, else the host name Cyrus resolves). A file this creates
// gets mode 0640 whatever the caller's umask; an existing file keeps its mode.
class SasldbUsers {
public:
    // Initialises Cyrus for config. Refuses pwcheck_method "saslauthd": those passwords are not
    // in a sasldb.
    static std::optional<SasldbUsers> open(const core::SaslConfig& config, std::string& error);

    // "alice@REALM", the realm "" stands for filled in: how messages name the user.
    std::string principal(std::string_view user, std::string_view realm) const;

    // True when user@realm exists (present) or does not (!present); otherwise false, and error
    // says what is there or missing, in words.
    bool expect(bool present, std::string_view user, std::string_view realm, std::string& error) const;

    // Each fails, saying why, when user@realm already exists (add) or does not (the others).
    bool add(std::string_view user, std::string_view realm, std::string_view password, std::string& error) const;
    bool change_password(std::string_view user, std::string_view realm, std::string_view password,
                         std::string& error) const;
    bool remove(std::string_view user, std::string_view realm, std::string& error) const;

    const std::string& path() const { return path_; }

private:
    SasldbUsers(core::SaslConfig config, std::shared_ptr<SaslServerContext> context);

    std::string realm_or_default(std::string_view realm) const;
    std::optional<bool> exists(std::string_view user, const std::string& realm, std::string& error) const;
    bool remove_leftovers(std::string_view user, const std::string& realm, std::string& error) const;

    core::SaslConfig config_;
    std::shared_ptr<SaslServerContext> context_;
    std::string path_;
};

}  // namespace vmgate::auth
