#include "core/config.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <string_view>
#include <utility>

namespace vmgate::core {
namespace {

using ::testing::HasSubstr;

// Snippets below start with a newline for readability; line 1 is the line after it.
ConfigResult parse(std::string_view text) {
    if (text.starts_with('\n')) text.remove_prefix(1);
    return parse_config(text, "test.toml");
}

std::string dump(const ConfigResult& result) {
    std::string out;
    for (const ConfigError& e : result.errors) out += e.to_string() + "\n";
    return out;
}

Config parse_ok(std::string_view text) {
    ConfigResult result = parse(text);
    EXPECT_TRUE(result.errors.empty()) << dump(result);
    return result.config.value_or(Config{});
}

// The single error TEXT must produce.
ConfigError only_error(std::string_view text) {
    const ConfigResult result = parse(text);
    EXPECT_FALSE(result.config);
    EXPECT_EQ(result.errors.size(), 1u) << dump(result);
    return result.errors.empty() ? ConfigError{} : result.errors.front();
}

std::filesystem::path source_dir() { return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path(); }

// design.md §"Configuration (TOML)", verbatim.
constexpr std::string_view design_example = R"(
[gateway]
state_dir   = "/var/lib/vmgate"
audit_log   = "/var/log/vmgate/audit.jsonl"     # JSON lines; "-" = stderr
metrics     = "127.0.0.1:9464"                  # Prometheus /metrics
admin_socket = "/run/vmgate/admin.sock"

[tls]
cert = "/etc/vmgate/server-cert.pem"   # key must not be group/world readable beyond the service group
key  = "/etc/vmgate/server-key.pem"
client_ca = "/etc/vmgate/client-ca.pem"   # optional: client certificates → identity
client_cert = "optional"                  # none | optional | required

[sasl]                     # options are handed to Cyrus SASL by the gateway: no /etc/sasl2 file needed
mech_list = ["SCRAM-SHA-256", "PLAIN"]      # PLAIN/SCRAM are only ever offered inside TLS
sasldb    = "/etc/vmgate/sasldb2"           # compatible with saslpasswd2 / sasldblistusers2
pwcheck_method = "auxprop"                  # or "saslauthd" (PAM, LDAP, Kerberos behind it)
service_spice = "spice"                     # service name seen by saslauthd/PAM (/etc/pam.d/spice)
service_vnc   = "vnc"
default_realm = ""                          # "" = host name, as Cyrus does

[groups]
accounting = ["charlie", "boss"]            # plus "unix:GROUP" for local Unix groups

[[listener]]                 # one port per VM, as admins do today
protocol = "spice"
address  = "0.0.0.0:20002"
tls      = true
vm       = "debianx"

[[listener]]                 # plain SPICE port: answers every link with NEED_SECURED, never carries data
protocol = "spice"
address  = "0.0.0.0:20001"
tls      = false
vm       = "debianx"

[[listener]]                 # one port for many VMs: the VM is the first label of the SNI name
protocol   = "spice"
address    = "0.0.0.0:5900"
tls        = true
route      = "sni"
sni_suffix = ".vms.example.com"

[[vm]]
name  = "debianx"
spice = "unix:/run/vmgate/debianx.spice.sock"   # or tcp:HOST:PORT (+ password_file), libvirt:DOMAIN, qmp:PATH
vnc   = "unix:/run/vmgate/debianx.vnc.sock"
seat  = "deny"              # deny | takeover | same-user
idle_timeout = "30m"
  [[vm.allow]]
  users = ["charlie"]
  [[vm.allow]]
  users = ["boss"]
  hours = "18:00-23:00"

[[vm]]
name = "leaptest"
spice = "qmp:/run/vmgate/leaptest.qmp"
  [[vm.allow]]
  users = ["maggie"]
  days  = ["mon", "tue"]
  [[vm.allow]]
  users = ["anne"]
  days  = ["wed", "thu"]
  deny_channels = ["usbredir", "smartcard"]
  [[vm.allow]]
  groups    = ["auditors"]
  view_only = true
)";

std::string replace(std::string text, std::string_view from, std::string_view to) {
    const std::size_t at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) text.replace(at, from.size(), to);
    return text;
}

// ------------------------------------------------------------------------------ whole files

TEST(ConfigDesignExample, VerbatimIsRefusedOnlyForTheUndefinedGroup) {
    const ConfigResult result = parse(design_example);
    ASSERT_EQ(result.errors.size(), 1u) << dump(result);
    EXPECT_EQ(result.errors[0].key, "vm[1].allow[2].groups[0]");
    EXPECT_EQ(result.errors[0].line, 66);
    EXPECT_THAT(result.errors[0].message, HasSubstr("group \"auditors\" is not defined in [groups]"));
}

TEST(ConfigDesignExample, ParsesWithTheAuditorsGroupDefined) {
    const std::string text = replace(std::string(design_example), "[groups]\n", "[groups]\nauditors = [\"unix:audit\"]\n");
    const Config config = parse_ok(text);

    EXPECT_EQ(config.path, "test.toml");
    EXPECT_EQ(config.gateway.audit_log, "/var/log/vmgate/audit.jsonl");
    EXPECT_EQ(config.gateway.metrics, "127.0.0.1:9464");
    EXPECT_EQ(config.tls.client_cert, ClientCertMode::optional);
    EXPECT_EQ(config.sasl.mech_list, (std::vector<std::string>{"SCRAM-SHA-256", "PLAIN"}));
    EXPECT_EQ(config.sasl.sasldb, "/etc/vmgate/sasldb2");
    EXPECT_EQ(config.groups.at("accounting"), (std::vector<std::string>{"charlie", "boss"}));

    ASSERT_EQ(config.listeners.size(), 3u);
    EXPECT_EQ(config.listeners[0].host, "0.0.0.0");
    EXPECT_EQ(config.listeners[0].port, 20002);
    EXPECT_TRUE(config.listeners[0].tls);
    EXPECT_EQ(config.listeners[0].where.line, 25);  // one line below design.md: [groups] grew
    EXPECT_FALSE(config.listeners[1].tls);
    EXPECT_EQ(config.listeners[2].route, Route::sni);
    EXPECT_EQ(config.listeners[2].sni_suffix, ".vms.example.com");

    ASSERT_EQ(config.vms.size(), 2u);
    const VmConfig& debianx = config.vms[0];
    EXPECT_EQ(debianx.seat, SeatPolicy::deny);
    EXPECT_EQ(debianx.idle_timeout, std::chrono::minutes(30));
    ASSERT_TRUE(debianx.spice);
    EXPECT_EQ(debianx.spice->kind, UpstreamConfig::Kind::unix_socket);
    EXPECT_EQ(debianx.spice->path, "/run/vmgate/debianx.spice.sock");
    ASSERT_EQ(debianx.allow.size(), 2u);
    EXPECT_EQ(debianx.allow[1].hours, (TimeWindow{18 * 60, 23 * 60}));

    const VmConfig& leaptest = config.vms[1];
    ASSERT_TRUE(leaptest.spice);
    EXPECT_EQ(leaptest.spice->kind, UpstreamConfig::Kind::qmp);
    EXPECT_EQ(leaptest.spice->path, "/run/vmgate/leaptest.qmp");
    EXPECT_EQ(leaptest.spice->text, "qmp:/run/vmgate/leaptest.qmp");
    ASSERT_EQ(leaptest.allow.size(), 3u);
    ASSERT_TRUE(leaptest.allow[0].days);
    EXPECT_TRUE(leaptest.allow[0].days->contains(Weekday::mon));
    EXPECT_TRUE(leaptest.allow[0].days->contains(Weekday::tue));
    EXPECT_FALSE(leaptest.allow[0].days->contains(Weekday::wed));
    EXPECT_EQ(leaptest.allow[1].deny_channels, (std::vector<std::string>{"usbredir", "smartcard"}));
    EXPECT_TRUE(leaptest.allow[2].view_only);
    EXPECT_EQ(leaptest.allow[2].where.line, 66);
}

