// What `vmgate sessions`, `sessions kill`, `reload` and `vms` make of the daemon's replies, and which
// kill requests they send; the admin protocol is the one in admin/admin_server.hpp.
#include "cli/admin_commands.hpp"

#include "scoped_time_zone.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

namespace vmgate::cli {
namespace {

using nlohmann::json;
using test_support::ScopedTimeZone;

json alice_session() {
    return {{"id", 3},
            {"vm", "vm1"},
            {"user", "alice"},
            {"realm", "EXAMPLE.COM"},
            {"mechanism", "SCRAM-SHA-256"},
            {"source", "192.0.2.7:40312"},
            {"since", "2026-11-23T19:30:05Z"},
            {"channels", {"main", "display", "inputs"}},
            {"bytes_from_client", 1288490},
            {"bytes_to_client", 512},
            {"view_only", false},
            {"rule", "vm1 allow[0] (line 15)"},
            {"spice_session", 2130706433}};
}

json bob_session() {
    json s = alice_session();
    s["id"] = 12;
    s["vm"] = "build-server";
    s["user"] = "bob";
    s["realm"] = "";
    s["mechanism"] = "ticket";
    s["source"] = "[2001:db8::5]:5000";
    s["since"] = "2026-11-23T23:00:00Z";
    s["channels"] = json::array();
    s["bytes_from_client"] = 0;
    s["bytes_to_client"] = std::uint64_t{5} << 30;
    return s;
}

TEST(HumanBytes, BytesBelowOneKiB) {
    EXPECT_EQ(human_bytes(0), "0 B");
    EXPECT_EQ(human_bytes(512), "512 B");
    EXPECT_EQ(human_bytes(1023), "1023 B");
}

TEST(HumanBytes, BinaryUnitsWithOneDecimal) {
    EXPECT_EQ(human_bytes(1024), "1.0 KiB");
    EXPECT_EQ(human_bytes(1536), "1.5 KiB");
    EXPECT_EQ(human_bytes(1288490), "1.2 MiB");
    EXPECT_EQ(human_bytes(std::uint64_t{5} << 30), "5.0 GiB");
    EXPECT_EQ(human_bytes(std::uint64_t{3} << 40), "3.0 TiB");
    EXPECT_EQ(human_bytes(std::numeric_limits<std::uint64_t>::max()), "16.0 EiB");
}

TEST(HumanBytes, NeverShows1024OfAUnit) {
    EXPECT_EQ(human_bytes(1024 * 1024 - 1), "1.0 MiB");
    EXPECT_EQ(human_bytes((std::uint64_t{1} << 30) - 1), "1.0 GiB");
    EXPECT_EQ(human_bytes(1023 * 1024 + 900), "1023.9 KiB");
}

TEST(SessionsTable, SaysSoWhenThereAreNone) { EXPECT_EQ(sessions_table(json::array()), "no live sessions\n"); }

TEST(SessionsTable, OneAlignedLinePerSession) {
    const ScopedTimeZone zone("EET-2");
    const std::string expected =
        "ID  VM            USER               MECH           SOURCE              SINCE                "
        "CHANNELS                  IN      OUT\n"
        " 3  vm1           alice@EXAMPLE.COM  SCRAM-SHA-256  192.0.2.7:40312     2026-11-23 21:30:05  "
        "main,display,inputs  1.2 MiB    512 B\n"
        "12  build-server  bob                ticket         [2001:db8::5]:5000  2026-11-24 01:00:00  "
        "-                        0 B  5.0 GiB\n";
    EXPECT_EQ(sessions_table(json{alice_session(), bob_session()}), expected);
}

TEST(SessionsTable, ShowsAStartTimeItCannotReadAsSent) {
    json s = alice_session();
    s["since"] = "yesterday";
    EXPECT_NE(sessions_table(json{s}).find("  yesterday  "), std::string::npos);
}

TEST(SessionsTable, AMissingFieldIsAnErrorNotAnEmptyCell) {
    json s = alice_session();
    s.erase("source");
    EXPECT_THROW(sessions_table(json{s}), json::exception);
}

TEST(EndedLine, NamesSessionUserAndVm) {
    EXPECT_EQ(ended_line(alice_session()), "ended session 3: alice@EXAMPLE.COM on vm1");
    EXPECT_EQ(ended_line(bob_session()), "ended session 12: bob on build-server");
}

std::string usage_error(const KillArgs& args) {
    const auto selector = kill_selector(args);
    return std::holds_alternative<std::string>(selector) ? std::get<std::string>(selector) : "";
}

TEST(KillSelector, NeedsOneSelector) {
    const auto error = usage_error({});
    EXPECT_NE(error.find("ID"), std::string::npos) << error;
    EXPECT_NE(error.find("--vm"), std::string::npos) << error;
    EXPECT_NE(error.find("--user"), std::string::npos) << error;
}

TEST(KillSelector, RefusesMoreThanOne) {
    EXPECT_NE(usage_error({"3", "vm1", ""}), "");
    EXPECT_NE(usage_error({"", "vm1", "alice"}), "");
    EXPECT_NE(usage_error({"3", "", "alice"}), "");
    EXPECT_NE(usage_error({"3", "vm1", "alice"}), "");
}

TEST(KillSelector, IdIsASessionNumber) {
    for (const char* id : {"0", "-1", "+3", "3x", "x3", " 3", "abc", "18446744073709551616"})
        EXPECT_NE(usage_error({id, "", ""}).find(std::string("\"") + id + "\""), std::string::npos) << id;
}

TEST(KillSelector, ById) {
    const auto selector = std::get<KillSelector>(kill_selector({"18446744073709551615", "", ""}));
    EXPECT_EQ(selector.request, (json{{"op", "kill"}, {"id", std::numeric_limits<std::uint64_t>::max()}}));
    EXPECT_TRUE(selector.request["id"].is_number_unsigned());
    EXPECT_EQ(selector.what, "session 18446744073709551615");
}

TEST(KillSelector, ByVm) {
    const auto selector = std::get<KillSelector>(kill_selector({"", "vm1", ""}));
    EXPECT_EQ(selector.request, (json{{"op", "kill"}, {"vm", "vm1"}}));
    EXPECT_EQ(selector.what, "VM vm1");
}

TEST(KillSelector, ByUserAsTyped) {
    const auto selector = std::get<KillSelector>(kill_selector({"", "", "alice@EXAMPLE.COM"}));
    EXPECT_EQ(selector.request, (json{{"op", "kill"}, {"user", "alice@EXAMPLE.COM"}}));
    EXPECT_EQ(selector.what, "user alice@EXAMPLE.COM");
}

TEST(ReloadSummary, ListsEveryChange) {
    const json reply = {{"ok", true},
                        {"config", "/etc/vmgate/vmgate.toml"},
                        {"revoked", {3}},
                        {"kept", {12, 14}},
                        {"listeners_added", {"0.0.0.0:20004", "[::]:20005"}},
                        {"listeners_removed", {"0.0.0.0:20001"}},
                        {"restart_needed", {"gateway.workers", "tls.cert"}}};
    EXPECT_EQ(reload_summary(reply),
              "reloaded /etc/vmgate/vmgate.toml\n"
              "sessions kept: 2 (12, 14)\n"
              "sessions revoked: 1 (3)\n"
              "listeners added: 0.0.0.0:20004, [::]:20005\n"
              "listeners removed: 0.0.0.0:20001\n"
              "not applied until restart: gateway.workers\n"
              "not applied until restart: tls.cert\n");
}

TEST(ReloadSummary, SaysNoneForEmptyLists) {
    const json reply = {{"ok", true},          {"config", "/etc/vmgate/vmgate.toml"},
                        {"revoked", json::array()}, {"kept", json::array()},
                        {"listeners_added", json::array()}, {"listeners_removed", json::array()},
                        {"restart_needed", json::array()}};
    EXPECT_EQ(reload_summary(reply),
              "reloaded /etc/vmgate/vmgate.toml\n"
              "sessions kept: none\n"
              "sessions revoked: none\n"
              "listeners added: none\n"
              "listeners removed: none\n");
}

TEST(ReloadSummary, NamesAMovedOrStoppedMetricsEndpoint) {
    json reply = {{"ok", true},          {"config", "/etc/vmgate/vmgate.toml"},
                  {"revoked", json::array()}, {"kept", json::array()},
                  {"listeners_added", json::array()}, {"listeners_removed", json::array()},
                  {"restart_needed", json::array()}, {"metrics", "127.0.0.1:9465"}};
    EXPECT_NE(reload_summary(reply).find("\nmetrics endpoint: http://127.0.0.1:9465/metrics\n"), std::string::npos);
    reply["metrics"] = "";
    EXPECT_NE(reload_summary(reply).find("\nmetrics endpoint: off\n"), std::string::npos);
}

json vms_reply() {
    return json::parse(R"js({"ok": true,
      "libvirt": {"uri": "qemu:///system", "inventory": "all", "connected": true, "problem": ""},
      "vms": [
        {"name": "web1", "source": "config", "allow_rules": 2, "domain": "web1",
         "uuid": "6f1c2a3e-58b4-4d3a-9c1e-2b7d9e0f4a51", "state": "running",
         "spice": {"upstream": "libvirt:web1", "reachable": true}, "vnc": null},
        {"name": "vm2", "source": "config", "allow_rules": 1,
         "spice": {"upstream": "unix:/run/vm2.sock", "reachable": false, "problem": "upstream unix:/run/vm2.sock: No such file or directory"},
         "vnc": null},
        {"name": "db1", "source": "libvirt", "allow_rules": 0, "domain": "db1",
         "uuid": "0b0e2a3e-58b4-4d3a-9c1e-2b7d9e0f4a52", "state": "shut off",
         "spice": null, "vnc": {"upstream": "libvirt:db1", "reachable": false,
                                "problem": "libvirt domain \"db1\" is not running (shut off)"}}]})js");
}

TEST(VmsListing, OneBlockPerVmWithEachDisplay) {
    EXPECT_EQ(vms_listing(vms_reply()),
              "libvirt qemu:///system: connected\n"
              "web1 (libvirt domain web1 6f1c2a3e-58b4-4d3a-9c1e-2b7d9e0f4a51, running; 2 allow rules)\n"
              "  spice  libvirt:web1  reachable\n"
              "  vnc    -\n"
              "vm2 (1 allow rule)\n"
              "  spice  unix:/run/vm2.sock  UNREACHABLE: upstream unix:/run/vm2.sock: No such file or directory\n"
              "  vnc    -\n"
              "db1 (libvirt domain db1 0b0e2a3e-58b4-4d3a-9c1e-2b7d9e0f4a52, shut off; no [[vm]] section: nobody may "
              "use it)\n"
              "  spice  -\n"
              "  vnc    libvirt:db1  UNREACHABLE: libvirt domain \"db1\" is not running (shut off)\n");
    EXPECT_FALSE(all_reachable(vms_reply()));
}

TEST(VmsListing, InventoryProblemAndNoVms) {
    const json reply = {{"ok", true},
                        {"libvirt", {{"uri", "qemu:///system"}, {"inventory", "named"}, {"connected", false},
                                     {"problem", "libvirt qemu:///system: Failed to connect socket"}}},
                        {"vms", json::array()}};
    EXPECT_EQ(vms_listing(reply), "libvirt qemu:///system: NOT CONNECTED: libvirt qemu:///system: Failed to connect socket\n"
                                  "no VMs\n");
    EXPECT_TRUE(all_reachable(reply));
    json without_inventory = reply;
    without_inventory["libvirt"]["inventory"] = "none";
    EXPECT_EQ(vms_listing(without_inventory), "no VMs\n");
}

TEST(VmsListing, AMissingFieldIsAnError) {
    json reply = vms_reply();
    reply["vms"][0].erase("allow_rules");
    EXPECT_THROW(vms_listing(reply), json::exception);
}

}  // namespace
}  // namespace vmgate::cli
