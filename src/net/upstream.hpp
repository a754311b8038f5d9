// Connecting to a VM's display server (QEMU): unix socket, loopback TCP, or a connection QEMU
// takes over QMP (qmp_upstream.hpp).
#pragma once

#include "core/config.hpp"
#include "net/qmp_upstream.hpp"
#include "net/socket_stream.hpp"

#include <asio/any_io_executor.hpp>

#include <memory>
#include <string>

namespace vmgate::net {

// A connection to the `display` server (SPICE or VNC) `upstream` names; qmp: upstreams ask
// `qmp` for it. Throws std::system_error or std::runtime_error; the message names the upstream
// as configured.
asio::awaitable<std::unique_ptr<SocketStream>> connect_upstream(asio::any_io_executor executor,
                                                                const core::UpstreamConfig& upstream,
                                                                core::Protocol display, QmpUpstreams& qmp);

// The display password QEMU expects (tcp upstreams with password_file), "" when none.
// Read at every connection so a rotated password needs no restart. Throws std::runtime_error.
std::string read_upstream_password(const core::UpstreamConfig& upstream);

}  // namespace vmgate::net