TEST(ConfigOffice, ExampleFileParses) {
    const ConfigResult result = load_config_file((source_dir() / "examples" / "office.toml").string());
    ASSERT_TRUE(result.config) << dump(result);
    const Config& config = *result.config;

    EXPECT_EQ(config.listeners.size(), 7u);
    EXPECT_EQ(config.sasl.default_realm, "office");

    const VmConfig* vm1 = config.find_vm("vm1");
    ASSERT_NE(vm1, nullptr);
    ASSERT_EQ(vm1->allow.size(), 2u);
    EXPECT_EQ(vm1->allow[0].users, (std::vector<std::string>{"charlie"}));
    EXPECT_FALSE(vm1->allow[0].hours);
    EXPECT_EQ(vm1->allow[1].groups, (std::vector<std::string>{"accounting"}));
    EXPECT_EQ(vm1->allow[1].hours, (TimeWindow{18 * 60, 23 * 60}));

    const VmConfig* vm2 = config.find_vm("vm2");
    ASSERT_NE(vm2, nullptr);
    ASSERT_EQ(vm2->allow.size(), 2u);
    DaySet maggie_days;
    maggie_days.add(Weekday::mon);
    maggie_days.add(Weekday::tue);
    EXPECT_EQ(vm2->allow[0].days, maggie_days);
    DaySet anne_days;
    anne_days.add(Weekday::wed);
    anne_days.add(Weekday::thu);
    EXPECT_EQ(vm2->allow[1].days, anne_days);

    const VmConfig* vm3 = config.find_vm("vm3");
    ASSERT_NE(vm3, nullptr);
    ASSERT_EQ(vm3->allow.size(), 1u);
    EXPECT_EQ(vm3->allow[0].users, (std::vector<std::string>{"ralph"}));
}

TEST(ConfigDefaults, MinimalFileGetsTheDocumentedDefaults) {
    const Config config = parse_ok(R"(
[[vm]]
name = "x"
spice = "unix:/run/x.sock"

[[listener]]
protocol = "spice"
address = "127.0.0.1:5900"
tls = false
vm = "x"
)");
    EXPECT_EQ(config.gateway.state_dir, "/var/lib/vmgate");
    EXPECT_EQ(config.gateway.audit_log, "-");
    EXPECT_EQ(config.gateway.metrics, "");
    EXPECT_EQ(config.gateway.admin_socket, "/run/vmgate/admin.sock");
    EXPECT_EQ(config.gateway.handshake_timeout, std::chrono::seconds(10));
    EXPECT_EQ(config.gateway.workers, 0u);
    EXPECT_EQ(config.tls.client_cert, ClientCertMode::none);
    EXPECT_EQ(config.sasl.mech_list, (std::vector<std::string>{"SCRAM-SHA-256", "PLAIN"}));
    EXPECT_EQ(config.sasl.pwcheck_method, "auxprop");
    EXPECT_EQ(config.sasl.service_spice, "spice");
    EXPECT_EQ(config.sasl.service_vnc, "vnc");
    EXPECT_FALSE(config.sasl.allow_weak_mechanisms);

    ASSERT_EQ(config.listeners.size(), 1u);
    EXPECT_EQ(config.listeners[0].route, Route::fixed);
    EXPECT_EQ(config.listeners[0].auth, (std::vector<AuthMethod>{AuthMethod::sasl, AuthMethod::ticket}));

    ASSERT_EQ(config.vms.size(), 1u);
    EXPECT_EQ(config.vms[0].seat, SeatPolicy::takeover);
    EXPECT_EQ(config.vms[0].idle_timeout, std::chrono::seconds(0));
    EXPECT_EQ(config.vms[0].max_session, std::chrono::seconds(0));
    EXPECT_TRUE(config.vms[0].allow.empty());  // valid: nobody may use it
    EXPECT_FALSE(config.vms[0].vnc);
}

TEST(ConfigDefaults, EmptyTextIsAValidEmptyConfig) {
    const Config config = parse_ok("");
    EXPECT_TRUE(config.vms.empty());
    EXPECT_TRUE(config.listeners.empty());
}

TEST(ConfigValues, RuleFieldsAndVariants) {
    const Config config = parse_ok(R"(
[gateway]
workers = 256
handshake_timeout = "1m30s"

[tls]
cert = "c.pem"
key = "k.pem"

[groups]
night = ["ann", "unix:ops", "bob@CORP"]

[[vm]]
name = "a-1"
spice = "tcp:127.0.0.1:5930"
vnc = "tcp:[::1]:5931"
password_file = "/etc/vmgate/a-1.pass"
seat = "same-user"
max_session = "2d"
  [[vm.allow]]
  groups = ["night", "unix:wheel"]
  days = ["fri-mon", "Wed"]
  hours = "22:00-06:00"
  from = "2026-02-28"
  until = 2026-12-31
  sources = ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"]
  view_only = true

[[listener]]
protocol = "vnc"
address = "[::]:5901"
vm = "a-1"
auth = ["ticket"]
)");
    EXPECT_EQ(config.gateway.workers, 256u);
    EXPECT_EQ(config.gateway.handshake_timeout, std::chrono::seconds(90));
    EXPECT_EQ(config.groups.at("night"), (std::vector<std::string>{"ann", "unix:ops", "bob@CORP"}));

    const VmConfig& vm = config.vms.at(0);
    ASSERT_TRUE(vm.spice && vm.vnc);
    EXPECT_EQ(vm.spice->kind, UpstreamConfig::Kind::tcp);
    EXPECT_EQ(vm.spice->host, "127.0.0.1");
    EXPECT_EQ(vm.spice->port, 5930);
    EXPECT_EQ(vm.spice->password_file, "/etc/vmgate/a-1.pass");
    EXPECT_EQ(vm.vnc->host, "::1");
    EXPECT_EQ(vm.vnc->password_file, "/etc/vmgate/a-1.pass");
    EXPECT_EQ(vm.seat, SeatPolicy::same_user);
    EXPECT_EQ(vm.max_session, std::chrono::hours(48));

    const AllowRule& rule = vm.allow.at(0);
    DaySet days;
    for (Weekday d : {Weekday::fri, Weekday::sat, Weekday::sun, Weekday::mon, Weekday::wed}) days.add(d);
    EXPECT_EQ(rule.days, days);
    EXPECT_EQ(rule.hours, (TimeWindow{22 * 60, 6 * 60}));
    EXPECT_EQ(rule.from, (Date{2026, 2, 28}));
    EXPECT_EQ(rule.until, (Date{2026, 12, 31}));
    ASSERT_EQ(rule.sources.size(), 3u);
    EXPECT_EQ(rule.sources[1].text, "2001:db8::/32");
    EXPECT_TRUE(rule.view_only);

    const ListenerConfig& listener = config.listeners.at(0);
    EXPECT_EQ(listener.protocol, Protocol::vnc);
    EXPECT_EQ(listener.host, "::");
    EXPECT_EQ(listener.port, 5901);
    EXPECT_EQ(listener.auth, (std::vector<AuthMethod>{AuthMethod::ticket}));
}

TEST(ConfigValues, HoursMayEndAtMidnight) {
    const Config config = parse_ok(R"(
[[vm]]
name = "x"
spice = "unix:/x"
  [[vm.allow]]
  users = ["a"]
  hours = "00:00-24:00"
)");
    EXPECT_EQ(config.vms.at(0).allow.at(0).hours, (TimeWindow{0, 24 * 60}));
}

TEST(ConfigValues, WeakMechanismsPassWhenExplicitlyAllowed) {
    const Config config = parse_ok(R"(
[sasl]
allow_weak_mechanisms = true
mech_list = ["digest-md5", "GSSAPI", "SCRAM-SHA-512", "GS2-KRB5"]
)");
    EXPECT_EQ(config.sasl.mech_list,
              (std::vector<std::string>{"DIGEST-MD5", "GSSAPI", "SCRAM-SHA-512", "GS2-KRB5"}));
}

