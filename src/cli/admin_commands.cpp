#include "cli/admin_commands.hpp"

#include "admin/admin_server.hpp"
#include "cli/time_text.hpp"
#include "core/identity.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>  // fmt::join lives here from fmt 11 on

#include <array>
#include <charconv>
#include <functional>
#include <iostream>
#include <optional>
#include <vector>

namespace vmgate::cli {

namespace {

using nlohmann::json;

constexpr std::uint64_t kBytesPerKiB = 1024;
constexpr std::array<std::string_view, 6> kBinaryUnits{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
// The largest value that prints below 1024.0 with one decimal; anything above moves up a unit.
constexpr double kLargestShownInUnit = 1023.95;

// ---- talking to the daemon ----

// The socket named on the command line, else the one the configuration file names; nullopt
// after printing why there is none.
std::optional<std::string> socket_path(const AdminTarget& target) {
    if (!target.socket_path.empty()) return target.socket_path;
    const auto result = core::load_config_file(target.config_path);
    if (result.config) return result.config->gateway.admin_socket;
    print_config_errors(result.errors, target.config_path);
    std::cerr << "vmgate: the admin socket is named in that file; fix it or give --admin-socket PATH\n";
    return std::nullopt;
}

// The daemon's reply, or nullopt after printing why there is none.
std::optional<json> ask_daemon(const AdminTarget& target, const json& request) {
    const auto path = socket_path(target);
    if (!path) return std::nullopt;
    try {
        return admin::call(*path, request);
    } catch (const std::exception& e) {
        std::cerr << "vmgate: " << e.what() << "\n";
        return std::nullopt;
    }
}

// Prints a {"ok":false,"error":TEXT} reply as "vmgate: TEXT"; false for an accepted request.
bool refused(const json& reply) {
    const auto ok = reply.find("ok");
    if (ok != reply.end() && *ok == true) return false;
    const auto error = reply.find("error");
    const bool has_text = error != reply.end() && error->is_string();
    std::cerr << "vmgate: " << (has_text ? error->get<std::string>() : "the daemon refused without a reason")
              << "\n";
    return true;
}

// The daemon may be older or newer than this command: a reply without a field the protocol
// promises is reported, not crashed on.
int print_reply(const std::function<std::string()>& render) {
    try {
        std::cout << render();
        return 0;
    } catch (const json::exception& e) {
        std::cerr << "vmgate: unexpected reply from the daemon: " << e.what() << "\n";
        return 1;
    }
}

// ---- sessions ----

constexpr std::array<std::string_view, 9> kColumns{"ID",    "VM",       "USER", "MECH", "SOURCE",
                                                   "SINCE", "CHANNELS", "IN",   "OUT"};
using Row = std::array<std::string, kColumns.size()>;

bool right_aligned(std::size_t column) { return column == 0 || column >= 7; }  // the numbers

std::string principal(const json& session) {
    return core::Identity{session.at("user").get<std::string>(), session.at("realm").get<std::string>(), ""}
        .to_string();
}

// Local time, as the policy reads it; the daemon's own text when it is not the promised UTC form.
std::string since_text(const json& session) {
    const auto since = session.at("since").get<std::string>();
    const auto t = parse_utc_timestamp(since);
    return t ? local_timestamp_text(*t) : since;
}

std::string channels_text(const json& session) {
    const auto channels = session.at("channels").get<std::vector<std::string>>();
    return channels.empty() ? "-" : fmt::format("{}", fmt::join(channels, ","));
}

Row row_of(const json& s) {
    return {std::to_string(s.at("id").get<std::uint64_t>()),
            s.at("vm").get<std::string>(),
            principal(s),
            s.at("mechanism").get<std::string>(),
            s.at("source").get<std::string>(),
            since_text(s),
            channels_text(s),
            human_bytes(s.at("bytes_from_client").get<std::uint64_t>()),
            human_bytes(s.at("bytes_to_client").get<std::uint64_t>())};
}

std::string render_table(const std::vector<Row>& rows) {
    std::array<std::size_t, kColumns.size()> width{};
    for (const auto& row : rows)
        for (std::size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
    std::string out;
    for (const auto& row : rows) {
        std::string line;
        for (std::size_t c = 0; c < row.size(); ++c) {
            if (c > 0) line += "  ";
            line += right_aligned(c) ? fmt::format("{:>{}}", row[c], width[c])
                                     : fmt::format("{:<{}}", row[c], width[c]);
        }
        out += line.substr(0, line.find_last_not_of(' ') + 1) + "\n";
    }
    return out;
}

// ---- kill ----

std::optional<std::uint64_t> parse_session_id(std::string_view text) {
    std::uint64_t id = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), id);
    if (error != std::errc{} || end != text.data() + text.size() || id == 0) return std::nullopt;
    return id;
}

// ---- reload ----

// "2 (1, 4)" or "none"
std::string id_list(const json& ids) {
    if (ids.empty()) return "none";
    std::vector<std::uint64_t> numbers;
    for (const auto& id : ids) numbers.push_back(id.get<std::uint64_t>());
    return fmt::format("{} ({})", numbers.size(), fmt::join(numbers, ", "));
}

std::string text_list(const json& items) {
    if (items.empty()) return "none";
    return fmt::format("{}", fmt::join(items.get<std::vector<std::string>>(), ", "));
}

}  // namespace

std::string human_bytes(std::uint64_t bytes) {
    if (bytes < kBytesPerKiB) return fmt::format("{} B", bytes);
    double value = static_cast<double>(bytes) / kBytesPerKiB;
    std::size_t unit = 0;
    while (value >= kLargestShownInUnit && unit + 1 < kBinaryUnits.size()) {
        value /= kBytesPerKiB;
        ++unit;
    }
    return fmt::format("{:.1f} {}", value, kBinaryUnits[unit]);
}

std::string sessions_table(const json& sessions) {
    if (sessions.empty()) return "no live sessions\n";
    std::vector<Row> rows{Row{}};
    std::ranges::copy(kColumns, rows.front().begin());
    for (const auto& s : sessions) rows.push_back(row_of(s));
    return render_table(rows);
}

std::string ended_line(const json& session) {
    return fmt::format("ended session {}: {} on {}", session.at("id").get<std::uint64_t>(), principal(session),
                       session.at("vm").get<std::string>());
}

std::variant<KillSelector, std::string> kill_selector(const KillArgs& args) {
    const int given = int{!args.id.empty()} + int{!args.vm.empty()} + int{!args.user.empty()};
    if (given == 0)
        return "sessions kill: say which sessions to end: a session ID (as `vmgate sessions` lists it), "
               "--vm VM or --user USER";
    if (given > 1) return "sessions kill: give only one of ID, --vm and --user";
    if (!args.vm.empty()) return KillSelector{{{"op", "kill"}, {"vm", args.vm}}, "VM " + args.vm};
    if (!args.user.empty()) return KillSelector{{{"op", "kill"}, {"user", args.user}}, "user " + args.user};
    const auto id = parse_session_id(args.id);
    if (!id)
        return "sessions kill: ID is a session number as `vmgate sessions` lists it (1 or more), not \"" +
               args.id + "\"";
    return KillSelector{{{"op", "kill"}, {"id", *id}}, "session " + std::to_string(*id)};
}

std::string reload_summary(const json& reply) {
    std::string out = "reloaded " + reply.at("config").get<std::string>() + "\n";
    out += "sessions kept: " + id_list(reply.at("kept")) + "\n";
    out += "sessions revoked: " + id_list(reply.at("revoked")) + "\n";
    out += "listeners added: " + text_list(reply.at("listeners_added")) + "\n";
    out += "listeners removed: " + text_list(reply.at("listeners_removed")) + "\n";
    if (reply.contains("metrics")) {
        const auto metrics = reply.at("metrics").get<std::string>();
        out += "metrics endpoint: " + (metrics.empty() ? std::string("off") : "http://" + metrics + "/metrics") + "\n";
    }
    for (const auto& setting : reply.at("restart_needed"))
        out += "not applied until restart: " + setting.get<std::string>() + "\n";
    return out;
}

// ---- vms ----

namespace {

std::string display_line(std::string_view display, const json& d) {
    if (d.is_null()) return fmt::format("  {:<5}  -\n", display);
    const bool reachable = d.at("reachable").get<bool>();
    return fmt::format("  {:<5}  {}  {}\n", display, d.at("upstream").get<std::string>(),
                       reachable ? "reachable" : "UNREACHABLE: " + d.value("problem", std::string("no reason given")));
}

std::string vm_heading(const json& vm) {
    std::vector<std::string> facts;
    if (vm.contains("uuid")) facts.push_back("libvirt domain " + vm.at("domain").get<std::string>() + " " +
                                             vm.at("uuid").get<std::string>() + ", " + vm.at("state").get<std::string>());
    const auto rules = vm.at("allow_rules").get<std::size_t>();
    if (vm.at("source") == "libvirt") facts.emplace_back("no [[vm]] section: nobody may use it");
    else facts.push_back(rules == 0 ? "no allow rule: nobody may use it" : fmt::format("{} allow rule{}", rules, rules == 1 ? "" : "s"));
    return fmt::format("{} ({})\n", vm.at("name").get<std::string>(), fmt::join(facts, "; "));
}

}  // namespace

std::string vms_listing(const json& reply) {
    std::string out;
    const auto& libvirt = reply.at("libvirt");
    if (libvirt.at("inventory") != "none") {
        out += "libvirt " + libvirt.at("uri").get<std::string>() + ": ";
        out += libvirt.at("connected").get<bool>() ? "connected\n"
                                                   : "NOT CONNECTED: " + libvirt.at("problem").get<std::string>() + "\n";
    }
    if (reply.at("vms").empty()) return out + "no VMs\n";
    for (const auto& vm : reply.at("vms"))
        out += vm_heading(vm) + display_line("spice", vm.at("spice")) + display_line("vnc", vm.at("vnc"));
    return out;
}

bool all_reachable(const json& reply) {
    for (const auto& vm : reply.at("vms"))
        for (const char* display : {"spice", "vnc"})
            if (const auto& d = vm.at(display); !d.is_null() && !d.at("reachable").get<bool>()) return false;
    return true;
}

std::optional<std::string> request_ticket(const AdminTarget& target, const TicketArgs& args,
                                          std::chrono::seconds ttl) {
    const auto reply = ask_daemon(target, {{"op", "ticket"}, {"user", args.user}, {"vm", args.vm},
                                           {"ttl_seconds", ttl.count()}, {"protocol", args.protocol}});
    if (!reply || refused(*reply)) return std::nullopt;
    const auto ticket = reply->find("ticket");
    if (ticket != reply->end() && ticket->is_string()) return ticket->get<std::string>();
    std::cerr << "vmgate: unexpected reply from the daemon: no ticket in it\n";
    return std::nullopt;
}

int run_ticket(const AdminTarget& target, const TicketArgs& args) {
    const auto ttl = core::parse_duration(args.ttl);
    if (!ttl) {
        std::cerr << "--ttl: expected a duration such as 60s, 5m or 1h, got \"" << args.ttl << "\"\n";
        return 2;
    }
    const auto ticket = request_ticket(target, args, *ttl);
    if (!ticket) return 1;
    std::cout << *ticket << "\n";
    return 0;
}

int run_sessions(const AdminTarget& target, bool json) {
    const auto reply = ask_daemon(target, {{"op", "sessions"}});
    if (!reply || refused(*reply)) return 1;
    return print_reply([&] {
        const auto& sessions = reply->at("sessions");
        return json ? sessions.dump() + "\n" : sessions_table(sessions);
    });
}

int run_kill(const AdminTarget& target, const KillArgs& args) {
    const auto selector = kill_selector(args);
    if (const auto* usage = std::get_if<std::string>(&selector)) {
        std::cerr << "vmgate: " << *usage << "\n";
        return 2;
    }
    const auto& kill = std::get<KillSelector>(selector);
    const auto reply = ask_daemon(target, kill.request);
    if (!reply || refused(*reply)) return 1;
    const auto killed = reply->find("killed");
    if (killed != reply->end() && killed->empty()) {
        std::cerr << "vmgate: no live session matched " << kill.what << "\n";
        return 1;
    }
    return print_reply([&] {
        std::string out;
        for (const auto& session : reply->at("killed")) out += ended_line(session) + "\n";
        return out;
    });
}

int run_reload(const AdminTarget& target) {
    const auto reply = ask_daemon(target, {{"op", "reload"}});
    if (!reply) return 1;
    if (refused(*reply)) {
        std::cerr << "vmgate: nothing was changed: the daemon keeps running with its previous configuration\n";
        return 1;
    }
    return print_reply([&] { return reload_summary(*reply); });
}

int run_vms(const AdminTarget& target, bool json) {
    const auto reply = ask_daemon(target, {{"op", "vms"}});
    if (!reply || refused(*reply)) return 1;
    if (print_reply([&] { return json ? reply->dump() + "\n" : vms_listing(*reply); }) != 0) return 1;
    return all_reachable(*reply) ? 0 : 1;
}

}  // namespace vmgate::cli
