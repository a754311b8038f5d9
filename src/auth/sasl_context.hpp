// The process-wide Cyrus SASL server library, configured from [sasl] in vmgate's own config file.
//
// Cyrus keeps its server state in globals: sasl_server_init() can run only once per process and
// its options cannot be changed afterwards. SaslServerContext is therefore a process singleton:
// the first create() initialises Cyrus, a later create() with the same options returns the same
// context, and one with different options is an error (restart the process to change them).
// Cyrus stays initialised until the process exits.
#pragma once

#include "core/config.hpp"

#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace vmgate::auth {

enum class SaslLogLevel { error, warning, note };
using SaslLogger = std::function<void(SaslLogLevel, std::string_view message)>;

class SaslServerContext {
public:
    // Error texts name the offending [sasl] key. Needs no /etc/sasl2 file and never reads one.
    static std::shared_ptr<SaslServerContext> create(const core::SaslConfig& config,
                                                     std::string& error);

    SaslServerContext(const SaslServerContext&) = delete;
    SaslServerContext& operator=(const SaslServerContext&) = delete;

    // [sasl] default_realm, or else the host name Cyrus resolves (the realm saslpasswd2 uses
    // without -u).
    std::string default_realm() const { return default_realm_; }
    // The realm to hand to sasl_server_new: "" lets Cyrus apply its own default.
    const std::string& configured_realm() const { return configured_realm_; }

    // True when the password check itself is per realm (sasldb keys are user@realm). saslauthd
    // checks the local account and ignores the realm, so a realm there proves nothing.
    bool backend_checks_realm() const { return backend_checks_realm_; }

    // Cyrus' log messages (plugin warnings, sasldb errors) go here; thread-safe, process-wide.
    void set_logger(SaslLogger logger);

private:
    SaslServerContext(std::string configured_realm, std::string default_realm, bool backend_checks_realm);

    std::string configured_realm_;
    std::string default_realm_;
    bool backend_checks_realm_;
};

}  // namespace vmgate::auth
