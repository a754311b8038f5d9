// The address a listener or the metrics endpoint binds: an IP address as it is, a host name
// resolved once, when the socket is bound.
#pragma once

#include <asio/ip/tcp.hpp>

#include <cstdint>
#include <string>

namespace vmgate::net {

// `what` names the setting in the error ("listener 0.0.0.0:5900"); throws std::runtime_error.
asio::ip::tcp::endpoint resolve_endpoint(const std::string& host, std::uint16_t port, const std::string& what);

}  // namespace vmgate::net
