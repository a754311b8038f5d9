// One loaded configuration and what is built from it. A connection keeps the generation it was
// accepted under for its whole life (its listener and VM settings stay valid); a reload builds a
// new generation that only later connections and the session supervisor see.
#pragma once

#include "auth/sasl_context.hpp"
#include "auth/ticket_key_pool.hpp"
#include "core/config.hpp"
#include "net/tls.hpp"
#include "policy/policy.hpp"

#include <memory>
#include <optional>
#include <string>

namespace vmgate::net {

struct Generation {
    core::Config config;
    std::optional<policy::Evaluator> policy;  // refers to `config`: a Generation never moves
    std::shared_ptr<const TlsServerContext> tls;        // null when no listener uses TLS
    std::shared_ptr<auth::SaslServerContext> sasl;      // null when no listener checks passwords
    std::shared_ptr<auth::TicketKeyPool> ticket_keys;   // null when no SPICE listener offers tickets
    std::string default_realm;  // what a bare user name stands for, in rules and certificates
};

}  // namespace vmgate::net