TEST(ConfigValues, SaslauthdWithPlainIsFine) {
    const Config config = parse_ok(R"(
[sasl]
pwcheck_method = "saslauthd"
saslauthd_path = "/run/saslauthd/mux"
mech_list = ["PLAIN"]
)");
    EXPECT_EQ(config.sasl.pwcheck_method, "saslauthd");
    EXPECT_EQ(config.sasl.saslauthd_path, "/run/saslauthd/mux");
}

// ------------------------------------------------------------------------------ syntax and files

TEST(ConfigErrors, TomlSyntaxErrorHasItsLineAndColumn) {
    const ConfigError e = only_error(R"(
[gateway]
workers = 4
workers = 5
)");
    EXPECT_EQ(e.file, "test.toml");
    EXPECT_EQ(e.line, 3);
    EXPECT_GT(e.column, 0);
    EXPECT_EQ(e.key, "");
    EXPECT_THAT(e.message, HasSubstr("invalid TOML"));
}

TEST(ConfigErrors, UnreadableFileNamesTheFileAndTheReason) {
    const std::string path = "/nonexistent/vmgate/config.toml";
    const ConfigResult result = load_config_file(path);
    ASSERT_EQ(result.errors.size(), 1u);
    EXPECT_EQ(result.errors[0].file, path);
    EXPECT_EQ(result.errors[0].to_string(), path + ": cannot open: No such file or directory");
}

TEST(ConfigErrors, DirectoryIsNotAConfigFile) {
    const ConfigResult result = load_config_file(source_dir().string());
    ASSERT_EQ(result.errors.size(), 1u);
    EXPECT_THAT(result.errors[0].message, HasSubstr("Is a directory"));
}

TEST(ConfigErrors, ToStringIsFileLineColumnKeyMessage) {
    const ConfigError e{"a.toml", 4, 7, "listener[0].address", "bad"};
    EXPECT_EQ(e.to_string(), "a.toml:4:7: listener[0].address: bad");
}

// ------------------------------------------------------------------------------ unknown keys

TEST(ConfigErrors, UnknownKeySuggestsTheKnownOne) {
    const ConfigError e = only_error(R"(
[[listener]]
protocol = "spice"
adress = "0.0.0.0:5900"
address = "0.0.0.0:5900"
tls = false
vm = "x"

[[vm]]
name = "x"
spice = "unix:/x"
)");
    EXPECT_EQ(e.key, "listener[0].adress");
    EXPECT_EQ(e.line, 3);
    EXPECT_EQ(e.column, 1);
    EXPECT_EQ(e.message, "unknown key \"adress\" in [[listener]] (did you mean \"address\"?); known keys: protocol, "
                         "address, tls, vm, route, sni_suffix, connect_suffix, auth");
}

TEST(ConfigErrors, UnknownKeysEverywhere) {
    const ConfigResult result = parse(R"(
listeners = 1
[gateway]
worker = 2
[tls]
certificate = "x"
[sasl]
mechlist = ["PLAIN"]
[[vm]]
name = "x"
spice = "unix:/x"
seats = "deny"
  [[vm.allow]]
  users = ["a"]
  day = ["mon"]
)");
    ASSERT_EQ(result.errors.size(), 6u) << dump(result);
    EXPECT_EQ(result.errors[0].key, "listeners");
    EXPECT_THAT(result.errors[0].message, HasSubstr("at the top level (did you mean \"listener\"?)"));
    EXPECT_EQ(result.errors[1].key, "gateway.worker");
    EXPECT_EQ(result.errors[2].key, "tls.certificate");
    EXPECT_EQ(result.errors[3].key, "sasl.mechlist");
    EXPECT_EQ(result.errors[4].key, "vm[0].seats");
    EXPECT_THAT(result.errors[4].message, HasSubstr("(did you mean \"seat\"?)"));
    EXPECT_EQ(result.errors[5].key, "vm[0].allow[0].day");
    EXPECT_EQ(result.errors[5].line, 14);
    EXPECT_THAT(result.errors[5].message, HasSubstr("in [[vm.allow]] (did you mean \"days\"?)"));
}

TEST(ConfigErrors, WrongTypesSayWhatWasExpected) {
    const ConfigResult result = parse(R"(
[gateway]
workers = "4"
[[vm]]
name = "x"
spice = "unix:/x"
  [[vm.allow]]
  users = "charlie"
  view_only = "yes"
)");
    ASSERT_EQ(result.errors.size(), 3u) << dump(result);
    EXPECT_EQ(result.errors[0].message, "expected an integer, got string \"4\"");
    EXPECT_EQ(result.errors[1].key, "vm[0].allow[0].users");
    EXPECT_THAT(result.errors[1].message, HasSubstr("expected an array of strings"));
    EXPECT_EQ(result.errors[2].message, "expected true or false, got string \"yes\"");
}

TEST(ConfigErrors, SingleBracketListenerIsNotAnArrayOfTables) {
    const ConfigError e = only_error(R"(
[listener]
protocol = "spice"
)");
    EXPECT_EQ(e.key, "listener");
    EXPECT_EQ(e.line, 1);
    EXPECT_THAT(e.message, HasSubstr("expected [[listener]] sections (an array of tables)"));
}

// ------------------------------------------------------------------------------ listeners

TEST(ConfigErrors, ListenerAddressForms) {
    const ConfigResult result = parse(R"(
[[vm]]
name = "x"
spice = "unix:/x"
[[listener]]
protocol = "spice"
address = "0.0.0.0"
tls = false
vm = "x"
[[listener]]
protocol = "spice"
address = "0.0.0.0:0"
tls = false
vm = "x"
[[listener]]
protocol = "spice"
address = "::1:5900"
tls = false
vm = "x"
[[listener]]
protocol = "spice"
address = "0.0.0.0:65536"
tls = false
vm = "x"
)");
    ASSERT_EQ(result.errors.size(), 4u) << dump(result);
    EXPECT_EQ(result.errors[0].key, "listener[0].address");
    EXPECT_EQ(result.errors[0].line, 6);
    EXPECT_EQ(result.errors[0].column, 11);
    EXPECT_EQ(result.errors[0].message, "expected \"HOST:PORT\" or \"[IPV6]:PORT\", got \"0.0.0.0\"");
    EXPECT_EQ(result.errors[1].key, "listener[1].address");
    EXPECT_EQ(result.errors[1].message, "port must be a number from 1 to 65535, got \"0\"");
    EXPECT_EQ(result.errors[2].key, "listener[2].address");
    EXPECT_THAT(result.errors[2].message, HasSubstr("an IPv6 address needs brackets"));
    EXPECT_EQ(result.errors[3].key, "listener[3].address");
    EXPECT_EQ(result.errors[3].line, 21);
}

TEST(ConfigErrors, DuplicateListenerAddress) {
    const ConfigError e = only_error(R"(
[[vm]]
name = "x"
spice = "unix:/x"
[[listener]]
protocol = "spice"
address = "0.0.0.0:5900"
tls = false
vm = "x"
[[listener]]
protocol = "spice"
address = "0.0.0.0:5900"
tls = false
vm = "x"
)");
    EXPECT_EQ(e.key, "listener[1].address");
    EXPECT_EQ(e.line, 11);
    EXPECT_EQ(e.message, "\"0.0.0.0:5900\" is already used by listener[0] (line 4)");
}

