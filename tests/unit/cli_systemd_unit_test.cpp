// `vmgate systemd-unit`: what a configuration changes in the service unit (the capability for
// ports below 1024, ReadWritePaths outside vmgate's own directories) and the paths it refuses.
// tests/e2e/test_packaging.py checks the unit with systemd-analyze and against packaging/.
#include "cli/systemd_unit.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace vmgate::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

core::Config parse(const std::string& text) {
    auto result = core::parse_config(text, "unit.toml");
    EXPECT_TRUE(result.errors.empty()) << result.errors.front().to_string();
    return result.config.value_or(core::Config{});
}

// One plain SPICE listener per port, and the [gateway] section given.
std::string config_text(std::initializer_list<int> ports, const std::string& gateway = "") {
    std::string text = "[gateway]\n" + gateway + "\n";
    for (const int port : ports)
        text += "[[listener]]\nprotocol = \"spice\"\naddress = \"0.0.0.0:" + std::to_string(port) +
                "\"\ntls = false\nvm = \"vm1\"\n";
    return text + "[[vm]]\nname = \"vm1\"\nspice = \"unix:/run/vm1.sock\"\n";
}

std::string unit_for(const std::string& text) {
    return render_unit(unit_settings(parse(text), "/etc/vmgate/vmgate.toml", "/usr/bin/vmgate"));
}

TEST(SystemdUnit, HighPortsGetNoCapabilityAtAll) {
    const std::string unit = unit_for(config_text({5900, 1024}));
    EXPECT_THAT(unit, HasSubstr("\nCapabilityBoundingSet=\n"));
    EXPECT_THAT(unit, HasSubstr("\nAmbientCapabilities=\n"));
    EXPECT_THAT(unit, Not(HasSubstr("=CAP_")));  // the comment names it, no setting does
}

TEST(SystemdUnit, APortBelow1024GetsBindServiceInBothSets) {
    const auto settings = unit_settings(parse(config_text({5900, 443, 1023})), "/c.toml", "/usr/bin/vmgate");
    EXPECT_EQ(settings.privileged_listeners, (std::vector<std::string>{"0.0.0.0:443", "0.0.0.0:1023"}));
    const std::string unit = render_unit(settings);
    EXPECT_THAT(unit, HasSubstr("\nCapabilityBoundingSet=CAP_NET_BIND_SERVICE\n"));
    EXPECT_THAT(unit, HasSubstr("\nAmbientCapabilities=CAP_NET_BIND_SERVICE\n"));
    EXPECT_THAT(unit, HasSubstr("below port 1024: 0.0.0.0:443 0.0.0.0:1023\n"));
    EXPECT_THAT(unit, Not(HasSubstr("\nCapabilityBoundingSet=\n")));
}

TEST(SystemdUnit, NamesTheBinaryAndTheConfiguration) {
    const std::string unit =
        render_unit(unit_settings(parse(config_text({5900})), "/srv/gw/vmgate.toml", "/opt/vmgate/bin/vmgate"));
    EXPECT_THAT(unit, HasSubstr("\nExecStart=/opt/vmgate/bin/vmgate serve --config /srv/gw/vmgate.toml\n"));
    EXPECT_THAT(unit, HasSubstr("\nUser=vmgate\nGroup=vmgate\n"));
}

TEST(SystemdUnit, DefaultDirectoriesNeedNoReadWritePaths) {
    const std::string text = config_text({5900}, "audit_log = \"/var/log/vmgate/sub/audit.jsonl\"\n"
                                                  "admin_socket = \"/run/vmgate/admin.sock\"\n");
    EXPECT_TRUE(unit_settings(parse(text), "/c.toml", "/b").writable_paths.empty());
    EXPECT_THAT(unit_for(text), Not(HasSubstr("ReadWritePaths")));
    // audit_log = "-" is the journal
    EXPECT_TRUE(unit_settings(parse(config_text({5900}, "audit_log = \"-\"\n")), "/c.toml", "/b").writable_paths.empty());
}

TEST(SystemdUnit, OtherDirectoriesBecomeReadWritePaths) {
    const std::string text = config_text({5900}, "audit_log = \"/srv/audit/vmgate.jsonl\"\n"
                                                  "admin_socket = \"/run/vmgate-admin/admin.sock\"\n");
    const auto settings = unit_settings(parse(text), "/c.toml", "/b");
    // /run/vmgate-admin shares a prefix with /run/vmgate but is not inside it
    EXPECT_EQ(settings.writable_paths, (std::vector<std::string>{"/srv/audit", "/run/vmgate-admin"}));
    const std::string unit = render_unit(settings);
    EXPECT_THAT(unit, HasSubstr("\nReadWritePaths=-/srv/audit\nReadWritePaths=-/run/vmgate-admin\n"));
}

TEST(SystemdUnit, ARelativePathIsWhereTheServiceRunsIt) {
    const auto settings =
        unit_settings(parse(config_text({5900}, "audit_log = \"logs/../audit/a.jsonl\"\n")), "/c.toml", "/b");
    EXPECT_EQ(settings.writable_paths, (std::vector<std::string>{"/audit"}));
}

TEST(SystemdUnit, TheSameDirectoryIsListedOnce) {
    const std::string text = config_text({5900}, "audit_log = \"/srv/gw/audit.jsonl\"\n"
                                                  "admin_socket = \"/srv/gw/admin.sock\"\n");
    EXPECT_EQ(unit_settings(parse(text), "/c.toml", "/b").writable_paths, (std::vector<std::string>{"/srv/gw"}));
}

TEST(SystemdUnit, PathsSystemdWouldReadOtherwiseAreRefused) {
    EXPECT_EQ(unit_path_problem("/etc/vmgate/vmgate.toml"), std::nullopt);
    EXPECT_EQ(unit_path_problem("/srv/a-b_c.d/x+y@z"), std::nullopt);
    for (const std::string& bad : std::vector<std::string>{"/etc/my gate.toml", "/etc/a\tb", "/etc/a\"b", "/etc/a'b",
                                                          "/etc/a\\b", "/etc/%h.toml", "/etc/$HOME.toml", "/etc/a\x7f"})
        EXPECT_NE(unit_path_problem(bad), std::nullopt) << bad;
    EXPECT_THAT(unit_path_problem("/etc/%h").value_or(""), HasSubstr("%"));
}

TEST(SystemdUnit, SandboxIsAlwaysThere) {
    for (const std::string& unit : {unit_for(config_text({5900})), unit_for(config_text({443}))}) {
        for (const char* line : {"NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
                                 "PrivateDevices=yes", "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
                                 "SystemCallFilter=@system-service", "MemoryDenyWriteExecute=yes",
                                 "LockPersonality=yes", "ExecReload=/bin/kill -HUP $MAINPID"})
            EXPECT_THAT(unit, HasSubstr(std::string("\n") + line + "\n")) << line;
    }
}

}  // namespace
}  // namespace vmgate::cli
