// Connecting to a VM's display server (QEMU): unix socket, loopback TCP, or a connection QEMU
// takes over QMP (qmp_upstream.hpp) or libvirt hands over (libvirt_upstream.hpp).
#pragma once

#include "core/config.hpp"
#include "net/libvirt_upstream.hpp"
#include "net/qmp_upstream.hpp"
#include "net/socket_stream.hpp"

#include <asio/any_io_executor.hpp>

#include <memory>
#include <string>

namespace vmgate::net {

// Who hands over display connections for qmp: and libvirt: upstreams.
struct UpstreamBrokers {
    QmpUpstreams& qmp;
    LibvirtUpstreams& libvirt;
};

// A connection to the `display` server (SPICE or VNC) `upstream` names. Throws std::system_error
// or std::runtime_error; the message names the upstream as configured.
asio::awaitable<std::unique_ptr<SocketStream>> connect_upstream(asio::any_io_executor executor,
                                                                const core::UpstreamConfig& upstream,
                                                                core::Protocol display, UpstreamBrokers brokers);

// The display password QEMU expects (tcp upstreams with password_file), "" when none.
// Read at every connection so a rotated password needs no restart. Throws std::runtime_error.
std::string read_upstream_password(const core::UpstreamConfig& upstream);

}  // namespace vmgate::net