TEST(ConfigErrors, FixedRouteNeedsAnExistingVm) {
    const ConfigResult result = parse(R"(
[[vm]]
name = "debianx"
spice = "unix:/x"
[[listener]]
protocol = "spice"
address = "0.0.0.0:1"
tls = false
[[listener]]
protocol = "spice"
address = "0.0.0.0:2"
tls = false
vm = "debianxx"
)");
    ASSERT_EQ(result.errors.size(), 2u) << dump(result);
    EXPECT_EQ(result.errors[0].key, "listener[0].vm");
    EXPECT_EQ(result.errors[0].line, 4);  // the [[listener]] header: the key is missing
    EXPECT_THAT(result.errors[0].message, HasSubstr("needs vm = \"NAME\""));
    EXPECT_EQ(result.errors[1].key, "listener[1].vm");
    EXPECT_EQ(result.errors[1].line, 12);
    EXPECT_EQ(result.errors[1].message, "no [[vm]] is named \"debianxx\" (did you mean \"debianx\"?); defined: debianx");
}

TEST(ConfigErrors, DidYouMeanIgnoresCase) {
    const ConfigError e = only_error(R"(
[[vm]]
name = "vm1"
spice = "unix:/x"
[[listener]]
protocol = "spice"
address = "0.0.0.0:1"
tls = false
vm = "VM1"
)");
    EXPECT_EQ(e.message, "no [[vm]] is named \"VM1\" (did you mean \"vm1\"?); defined: vm1");
}

TEST(ConfigErrors, ListenerVmNeedsAnUpstreamOfItsProtocol) {
    const ConfigError e = only_error(R"(
[tls]
cert = "c.pem"
key = "k.pem"
[[vm]]
name = "x"
spice = "unix:/x"
[[listener]]
protocol = "vnc"
address = "0.0.0.0:5901"
vm = "x"
)");
    EXPECT_EQ(e.key, "listener[0].vm");
    EXPECT_EQ(e.line, 10);
    EXPECT_THAT(e.message, HasSubstr("vm \"x\" has no vnc upstream, so a vnc listener cannot reach it"));
}

TEST(ConfigValues, VncListenersOfferPasswordSaslAndTicketsByDefault) {
    const Config config = parse_ok(R"(
[tls]
cert = "c.pem"
key = "k.pem"
[[vm]]
name = "x"
vnc = "unix:/x"
[[listener]]
protocol = "vnc"
address = "0.0.0.0:5901"
vm = "x"
)");
    EXPECT_EQ(config.listeners.at(0).auth,
              (std::vector<AuthMethod>{AuthMethod::password, AuthMethod::sasl, AuthMethod::ticket}));
}

TEST(ConfigErrors, VncListenerRules) {
    const ConfigResult result = parse(R"(
[tls]
cert = "c.pem"
key = "k.pem"
[[vm]]
name = "x"
spice = "unix:/s"
vnc = "unix:/v"
[[listener]]
protocol = "vnc"
address = "0.0.0.0:5901"
tls = false
vm = "x"
auth = ["certificate"]
[[listener]]
protocol = "spice"
address = "0.0.0.0:5902"
vm = "x"
auth = ["sasl", "password"]
)");
    ASSERT_EQ(result.errors.size(), 3u);
    EXPECT_EQ(result.errors[0].key, "listener[0].tls");
    EXPECT_THAT(result.errors[0].message, HasSubstr("a VNC listener needs tls = true"));
    EXPECT_EQ(result.errors[1].key, "listener[0].auth[0]");
    EXPECT_THAT(result.errors[1].message, HasSubstr("\"certificate\" needs client certificates: set [tls] client_cert"));
    EXPECT_EQ(result.errors[2].key, "listener[1].auth[1]");
    EXPECT_THAT(result.errors[2].message, HasSubstr("\"password\" applies only to VNC listeners"));
}

TEST(ConfigErrors, SniRouteRules) {
    const ConfigResult result = parse(R"(
[tls]
cert = "/c"
key = "/k"
[[vm]]
name = "x"
spice = "unix:/x"
[[listener]]
protocol = "spice"
address = "0.0.0.0:1"
route = "sni"
vm = "x"
sni_suffix = "vms.example.com"
[[listener]]
protocol = "spice"
address = "0.0.0.0:2"
tls = false
route = "sni"
[[listener]]
protocol = "spice"
address = "0.0.0.0:3"
vm = "x"
sni_suffix = ".vms.example.com"
)");
    ASSERT_EQ(result.errors.size(), 4u) << dump(result);
    EXPECT_EQ(result.errors[0].key, "listener[0].vm");
    EXPECT_THAT(result.errors[0].message, HasSubstr("route = \"sni\" takes the VM from the TLS server name"));
    EXPECT_EQ(result.errors[1].key, "listener[0].sni_suffix");
    EXPECT_EQ(result.errors[1].line, 12);
    EXPECT_THAT(result.errors[1].message, HasSubstr("must start with '.'"));
    EXPECT_EQ(result.errors[2].key, "listener[1].tls");
    EXPECT_THAT(result.errors[2].message, HasSubstr("route = \"sni\" needs tls = true"));
    EXPECT_EQ(result.errors[3].key, "listener[2].sni_suffix");
    EXPECT_EQ(result.errors[3].message, "only applies to route = \"sni\"");
}

TEST(ConfigErrors, ConnectRouteRules) {
    const ConfigResult result = parse(R"(
[tls]
cert = "/c"
key = "/k"
[[vm]]
name = "x"
spice = "unix:/x"
vnc = "unix:/y"
[[listener]]
protocol = "spice"
address = "0.0.0.0:1"
route = "connect"
vm = "x"
connect_suffix = "vms.example.com"
[[listener]]
protocol = "spice"
address = "0.0.0.0:2"
tls = false
route = "connect"
sni_suffix = ".vms.example.com"
[[listener]]
protocol = "vnc"
address = "0.0.0.0:3"
route = "connect"
[[listener]]
protocol = "spice"
address = "0.0.0.0:4"
route = "sni"
connect_suffix = ".vms.example.com"
)");
    ASSERT_EQ(result.errors.size(), 6u) << dump(result);
    EXPECT_EQ(result.errors[0].key, "listener[0].vm");
    EXPECT_THAT(result.errors[0].message, HasSubstr("takes the VM from the host of the client's HTTP CONNECT"));
    EXPECT_EQ(result.errors[1].key, "listener[0].connect_suffix");
    EXPECT_THAT(result.errors[1].message, HasSubstr("must start with '.'"));
    EXPECT_EQ(result.errors[2].key, "listener[1].tls");
    EXPECT_THAT(result.errors[2].message, HasSubstr("route = \"connect\" needs tls = true"));
    EXPECT_EQ(result.errors[3].key, "listener[1].sni_suffix");
    EXPECT_EQ(result.errors[3].message, "only applies to route = \"sni\"");
    EXPECT_EQ(result.errors[4].key, "listener[2].route");
    EXPECT_THAT(result.errors[4].message, HasSubstr("VNC clients have no HTTP proxy support"));
    EXPECT_EQ(result.errors[5].key, "listener[3].connect_suffix");
    EXPECT_EQ(result.errors[5].message, "only applies to route = \"connect\"");
}

TEST(ConfigValues, ConnectRoute) {
    const ConfigResult result = parse(R"(
[tls]
cert = "/c"
key = "/k"
[[vm]]
name = "x"
spice = "unix:/x"
[[listener]]
protocol = "spice"
address = "0.0.0.0:3128"
route = "connect"
connect_suffix = ".vms.example.com"
)");
    ASSERT_TRUE(result.config) << dump(result);
    EXPECT_EQ(result.config->listeners[0].route, Route::connect);
    EXPECT_EQ(result.config->listeners[0].connect_suffix, ".vms.example.com");
}

TEST(ConfigErrors, TlsListenerNeedsCertAndKey) {
    const ConfigError e = only_error(R"(
[[vm]]
name = "x"
spice = "unix:/x"
[[listener]]
protocol = "spice"
address = "0.0.0.0:5900"
vm = "x"
)");
    EXPECT_EQ(e.key, "listener[0].tls");
    EXPECT_EQ(e.line, 4);
    EXPECT_THAT(e.message, HasSubstr("a TLS listener needs [tls] cert and key"));
}

