// What every connection of a running gateway shares. Built once by Gateway::start(); the
// members are either immutable or thread-safe themselves.
#pragma once

#include "audit/audit_log.hpp"
#include "auth/sasl_context.hpp"
#include "auth/ticket_key.hpp"
#include "auth/ticket_key_pool.hpp"
#include "auth/ticket_store.hpp"
#include "core/civil_time.hpp"
#include "core/config.hpp"
#include "net/tls.hpp"
#include "policy/policy.hpp"
#include "session/registry.hpp"

#include <asio/any_io_executor.hpp>

#include <atomic>
#include <cstdint>
#include <memory>

namespace vmgate::net {

struct GatewayContext {
    const core::Config& config;
    audit::AuditLog& audit;
    const core::Clock& clock;
    const policy::Evaluator& policy;
    session::Registry& sessions;
    auth::TicketStore& tickets;
    auth::TicketKeyPool* ticket_keys;                 // null when no listener offers tickets
    asio::any_io_executor key_generation;             // where keys are made when the pool is dry
    std::shared_ptr<auth::SaslServerContext> sasl;     // null when no listener offers SASL
    const TlsServerContext* tls;                       // null when no listener uses TLS
    std::atomic<std::uint64_t> next_connection_id{1};
};

}  // namespace vmgate::net
