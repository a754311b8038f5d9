// Connecting to a VM's display server (QEMU): unix socket or loopback TCP.
#pragma once

#include "core/config.hpp"
#include "net/socket_stream.hpp"

#include <asio/any_io_executor.hpp>

#include <memory>
#include <string>

namespace vmgate::net {

// Throws std::system_error; the message names the upstream as configured.
asio::awaitable<std::unique_ptr<SocketStream>> connect_upstream(asio::any_io_executor executor,
                                                                const core::UpstreamConfig& upstream);

// The display password QEMU expects (tcp upstreams with password_file), "" when none.
// Read at every connection so a rotated password needs no restart. Throws std::runtime_error.
std::string read_upstream_password(const core::UpstreamConfig& upstream);

}  // namespace vmgate::net