TEST(ConfigErrors, ListenerEnumsAndAuth) {
    const ConfigResult result = parse(R"(
[[vm]]
name = "x"
spice = "unix:/x"
[[listener]]
address = "0.0.0.0:1"
tls = false
vm = "x"
[[listener]]
protocol = "spcie"
address = "0.0.0.0:2"
tls = false
vm = "x"
auth = ["sasl", "password", "sasl"]
)");
    ASSERT_EQ(result.errors.size(), 4u) << dump(result);
    EXPECT_EQ(result.errors[0].key, "listener[0].protocol");
    EXPECT_THAT(result.errors[0].message, HasSubstr("missing; every [[listener]] needs protocol = \"spice\" or \"vnc\""));
    EXPECT_EQ(result.errors[1].key, "listener[1].protocol");
    EXPECT_EQ(result.errors[1].message, "expected one of spice, vnc; got \"spcie\" (did you mean \"spice\"?)");
    EXPECT_EQ(result.errors[2].key, "listener[1].auth[1]");
    EXPECT_EQ(result.errors[3].key, "listener[1].auth[2]");
    EXPECT_EQ(result.errors[3].message, "\"sasl\" is listed twice");
}

// ------------------------------------------------------------------------------ VMs

TEST(ConfigErrors, VmNamesMustBeDnsLabelsAndUnique) {
    const ConfigResult result = parse(R"(
[[vm]]
name = "Debian_X"
spice = "unix:/x"
[[vm]]
name = "web"
spice = "unix:/y"
[[vm]]
name = "web"
spice = "unix:/z"
[[vm]]
spice = "unix:/w"
)");
    ASSERT_EQ(result.errors.size(), 3u) << dump(result);
    EXPECT_EQ(result.errors[0].key, "vm[0].name");
    EXPECT_EQ(result.errors[0].line, 2);
    EXPECT_THAT(result.errors[0].message, HasSubstr("\"Debian_X\" is not DNS-label-safe: use 1 to 63 lowercase"));
    EXPECT_EQ(result.errors[1].key, "vm[2].name");
    EXPECT_EQ(result.errors[1].line, 8);
    EXPECT_EQ(result.errors[1].message, "\"web\" is already the name of vm[1] (line 4)");
    EXPECT_EQ(result.errors[2].key, "vm[3].name");
    EXPECT_EQ(result.errors[2].line, 10);
}

TEST(ConfigErrors, Upstreams) {
    const ConfigResult result = parse(R"(
[[vm]]
name = "a"
spice = "unix:run/a.sock"
vnc = "tcp:localhost"
[[vm]]
name = "b"
spice = "http://b"
[[vm]]
name = "c"
[[vm]]
name = "d"
spice = "unix:/d"
password_file = "/etc/d.pass"
)");
    ASSERT_EQ(result.errors.size(), 5u) << dump(result);
    EXPECT_EQ(result.errors[0].key, "vm[0].spice");
    EXPECT_EQ(result.errors[0].message, "the unix socket path must be absolute, got \"run/a.sock\"");
    EXPECT_EQ(result.errors[1].key, "vm[0].vnc");
    EXPECT_EQ(result.errors[2].key, "vm[1].spice");
    EXPECT_EQ(result.errors[2].message,
              "expected \"unix:/ABSOLUTE/PATH\", \"tcp:HOST:PORT\", \"qmp:/ABSOLUTE/PATH\" or \"libvirt:DOMAIN\", "
              "got \"http://b\"");
    EXPECT_EQ(result.errors[3].key, "vm[2]");
    EXPECT_EQ(result.errors[3].line, 8);
    EXPECT_THAT(result.errors[3].message, HasSubstr("needs a console upstream"));
    EXPECT_EQ(result.errors[4].key, "vm[3].password_file");
    EXPECT_EQ(result.errors[4].line, 13);
    EXPECT_THAT(result.errors[4].message, HasSubstr("applies only to tcp: upstreams"));
}

TEST(ConfigUpstreams, QmpForBothProtocols) {
    const Config config = parse_ok(R"(
[[vm]]
name = "q"
spice = "qmp:/run/vmgate/q.qmp"
vnc = "qmp:/run/vmgate/q.qmp"
)");
    const VmConfig& vm = config.vms.at(0);
    for (const auto* upstream : {&*vm.spice, &*vm.vnc}) {
        EXPECT_EQ(upstream->kind, UpstreamConfig::Kind::qmp);
        EXPECT_EQ(upstream->path, "/run/vmgate/q.qmp");
        EXPECT_EQ(upstream->password_file, "");
    }
}

// The password file is the tcp: upstream's; the QMP one needs none and does not get it.
TEST(ConfigUpstreams, PasswordFileNextToAQmpUpstreamGoesToTheTcpOne) {
    const Config config = parse_ok(R"(
[[vm]]
name = "m"
spice = "qmp:/run/vmgate/m.qmp"
vnc = "tcp:127.0.0.1:5901"
password_file = "/etc/vmgate/m.pass"
)");
    EXPECT_EQ(config.vms[0].spice->password_file, "");
    EXPECT_EQ(config.vms[0].vnc->password_file, "/etc/vmgate/m.pass");
}

TEST(ConfigErrors, QmpUpstreams) {
    const ConfigResult result = parse(R"(
[[vm]]
name = "a"
spice = "qmp:run/a.qmp"
vnc = "qmp:"
[[vm]]
name = "b"
vnc = "qmp:/run/b.qmp"
password_file = "/etc/b.pass"
[[vm]]
name = "c"
spice = "libvirt:"
)");
    ASSERT_EQ(result.errors.size(), 4u) << dump(result);
    EXPECT_EQ(result.errors[0].key, "vm[0].spice");
    EXPECT_EQ(result.errors[0].message, "the QMP socket path must be absolute, got \"run/a.qmp\"");
    EXPECT_EQ(result.errors[1].key, "vm[0].vnc");
    EXPECT_EQ(result.errors[1].message, "the QMP socket path must be absolute, got \"\"");
    EXPECT_EQ(result.errors[2].key, "vm[1].password_file");
    EXPECT_EQ(result.errors[2].line, 8);
    EXPECT_THAT(result.errors[2].message, HasSubstr("a qmp: upstream needs no password"));
    EXPECT_EQ(result.errors[3].key, "vm[2].spice");
    EXPECT_EQ(result.errors[3].message, "\"libvirt:\" needs the domain's name or UUID, like \"libvirt:debianx\"");
}

TEST(ConfigUpstreams, LibvirtDomainOnTheConfiguredUri) {
    const Config config = parse_ok(R"(
[libvirt]
uri = "qemu+ssh://root@kvm1/system"
[[vm]]
name = "web"
spice = "libvirt:web-prod"
vnc = "libvirt:6f1c2a3e-58b4-4d3a-9c1e-2b7d9e0f4a51"
)");
    EXPECT_EQ(config.libvirt.inventory, LibvirtConfig::Inventory::none);
    const VmConfig& vm = config.vms.at(0);
    EXPECT_EQ(vm.spice->kind, UpstreamConfig::Kind::libvirt);
    EXPECT_EQ(vm.spice->domain, "web-prod");
    EXPECT_EQ(vm.spice->uri, "qemu+ssh://root@kvm1/system");
    EXPECT_EQ(vm.vnc->domain, "6f1c2a3e-58b4-4d3a-9c1e-2b7d9e0f4a51");
}

TEST(ConfigUpstreams, LibvirtDefaultUriWithoutASection) {
    const Config config = parse_ok("[[vm]]\nname = \"a\"\nspice = \"libvirt:a\"\n");
    EXPECT_EQ(config.vms.at(0).spice->uri, "qemu:///system");
}

