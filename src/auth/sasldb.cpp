#include "auth/sasldb.hpp"

#include "auth/cyrus_conn.hpp"
#include "auth/sasl_context.hpp"

#include <sasl/prop.h>
#include <sasl/sasl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>
#include <memory>

namespace vmgate::auth {

namespace {

// Cyrus' compiled-in sasldb_path on Debian.
constexpr const char* kDefaultSasldb = "/etc/sasldb2";

// Cyrus creates a sasldb with mode 0660 less the umask: with 027 it is readable by its owner's
// group (the daemon's, as Debian's /etc/sasldb2 is root:sasl 0640) and nobody else, whatever
// umask the operator's shell has. open(2) does not touch the mode of an existing file.
constexpr mode_t kSasldbUmask = 027;

class ScopedUmask {
public:
    explicit ScopedUmask(mode_t mask) : previous_(::umask(mask)) {}
    ~ScopedUmask() { ::umask(previous_); }
    ScopedUmask(const ScopedUmask&) = delete;
    ScopedUmask& operator=(const ScopedUmask&) = delete;

private:
    mode_t previous_;
};

bool valid_user(std::string_view user, std::string& error) {
    // '@' would make Cyrus read part of the name as a realm.
    if (user.empty() || user.find_first_of(std::string_view("@\0", 2)) != std::string_view::npos) {
        error = "user name must be non-empty, without '@' or NUL";
        return false;
    }
    return true;
}

bool valid_password(std::string_view password, std::string& error) {
    if (password.empty() || password.size() > std::numeric_limits<unsigned>::max()) {
        error = "password must be non-empty";
        return false;
    }
    return true;
}

// Cyrus reports a sasldb it may not open only as "Unable to open DB"; the system's reason names
// the problem. A missing file is fine: Cyrus creates it.
bool accessible(const std::string& path, std::string& error) {
    if (::access(path.c_str(), R_OK | W_OK) == 0 || errno == ENOENT) return true;
    error = path + ": " + std::strerror(errno);
    return false;
}

// sasl_setpass on a connection in realm; password "" with SASL_SET_DISABLE removes the user.
bool setpass(const core::SaslConfig& config, std::string_view user, const std::string& realm,
             std::string_view password, unsigned flags, std::string& error) {
    const CyrusConn conn = new_server_conn(config.service_spice, realm, "", "", error);
    if (!conn) return false;
    const std::string name(user);
    const ScopedUmask umask(kSasldbUmask);
    const int rc = sasl_setpass(conn.get(), name.c_str(), password.empty() ? nullptr : password.data(),
                                static_cast<unsigned>(password.size()), nullptr, 0, flags);
    if (rc != SASL_OK) {
        error = "sasl_setpass: " + error_detail(conn.get());
        return false;
    }
    return true;
}

struct PropCtxDeleter {
    void operator()(propctx* ctx) const noexcept { prop_dispose(&ctx); }
};

// Deletes the named properties of user through the auxprop store (sasldb), as Cyrus does for a
// property set to no value.
bool delete_properties(const core::SaslConfig& config, std::string_view user, const std::string& realm,
                       const std::vector<std::string>& properties, std::string& error) {
    const CyrusConn conn = new_server_conn(config.service_spice, realm, "", "", error);
    if (!conn) return false;
    std::unique_ptr<propctx, PropCtxDeleter> ctx(prop_new(0));
    std::vector<const char*> names;
    for (const auto& property : properties) names.push_back(property.c_str());
    names.push_back(nullptr);
    int rc = ctx ? prop_request(ctx.get(), names.data()) : SASL_NOMEM;
    for (std::size_t i = 0; rc == SASL_OK && i < properties.size(); ++i)
        rc = prop_set(ctx.get(), properties[i].c_str(), nullptr, 0);
    const std::string name(user);
    if (rc == SASL_OK) rc = sasl_auxprop_store(conn.get(), ctx.get(), name.c_str());
    if (rc != SASL_OK) {
        error = "sasl_auxprop_store: " + error_detail(conn.get());
        return false;
    }
    return true;
}

}  // namespace

bool set_password(const core::SaslConfig& config, std::string_view user, std::string_view realm,
                  std::string_view password, std::string& error) {
    if (!valid_user(user, error) || !valid_password(password, error)) return false;
    const auto context = SaslServerContext::create(config, error);
    if (!context) return false;
    const std::string qualifier = realm.empty() ? context->configured_realm() : std::string(realm);
    return setpass(config, user, qualifier, password, SASL_SET_CREATE, error);
}

std::string sasldb_path(const core::SaslConfig& config) {
    return config.sasldb.empty() ? kDefaultSasldb : config.sasldb;
}

std::optional<SasldbUsers> SasldbUsers::open(const core::SaslConfig& config, std::string& error) {
    if (config.pwcheck_method == "saslauthd") {
        error = "[sasl] pwcheck_method is \"saslauthd\": passwords are checked by saslauthd (PAM, LDAP, "
                "Kerberos behind it) and kept there, not in a sasldb; manage users in that system";
        return std::nullopt;
    }
    auto context = SaslServerContext::create(config, error);
    if (!context) return std::nullopt;
    return SasldbUsers(config, std::move(context));
}

SasldbUsers::SasldbUsers(core::SaslConfig config, std::shared_ptr<SaslServerContext> context)
    : config_(std::move(config)), context_(std::move(context)), path_(sasldb_path(config_)) {}

std::string SasldbUsers::realm_or_default(std::string_view realm) const {
    return realm.empty() ? context_->default_realm() : std::string(realm);
}

std::string SasldbUsers::principal(std::string_view user, std::string_view realm) const {
    return std::string(user) + "@" + realm_or_default(realm);
}

// Cyrus' own answer, from the password check's point of view: a user exists when the sasldb
// holds a password Cyrus can check for them.
std::optional<bool> SasldbUsers::exists(std::string_view user, const std::string& realm, std::string& error) const {
    const CyrusConn conn = new_server_conn(config_.service_spice, realm, "", "", error);
    if (!conn) return std::nullopt;
    const std::string name(user);
    const int rc = sasl_user_exists(conn.get(), nullptr, realm.c_str(), name.c_str());
    if (rc == SASL_OK) return true;
    if (rc == SASL_NOUSER) return false;
    error = "sasl_user_exists: " + error_detail(conn.get());
    return std::nullopt;
}

bool SasldbUsers::expect(bool present, std::string_view user, std::string_view realm, std::string& error) const {
    if (!valid_user(user, error) || !accessible(path_, error)) return false;
    const auto r = realm_or_default(realm);
    const auto found = exists(user, r, error);
    if (!found) return false;
    if (*found == present) return true;
    const std::string who = std::string(user) + "@" + r;
    error = present ? who + " is not in " + path_
                    : who + " already exists in " + path_ + " (`vmgate users passwd` changes a password)";
    return false;
}

bool SasldbUsers::add(std::string_view user, std::string_view realm, std::string_view password,
                      std::string& error) const {
    const auto r = realm_or_default(realm);
    return valid_password(password, error) && expect(false, user, r, error) &&
           setpass(config_, user, r, password, SASL_SET_CREATE, error);
}

bool SasldbUsers::change_password(std::string_view user, std::string_view realm, std::string_view password,
                                  std::string& error) const {
    const auto r = realm_or_default(realm);
    return valid_password(password, error) && expect(true, user, r, error) &&
           setpass(config_, user, r, password, 0, error);
}

// SASL_SET_DISABLE is how saslpasswd2 -d removes a user: Cyrus deletes userPassword and tells
// every mechanism to drop its own secret. Properties no loaded plugin owns (an older sasldb's
// cmusaslsecretDIGEST-MD5, ...) would survive it and keep the user listed, so they go too.
bool SasldbUsers::remove(std::string_view user, std::string_view realm, std::string& error) const {
    const auto r = realm_or_default(realm);
    return expect(true, user, r, error) && setpass(config_, user, r, "", SASL_SET_DISABLE, error) &&
           remove_leftovers(user, r, error);
}

bool SasldbUsers::remove_leftovers(std::string_view user, const std::string& realm, std::string& error) const {
    const auto entries = sasldb_entries(path_, error);
    if (!entries) return false;
    std::vector<std::string> properties;
    for (const auto& e : *entries)
        if (e.user == user && e.realm == realm) properties.push_back(e.property);
    return properties.empty() || delete_properties(config_, user, realm, properties, error);
}

}  // namespace vmgate::auth
