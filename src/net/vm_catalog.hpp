// `vmgate vms`: every VM the running gateway knows (its [[vm]] sections and the libvirt
// inventory), with each display's upstream and whether vmgate can reach it right now.
#pragma once

#include "net/generation.hpp"
#include "net/upstream.hpp"

#include <asio/awaitable.hpp>
#include <nlohmann/json.hpp>

namespace vmgate::net {

// {"ok": true, "libvirt": {...}, "vms": [{"name", "uuid", "source", "allow_rules", "spice", "vnc"}]}
// where each display is null or {"upstream", "reachable", "problem"}. Reachable means a display
// connection was just opened through the upstream as a client's would be (and closed at once,
// before any handshake); all are tried at the same time, each for at most `probe_timeout`.
asio::awaitable<nlohmann::json> describe_vms(std::shared_ptr<const Generation> generation, UpstreamBrokers brokers);

}  // namespace vmgate::net