// A [[vm]] without upstreams is the policy of an inventory domain: both displays via libvirt.
TEST(ConfigUpstreams, InventoryVmsTakeTheirUpstreamsFromLibvirt) {
    const Config config = parse_ok(R"(
[libvirt]
vms = ["web", "6f1c2a3e-58b4-4d3a-9c1e-2b7d9e0f4a51"]
[[vm]]
name = "web"
[[vm]]
name = "6f1c2a3e-58b4-4d3a-9c1e-2b7d9e0f4a51"
  [[vm.allow]]
  users = ["anne"]
)");
    EXPECT_EQ(config.libvirt.inventory, LibvirtConfig::Inventory::named);
    EXPECT_TRUE(config.libvirt.lists("web"));
    EXPECT_FALSE(config.libvirt.lists("db"));
    for (const VmConfig& vm : config.vms) {
        for (const auto* upstream : {&*vm.spice, &*vm.vnc}) {
            EXPECT_EQ(upstream->kind, UpstreamConfig::Kind::libvirt);
            EXPECT_EQ(upstream->domain, vm.name);
            EXPECT_EQ(upstream->text, "libvirt:" + vm.name);
            EXPECT_EQ(upstream->uri, "qemu:///system");
        }
    }
    const Config all = parse_ok("[libvirt]\nvms = \"all\"\n[[vm]]\nname = \"anything\"\n");
    EXPECT_EQ(all.libvirt.inventory, LibvirtConfig::Inventory::all);
    EXPECT_EQ(all.vms.at(0).spice->domain, "anything");
}

TEST(ConfigErrors, LibvirtSection) {
    const ConfigResult result = parse(R"(
[libvirt]
uri = ""
vms = "some"
inventory = true
[[vm]]
name = "a"
)");
    ASSERT_EQ(result.errors.size(), 4u) << dump(result);
    EXPECT_EQ(result.errors[0].key, "libvirt.uri");
    EXPECT_EQ(result.errors[0].message, "must not be empty; omit the key to use the default");
    EXPECT_EQ(result.errors[1].key, "libvirt.vms");
    EXPECT_EQ(result.errors[1].message, "expected \"all\" or an array of domain names or UUIDs, got \"some\"");
    EXPECT_EQ(result.errors[2].key, "libvirt.inventory");
    EXPECT_EQ(result.errors[3].key, "vm[0]");
    EXPECT_THAT(result.errors[3].message, HasSubstr("or a [libvirt] section with vms = \"all\" or a list naming this VM"));

    const ConfigResult named = parse("[libvirt]\nvms = [\"b\"]\n[[vm]]\nname = \"a\"\n");
    ASSERT_EQ(named.errors.size(), 1u) << dump(named);
    EXPECT_EQ(named.errors[0].message, "needs a console upstream: \"a\" is not in [libvirt] vms");
    const ConfigResult empty = parse("[libvirt]\nvms = []\n");
    ASSERT_EQ(empty.errors.size(), 1u) << dump(empty);
    EXPECT_EQ(empty.errors[0].message, "is empty; omit the key for no inventory, or write \"all\"");
}

TEST(ConfigErrors, VmSeatAndDurations) {
    const ConfigResult result = parse(R"(
[[vm]]
name = "x"
spice = "unix:/x"
seat = "same_user"
idle_timeout = "30"
max_session = "0s"
)");
    ASSERT_EQ(result.errors.size(), 3u) << dump(result);
    EXPECT_EQ(result.errors[0].key, "vm[0].seat");
    EXPECT_EQ(result.errors[0].message,
              "expected one of takeover, deny, same-user; got \"same_user\" (did you mean \"same-user\"?)");
    EXPECT_EQ(result.errors[1].key, "vm[0].idle_timeout");
    EXPECT_EQ(result.errors[1].line, 5);
    EXPECT_THAT(result.errors[1].message, HasSubstr("expected a duration"));
    EXPECT_EQ(result.errors[2].key, "vm[0].max_session");
}

// ------------------------------------------------------------------------------ allow rules

constexpr std::string_view rule_prefix = R"(
[groups]
accounting = ["charlie", "boss"]
[[vm]]
name = "x"
spice = "unix:/x"
  [[vm.allow]]
)";  // the rule's own keys start on line 7

std::string with_rule(std::string_view keys) { return std::string(rule_prefix) + std::string(keys); }

TEST(ConfigErrors, RuleNamingNobodyIsRefused) {
    const ConfigError e = only_error(with_rule("hours = \"18:00-23:00\"\n"));
    EXPECT_EQ(e.key, "vm[0].allow[0]");
    EXPECT_EQ(e.line, 6);
    EXPECT_THAT(e.message, HasSubstr("a rule that names nobody would admit everyone"));
}

TEST(ConfigErrors, RuleWithEmptyUserListIsRefused) {
    const ConfigError e = only_error(with_rule("users = []\ngroups = []\n"));
    EXPECT_EQ(e.key, "vm[0].allow[0]");
}

TEST(ConfigErrors, UndefinedGroup) {
    const ConfigError e = only_error(with_rule("groups = [\"acounting\"]\n"));
    EXPECT_EQ(e.key, "vm[0].allow[0].groups[0]");
    EXPECT_EQ(e.line, 7);
    EXPECT_EQ(e.column, 11);
    EXPECT_EQ(e.message, "group \"acounting\" is not defined in [groups] (did you mean \"accounting\"?); define it "
                         "there, or write \"unix:acounting\" for a local Unix group");
}

TEST(ConfigErrors, UnknownDay) {
    const ConfigError e = only_error(with_rule("users = [\"maggie\"]\ndays = [\"mon\", \"frii\"]\n"));
    EXPECT_EQ(e.key, "vm[0].allow[0].days[1]");
    EXPECT_EQ(e.line, 8);
    EXPECT_EQ(e.column, 16);
    EXPECT_EQ(e.message,
              "unknown day \"frii\"; use mon, tue, wed, thu, fri, sat, sun, or a range like \"mon-fri\"");
    EXPECT_EQ(e.to_string(), "test.toml:8:16: vm[0].allow[0].days[1]: " + e.message);
}

TEST(ConfigErrors, EmptyDaysNeverMatch) {
    const ConfigError e = only_error(with_rule("users = [\"maggie\"]\ndays = []\n"));
    EXPECT_EQ(e.key, "vm[0].allow[0].days");
    EXPECT_THAT(e.message, HasSubstr("could never match"));
}

TEST(ConfigErrors, HoursFormat) {
    const ConfigError e = only_error(with_rule("users = [\"boss\"]\nhours = \"18-23\"\n"));
    EXPECT_EQ(e.key, "vm[0].allow[0].hours");
    EXPECT_EQ(e.line, 8);
    EXPECT_EQ(e.message, "expected \"HH:MM-HH:MM\", got \"18-23\"");
}

TEST(ConfigErrors, HoursRangeAndEquality) {
    EXPECT_EQ(only_error(with_rule("users = [\"a\"]\nhours = \"18:00-24:30\"\n")).message,
              "\"24:30\" is not a time of day; use 00:00 to 24:00");
    EXPECT_THAT(only_error(with_rule("users = [\"a\"]\nhours = \"08:00-08:00\"\n")).message,
                HasSubstr("starts and ends at the same time"));
    EXPECT_THAT(only_error(with_rule("users = [\"a\"]\nhours = \"00:00-00:00\"\n")).message,
                HasSubstr("starts and ends at the same time"));
    EXPECT_THAT(only_error(with_rule("users = [\"a\"]\nhours = \"24:00-06:00\"\n")).message,
                HasSubstr("24:00 can only end a window"));
}

