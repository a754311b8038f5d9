// Creating users in the sasldb that the gateway authenticates against, so that vmgate (and its
// demo) needs no saslpasswd2. The entries are the ones saslpasswd2 writes: sasldblistusers2
// lists them and saslpasswd2 can change them.
#pragma once

#include "core/config.hpp"

#include <string>
#include <string_view>

namespace vmgate::auth {

// Creates user@realm, or sets a new password if it exists. realm "" = the default realm of the
// SaslServerContext for config (which this initialises, if nothing has yet).
bool set_password(const core::SaslConfig& config, std::string_view user, std::string_view realm,
                  std::string_view password, std::string& error);

}  // namespace vmgate::auth
