// The commands that talk to the running daemon over its admin socket (admin/admin_server.hpp):
// ticket, sessions, sessions kill, reload and vms. Each prints what it got and returns the exit code:
// 0 done, 1 the daemon refused or could not be reached ("vmgate: ..." on stderr), 2 usage error.
#pragma once

#include "cli/config_file.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>

namespace vmgate::cli {

// Where the daemon listens: socket_path when given, else gateway.admin_socket of config_path.
struct AdminTarget {
    std::string config_path = default_config_path;
    std::string socket_path;
};

struct TicketArgs {
    std::string user;
    std::string vm;
    std::string ttl = "60s";
    std::string protocol = "spice";
};

// Which sessions `sessions kill` ends; "" = not given. Exactly one must be given.
struct KillArgs {
    std::string id;
    std::string vm;
    std::string user;
};

int run_ticket(const AdminTarget& target, const TicketArgs& args);
int run_sessions(const AdminTarget& target, bool json);
int run_kill(const AdminTarget& target, const KillArgs& args);
int run_reload(const AdminTarget& target);
// 0 when every display of every VM is reachable, 1 when one is not or the daemon cannot be asked.
int run_vms(const AdminTarget& target, bool json);

// The daemon's one-time ticket for args.user on args.vm, valid for ttl (args.ttl is not read);
// nullopt after printing why there is none.
std::optional<std::string> request_ticket(const AdminTarget& target, const TicketArgs& args,
                                          std::chrono::seconds ttl);
// ---- what the commands print, from the daemon's replies (pure) ----

// "512 B", "1.2 MiB": binary units, one decimal.
std::string human_bytes(std::uint64_t bytes);

// The `vmgate sessions` table of the daemon's session objects, or "no live sessions".
std::string sessions_table(const nlohmann::json& sessions);

// "ended session 3: alice@REALM on vm1"
std::string ended_line(const nlohmann::json& session);

struct KillSelector {
    nlohmann::json request;  // {"op":"kill", one of "id", "vm", "user"}
    std::string what;        // "session 3", "VM vm1", "user alice": for "no live session matched ..."
};

// The selector for the one of ID, --vm, --user given, or the usage error in words.
std::variant<KillSelector, std::string> kill_selector(const KillArgs& args);

// What `vmgate reload` prints when the daemon applied the new configuration.
std::string reload_summary(const nlohmann::json& reply);

// What `vmgate vms` prints from the daemon's `vms` reply: the libvirt inventory's state, then one
// block per VM with each display's upstream and whether it is reachable.
std::string vms_listing(const nlohmann::json& reply);
// Whether every display in a `vms` reply is reachable.
bool all_reachable(const nlohmann::json& reply);

}  // namespace vmgate::cli