TEST(ConfigErrors, DatesMustBeOrderedAndReal) {
    const ConfigError order = only_error(with_rule("users = [\"a\"]\nfrom = \"2026-03-01\"\nuntil = \"2026-02-01\"\n"));
    EXPECT_EQ(order.key, "vm[0].allow[0].until");
    EXPECT_EQ(order.line, 9);
    EXPECT_EQ(order.message, "until (2026-02-01) is before from (2026-03-01): the rule could never match");

    const ConfigError calendar = only_error(with_rule("users = [\"a\"]\nfrom = \"2026-02-29\"\n"));
    EXPECT_EQ(calendar.key, "vm[0].allow[0].from");
    EXPECT_EQ(calendar.message, "\"2026-02-29\" is not a calendar date");

    EXPECT_EQ(only_error(with_rule("users = [\"a\"]\nuntil = \"1/2/2026\"\n")).message,
              "expected a date \"YYYY-MM-DD\", got \"1/2/2026\"");
}

TEST(ConfigErrors, SourcesMustBeCidrs) {
    const ConfigError e = only_error(with_rule("users = [\"a\"]\nsources = [\"10.0.0.0/8\", \"10.0.0/8\"]\n"));
    EXPECT_EQ(e.key, "vm[0].allow[0].sources[1]");
    EXPECT_EQ(e.line, 8);
    EXPECT_THAT(e.message, HasSubstr("\"10.0.0/8\" is not an IP address or CIDR block"));
}

TEST(ConfigErrors, DenyChannels) {
    const ConfigResult result = parse(with_rule("users = [\"a\"]\ndeny_channels = [\"main\", \"usbredr\"]\n"));
    ASSERT_EQ(result.errors.size(), 2u) << dump(result);
    EXPECT_EQ(result.errors[0].key, "vm[0].allow[0].deny_channels[0]");
    EXPECT_THAT(result.errors[0].message, HasSubstr("the main channel cannot be denied"));
    EXPECT_EQ(result.errors[1].key, "vm[0].allow[0].deny_channels[1]");
    EXPECT_THAT(result.errors[1].message, HasSubstr("unknown SPICE channel \"usbredr\" (did you mean \"usbredir\"?)"));
}

TEST(ConfigErrors, BadUserAndGroupMemberNames) {
    const ConfigResult result = parse(R"(
[groups]
g = ["ok", "unix:", "a b"]
"unix:x" = ["c"]
[[vm]]
name = "x"
spice = "unix:/x"
  [[vm.allow]]
  users = ["@realm", "bob@", "alice@example.com@CORP"]
)");
    ASSERT_EQ(result.errors.size(), 5u) << dump(result);
    EXPECT_EQ(result.errors[0].key, "groups.g[1]");
    EXPECT_EQ(result.errors[1].key, "groups.g[2]");
    EXPECT_EQ(result.errors[2].key, "groups.unix:x");
    EXPECT_EQ(result.errors[3].key, "vm[0].allow[0].users[0]");
    EXPECT_EQ(result.errors[4].message, "expected \"user\" or \"user@realm\", got \"bob@\"");
}

// ------------------------------------------------------------------------------ gateway, tls, sasl

TEST(ConfigErrors, GatewayValues) {
    const ConfigResult result = parse(R"(
[gateway]
workers = 257
handshake_timeout = "10 s"
metrics = "9464"
state_dir = ""
)");
    ASSERT_EQ(result.errors.size(), 4u) << dump(result);
    EXPECT_EQ(result.errors[0].key, "gateway.workers");
    EXPECT_EQ(result.errors[0].line, 2);
    EXPECT_EQ(result.errors[0].message, "expected 0 to 256 (0 = one per CPU), got 257");
    EXPECT_EQ(result.errors[1].key, "gateway.handshake_timeout");
    EXPECT_EQ(result.errors[2].key, "gateway.metrics");
    EXPECT_EQ(result.errors[3].key, "gateway.state_dir");
    EXPECT_EQ(result.errors[3].message, "must not be empty; omit the key to use the default");
}

TEST(ConfigErrors, NegativeWorkers) {
    EXPECT_EQ(only_error("[gateway]\nworkers = -1\n").key, "gateway.workers");
}

TEST(ConfigErrors, TlsPairsAndClientCa) {
    const ConfigResult result = parse(R"(
[tls]
cert = "/etc/vmgate/cert.pem"
client_cert = "required"
)");
    ASSERT_EQ(result.errors.size(), 2u) << dump(result);
    EXPECT_EQ(result.errors[0].key, "tls.cert");
    EXPECT_EQ(result.errors[0].message,
              "cert is set but key is not; the certificate and its private key go together");
    EXPECT_EQ(result.errors[1].key, "tls.client_cert");
    EXPECT_EQ(result.errors[1].line, 3);
    EXPECT_THAT(result.errors[1].message, HasSubstr("client_cert = \"required\" needs client_ca"));
}

TEST(ConfigTls, ClientIdentityDefaultsToTheSubjectCn) {
    const Config config = parse_ok(R"(
[tls]
client_ca = "/etc/vmgate/client-ca.pem"
client_cert = "required"
)");
    EXPECT_EQ(config.tls.client_ca, "/etc/vmgate/client-ca.pem");
    EXPECT_EQ(config.tls.client_cert, ClientCertMode::required);
    EXPECT_EQ(config.tls.client_identity, CertIdentityField::cn);
}

TEST(ConfigTls, ClientIdentityNamesEachCertificateField) {
    const std::pair<std::string_view, CertIdentityField> cases[] = {
        {"cn", CertIdentityField::cn}, {"email", CertIdentityField::email}, {"upn", CertIdentityField::upn}};
    for (const auto& [text, field] : cases) {
        const Config config = parse_ok(std::string("[tls]\nclient_ca = \"ca.pem\"\nclient_cert = \"optional\"\n"
                                                   "client_identity = \"") + std::string(text) + "\"\n");
        EXPECT_EQ(config.tls.client_identity, field) << text;
    }
}

TEST(ConfigErrors, ClientIdentityValueSaysWhatIsAllowed) {
    const ConfigError error = only_error(R"(
[tls]
client_ca = "ca.pem"
client_cert = "optional"
client_identity = "mail"
)");
    EXPECT_EQ(error.key, "tls.client_identity");
    EXPECT_EQ(error.line, 4);
    EXPECT_EQ(error.column, 19);
    EXPECT_EQ(error.message, "expected one of cn, email, upn; got \"mail\" (did you mean \"email\"?)");
    EXPECT_EQ(error.to_string(),
              "test.toml:4:19: tls.client_identity: expected one of cn, email, upn; got \"mail\" "
              "(did you mean \"email\"?)");
}

TEST(ConfigErrors, ClientIdentityMustBeAString) {
    const ConfigError error = only_error(R"(
[tls]
client_ca = "ca.pem"
client_cert = "optional"
client_identity = 1
)");
    EXPECT_EQ(error.key, "tls.client_identity");
    EXPECT_EQ(error.message, "expected a string, got integer 1");
}

TEST(ConfigErrors, ClientIdentityHasNoEffectWithoutClientCert) {
    for (std::string_view mode : {"", "client_cert = \"none\"\n"}) {
        const ConfigError error =
            only_error(std::string("[tls]\nclient_ca = \"ca.pem\"\n") + std::string(mode) + "client_identity = \"upn\"\n");
        EXPECT_EQ(error.key, "tls.client_identity") << mode;
        EXPECT_EQ(error.line, mode.empty() ? 3 : 4);
        EXPECT_EQ(error.message, "has no effect without client_cert: no client is asked for a certificate; set "
                                 "client_cert = \"optional\" or \"required\" (with client_ca), or remove "
                                 "client_identity");
    }
}

TEST(ConfigErrors, MalformedClientCertIsTheOnlyComplaint) {
    // client_cert falls back to "none" when malformed; client_identity must not then be blamed.
    const ConfigError error = only_error(R"(
[tls]
client_ca = "ca.pem"
client_cert = "requried"
client_identity = "email"
)");
    EXPECT_EQ(error.key, "tls.client_cert");
    EXPECT_EQ(error.message,
              "expected one of none, optional, required; got \"requried\" (did you mean \"required\"?)");
}

