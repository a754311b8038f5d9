// What every connection of a running gateway shares. Built once by Gateway::start(); the
// members are either immutable or thread-safe themselves. The configuration is not here: each
// connection holds the Generation it was accepted under.
#pragma once

#include "audit/audit_log.hpp"
#include "auth/ticket_store.hpp"
#include "core/civil_time.hpp"
#include "net/gateway_metrics.hpp"
#include "net/libvirt_upstream.hpp"
#include "net/qmp_upstream.hpp"
#include "session/registry.hpp"

#include <asio/any_io_executor.hpp>

#include <atomic>
#include <cstdint>

namespace vmgate::net {

struct GatewayContext {
    audit::AuditLog& audit;
    const core::Clock& clock;
    session::Registry& sessions;
    auth::TicketStore& tickets;
    asio::any_io_executor key_generation;  // where ticket keys are made when the pool is dry
    QmpUpstreams& qmp_upstreams;           // the QMP connections of qmp: upstreams
    LibvirtUpstreams& libvirt_upstreams;   // libvirt: upstreams and the libvirt inventory
    GatewayMetrics& metrics;
    std::atomic<std::uint64_t> next_connection_id{1};
};

}  // namespace vmgate::net
