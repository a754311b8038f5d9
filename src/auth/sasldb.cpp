#include "auth/sasldb.hpp"

#include "auth/cyrus_conn.hpp"
#include "auth/sasl_context.hpp"

#include <sasl/sasl.h>

#include <limits>

namespace vmgate::auth {

namespace {

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

}  // namespace

bool set_password(const core::SaslConfig& config, std::string_view user, std::string_view realm,
                  std::string_view password, std::string& error) {
    if (!valid_user(user, error) || !valid_password(password, error)) return false;
    const auto context = SaslServerContext::create(config, error);
    if (!context) return false;
    const std::string qualifier = realm.empty() ? context->configured_realm() : std::string(realm);
    const CyrusConn conn = new_server_conn(config.service_spice, qualifier, "", "", error);
    if (!conn) return false;
    const std::string name(user);
    const int rc =
        sasl_setpass(conn.get(), name.c_str(), password.data(),
                     static_cast<unsigned>(password.size()), nullptr, 0, SASL_SET_CREATE);
    if (rc != SASL_OK) {
        error = "sasl_setpass: " + error_detail(conn.get());
        return false;
    }
    return true;
}

}  // namespace vmgate::auth