TEST(ConfigErrors, WeakMechanismsAreRefusedWithTheReason) {
    const ConfigResult result = parse(R"(
[sasl]
mech_list = ["SCRAM-SHA-256",
             "DIGEST-MD5", "CRAM-MD5", "LOGIN", "ANONYMOUS", "NTLM", "OTP", "KERBEROS_V4"]
)");
    ASSERT_EQ(result.errors.size(), 7u) << dump(result);
    EXPECT_EQ(result.errors[0].key, "sasl.mech_list[1]");
    EXPECT_EQ(result.errors[0].line, 3);
    EXPECT_EQ(result.errors[0].column, 14);
    EXPECT_EQ(result.errors[0].message,
              "DIGEST-MD5 is obsolete (RFC 6331); remove it, or set allow_weak_mechanisms = true to offer it anyway");
    EXPECT_EQ(result.errors[6].key, "sasl.mech_list[7]");
    EXPECT_THAT(result.errors[6].message, HasSubstr("unknown SASL mechanism \"KERBEROS_V4\""));
}

TEST(ConfigErrors, ScramNeedsStoredSecretsNotSaslauthd) {
    const ConfigError written = only_error(R"(
[sasl]
pwcheck_method = "saslauthd"
mech_list = ["PLAIN", "SCRAM-SHA-1"]
)");
    EXPECT_EQ(written.key, "sasl.mech_list[1]");
    EXPECT_EQ(written.line, 3);
    EXPECT_THAT(written.message, HasSubstr("SCRAM-SHA-1 needs secrets stored by the server"));
    EXPECT_THAT(written.message, HasSubstr("saslauthd only checks plaintext passwords"));

    const ConfigError by_default = only_error("[sasl]\npwcheck_method = \"saslauthd\"\n");
    EXPECT_EQ(by_default.key, "sasl.pwcheck_method");
    EXPECT_EQ(by_default.line, 2);
    EXPECT_THAT(by_default.message, HasSubstr("the default mech_list includes it"));
}

// ------------------------------------------------------------------------------ many at once

TEST(ConfigErrors, AllErrorsAreReportedInFileOrder) {
    const ConfigResult result = parse(R"(
[[listener]]
protocol = "spice"
address = "0.0.0.0:99999"
tls = false
vm = "vm1"

[[vm]]
name = "vm1"
spice = "unix:/run/vm1.sock"
  [[vm.allow]]
  users = ["maggie"]
  days = ["frii"]
  hours = "9-17"
  [[vm.allow]]
  view_only = true
)");
    EXPECT_FALSE(result.config);
    ASSERT_EQ(result.errors.size(), 4u) << dump(result);
    EXPECT_EQ(result.errors[0].to_string(),
              "test.toml:3:11: listener[0].address: port must be a number from 1 to 65535, got \"99999\"");
    EXPECT_EQ(result.errors[1].line, 12);
    EXPECT_EQ(result.errors[1].key, "vm[0].allow[0].days[0]");
    EXPECT_EQ(result.errors[2].line, 13);
    EXPECT_EQ(result.errors[2].key, "vm[0].allow[0].hours");
    EXPECT_EQ(result.errors[3].line, 14);
    EXPECT_EQ(result.errors[3].key, "vm[0].allow[1]");
}

// ------------------------------------------------------------------------------ small functions

TEST(ConfigDuration, Parses) {
    using std::chrono::seconds;
    EXPECT_EQ(parse_duration("45s"), seconds(45));
    EXPECT_EQ(parse_duration("30m"), seconds(1800));
    EXPECT_EQ(parse_duration("1h30m"), seconds(5400));
    EXPECT_EQ(parse_duration("2d"), seconds(172800));
    EXPECT_EQ(parse_duration("1d2h3m4s"), seconds(93784));
    EXPECT_EQ(parse_duration("90s"), seconds(90));
}

TEST(ConfigDuration, RejectsMalformedAndZero) {
    for (std::string_view text : {"", "10", "s", "0s", "0h0m", "1h1h", "30m1h", "1.5h", "-1s", "10S", " 10s",
                                  "10s ", "1w", "9999999999s"})
        EXPECT_FALSE(parse_duration(text)) << text;
}

TEST(ConfigDuration, FormatsAsWrittenAndRoundTrips) {
    using std::chrono::seconds;
    EXPECT_EQ(format_duration(seconds(5400)), "1h30m");
    EXPECT_EQ(format_duration(seconds(93784)), "1d2h3m4s");
    EXPECT_EQ(format_duration(seconds(3)), "3s");
    EXPECT_EQ(format_duration(seconds(0)), "0s");
    for (long n : {1L, 59L, 60L, 61L, 3600L, 86399L, 86400L, 1000000L})
        EXPECT_EQ(parse_duration(format_duration(seconds(n))), seconds(n)) << n;
}

TEST(ConfigNames, ToStringAndFindVm) {
    EXPECT_EQ(to_string(Protocol::spice), "spice");
    EXPECT_EQ(to_string(Protocol::vnc), "vnc");
    EXPECT_EQ(to_string(SeatPolicy::takeover), "takeover");
    EXPECT_EQ(to_string(SeatPolicy::deny), "deny");
    EXPECT_EQ(to_string(SeatPolicy::same_user), "same-user");

    Config config;
    config.vms.resize(2);
    config.vms[0].name = "a";
    config.vms[1].name = "b";
    ASSERT_NE(config.find_vm("b"), nullptr);
    EXPECT_EQ(config.find_vm("b")->name, "b");
    EXPECT_EQ(config.find_vm("c"), nullptr);
}

}  // namespace
}  // namespace vmgate::core

namespace vmgate::core {
namespace {

TEST(ConfigHandshakeLimits, DefaultsAndBounds) {
    auto ok = parse_config("[gateway]\nmax_handshakes = 10\n", "t.toml");
    ASSERT_TRUE(ok.config);
    EXPECT_EQ(ok.config->gateway.max_handshakes, 10u);
    EXPECT_EQ(ok.config->gateway.max_handshakes_per_source, 10u);  // the default follows the total

    auto defaults = parse_config("", "t.toml");
    ASSERT_TRUE(defaults.config);
    EXPECT_EQ(defaults.config->gateway.max_handshakes, 256u);
    EXPECT_EQ(defaults.config->gateway.max_handshakes_per_source, 32u);

    auto zero = parse_config("[gateway]\nmax_handshakes = 0\n", "t.toml");
    ASSERT_EQ(zero.errors.size(), 1u);
    EXPECT_EQ(zero.errors[0].key, "gateway.max_handshakes");
    EXPECT_EQ(zero.errors[0].line, 2);

    auto inverted = parse_config("[gateway]\nmax_handshakes = 4\nmax_handshakes_per_source = 8\n", "t.toml");
    ASSERT_EQ(inverted.errors.size(), 1u);
    EXPECT_EQ(inverted.errors[0].key, "gateway.max_handshakes_per_source");
    EXPECT_NE(inverted.errors[0].message.find("more than max_handshakes (4)"), std::string::npos);
}

TEST(ConfigTicketKeyStock, DefaultsAndBounds) {
    auto defaults = parse_config("", "t.toml");
    ASSERT_TRUE(defaults.config);
    EXPECT_EQ(defaults.config->gateway.ticket_key_stock, 32u);

    auto none = parse_config("[gateway]\nticket_key_stock = 0\n", "t.toml");
    ASSERT_TRUE(none.config);
    EXPECT_EQ(none.config->gateway.ticket_key_stock, 0u);

    auto huge = parse_config("[gateway]\nticket_key_stock = 10001\n", "t.toml");
    ASSERT_EQ(huge.errors.size(), 1u);
    EXPECT_EQ(huge.errors[0].key, "gateway.ticket_key_stock");
    EXPECT_EQ(huge.errors[0].line, 2);
}

}  // namespace
}  // namespace vmgate::core
