// The load patterns. Each returns its figures as one JSON object, which vmgate_bench prints as a
// line for bench/run.py. With a ticket the client logs into vmgate as a SPICE client first;
// without one the data phase starts right after TLS (stunnel, haproxy, or the sink itself).
// Bulk and ping-pong also run as VNC clients (Login::vnc), with their data framed as RFB.
#pragma once

#include "channel.hpp"
#include "vnc_login.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace vmgate::bench {

// How a bulk or ping-pong channel reaches its data phase, and so how its data is framed
// (bench_wire.hpp).
struct Login {
    std::string spice_ticket;     // SPICE framing; log into vmgate over SPICE first unless empty
    std::optional<VncLogin> vnc;  // RFB framing, after this VNC handshake
};

// (a) One channel sends `bytes` in large writes; timed until the sink acknowledged the last.
nlohmann::json run_bulk(const Target& target, const Login& login, std::uint64_t bytes);

// (b) `count` sequential 64-byte round trips on one channel, after a short warm-up.
nlohmann::json run_pingpong(const Target& target, const Login& login, std::size_t count);

// (c) New channels, one after another on each of `concurrency` threads, until `duration` has
// passed or the tickets ran out. With tickets: TLS + SPICE main-channel login + MAIN_INIT
// through; without: TLS + one ping through. A ticket line is "TICKET" (log in at `target`) or
// "HOST:PORT TICKET"; thread t uses lines t, t + concurrency, ... `limit` (0: none) ends the run
// after that many channels were attempted.
nlohmann::json run_handshakes(const Target& target, const std::vector<std::string>& ticket_lines,
                              std::chrono::duration<double> duration, unsigned concurrency, std::size_t limit);

// (d) Opens `channels` channels (with a ticket: one main channel, the rest display channels of
// its session), each proven end to end by a ping; prints "ready"; with `hold` keeps them open
// until stdin reaches EOF.
nlohmann::json run_idle(const Target& target, const std::string& ticket, std::size_t channels,
                        unsigned concurrency, bool hold);

}  // namespace vmgate::bench
