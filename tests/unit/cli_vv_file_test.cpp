// `vmgate vv`: the listener and host a connection file names, its GKeyFile text, and what it
// says about the gateway's certificate (checked here against certificates made in-test; the
// e2e test opens such files with the real spice-gtk).
#include "cli/server_certificate.hpp"
#include "cli/vv_file.hpp"
#include "x509_test_util.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>

namespace vmgate::cli {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using test::AltName;
using test::AltNameKind;
using test::CertSpec;
using test::Credential;

// vm1: a SASL listener and a ticket listener of its own, and an SNI listener; vm2: only the SNI
// listener and a plain one; vm3: tickets alone on its own listener.
constexpr std::string_view kConfig = R"([tls]
cert = "/nonexistent/cert.pem"
key = "/nonexistent/key.pem"

[[listener]]
protocol = "spice"
address = "0.0.0.0:5900"
route = "sni"
sni_suffix = ".vms.example.com"

[[listener]]
protocol = "spice"
address = "192.0.2.10:5901"
vm = "vm1"

[[listener]]
protocol = "spice"
address = "[::]:5902"
vm = "vm1"
auth = ["ticket"]

[[listener]]
protocol = "spice"
address = "192.0.2.10:5903"
tls = false
vm = "vm2"

[[listener]]
protocol = "spice"
address = "192.0.2.10:5904"
vm = "vm3"
auth = ["ticket"]

[[listener]]
protocol = "vnc"
address = "192.0.2.10:5905"
vm = "vm4"

[[vm]]
name = "vm1"
spice = "unix:/nonexistent/vm1.sock"

[[vm]]
name = "vm2"
spice = "unix:/nonexistent/vm2.sock"

[[vm]]
name = "vm3"
spice = "unix:/nonexistent/vm3.sock"

[[vm]]
name = "vm4"
vnc = "unix:/nonexistent/vm4.sock"
)";

const core::Config& config() {
    static const core::Config parsed = [] {
        auto result = core::parse_config(kConfig, "vv.toml");
        if (!result.config) throw std::runtime_error(result.errors.front().to_string());
        return *result.config;
    }();
    return parsed;
}

const core::ListenerConfig& listener(std::size_t index) { return config().listeners.at(index); }

// kConfig with its SNI listener routed to `vm` instead.
core::Config without_sni(std::string_view vm) {
    std::string text(kConfig);
    const auto replace = [&text](std::string_view from, const std::string& to) {
        text.replace(text.find(from), from.size(), to);
    };
    replace("route = \"sni\"", "vm = \"" + std::string(vm) + "\"");
    replace("sni_suffix = \".vms.example.com\"", "");
    text += "\n[[vm]]\nname = \"vm9\"\nspice = \"unix:/nonexistent/vm9.sock\"\n";
    auto result = core::parse_config(text, "vv.toml");
    if (!result.config) throw std::runtime_error(result.errors.front().to_string());
    return *result.config;
}

// kConfig and an HTTP CONNECT proxy listener (listener 6).
const core::Config& config_with_proxy() {
    static const core::Config parsed = [] {
        const std::string text = std::string(kConfig) +
                                 "\n[[listener]]\nprotocol = \"spice\"\naddress = \"192.0.2.10:3128\"\nroute = \"connect\"\n";
        auto result = core::parse_config(text, "vv.toml");
        if (!result.config) throw std::runtime_error(result.errors.front().to_string());
        return *result.config;
    }();
    return parsed;
}

// ---- choosing the listener ----

TEST(VvListener, TheVmsOwnSaslListenerBeforeTheSniOne) {
    std::string error;
    EXPECT_EQ(choose_listener(config(), "vm1", false, false, error), &listener(1)) << error;
}

TEST(VvListener, ATicketNeedsAListenerOfferingTicketsAlone) {
    std::string error;
    EXPECT_EQ(choose_listener(config(), "vm1", true, false, error), &listener(2)) << error;
    EXPECT_EQ(choose_listener(config(), "vm3", true, false, error), &listener(4)) << error;
}

TEST(VvListener, TheSniListenerServesAVmWithoutItsOwnTlsListener) {
    std::string error;
    EXPECT_EQ(choose_listener(config(), "vm2", false, false, error), &listener(0)) << error;
}

TEST(VvListener, NoTicketListenerIsARefusalThatSaysWhy) {
    std::string error;
    EXPECT_EQ(choose_listener(config(), "vm2", true, false, error), nullptr);
    EXPECT_THAT(error, HasSubstr("offers tickets alone"));
    EXPECT_THAT(error, HasSubstr("spice-gtk always chooses SASL"));
}

TEST(VvListener, ATicketOnlyVmNeedsTicket) {
    std::string error;
    EXPECT_EQ(choose_listener(without_sni("vm9"), "vm3", false, false, error), nullptr);
    EXPECT_THAT(error, HasSubstr("offers SASL"));
    EXPECT_THAT(error, HasSubstr("use --ticket"));
}

TEST(VvListener, VncListenersAreNoChoice) {
    std::string error;
    EXPECT_EQ(choose_listener(without_sni("vm9"), "vm4", false, false, error), nullptr);
    EXPECT_THAT(error, HasSubstr("no SPICE listener with tls = true reaches vm4"));
}

TEST(VvListener, TheConnectListenerOnlyWithProxy) {
    std::string error;
    const auto& proxy_listener = config_with_proxy().listeners.at(6);
    EXPECT_EQ(choose_listener(config_with_proxy(), "vm1", false, false, error), &config_with_proxy().listeners.at(1));
    EXPECT_EQ(choose_listener(config_with_proxy(), "vm2", false, false, error), &config_with_proxy().listeners.at(0))
        << "an SNI listener needs no proxy setting, so it comes first";
    EXPECT_EQ(choose_listener(config_with_proxy(), "vm1", false, true, error), &proxy_listener) << error;
    EXPECT_EQ(choose_listener(config_with_proxy(), "vm2", false, true, error), &proxy_listener) << error;
}

TEST(VvListener, TheConnectListenerWhenNothingElseReaches) {
    std::string error;
    core::Config config = config_with_proxy();
    std::erase_if(config.listeners, [](const auto& l) { return l.route != core::Route::connect; });
    EXPECT_EQ(choose_listener(config, "vm2", false, false, error), &config.listeners.at(0)) << error;
}

TEST(VvListener, ProxyWithoutConnectListenerSaysSo) {
    std::string error;
    EXPECT_EQ(choose_listener(config(), "vm1", false, true, error), nullptr);
    EXPECT_THAT(error, HasSubstr("--proxy: no SPICE listener with route = \"connect\""));
}

// ---- the host clients connect to ----

TEST(VvHost, TheListenersAddress) {
    std::string error;
    EXPECT_EQ(client_host(listener(1), "vm1", "", "gw.example.com", error), "192.0.2.10");
}

TEST(VvHost, HostOverridesTheAddress) {
    std::string error;
    EXPECT_EQ(client_host(listener(1), "vm1", "console.example.com", "gw.example.com", error),
              "console.example.com");
}

TEST(VvHost, AnUnspecifiedAddressTakesTheCertificatesDnsName) {
    std::string error;
    EXPECT_EQ(client_host(listener(2), "vm1", "", "gw.example.com", error), "gw.example.com");
}

TEST(VvHost, AnUnspecifiedAddressWithoutDnsNameAsksForHost) {
    std::string error;
    EXPECT_FALSE(client_host(listener(2), "vm1", "", "", error));
    EXPECT_THAT(error, HasSubstr("give --host NAME"));
}

TEST(VvHost, SniRoutesByTheVmsName) {
    std::string error;
    EXPECT_EQ(client_host(listener(0), "vm2", "", "gw.example.com", error), "vm2.vms.example.com");
    EXPECT_FALSE(client_host(listener(0), "vm2", "other.example.com", "", error));
    EXPECT_THAT(error, HasSubstr("must connect to vm2.vms.example.com"));
}

TEST(VvHost, ProxyUrl) {
    EXPECT_EQ(proxy_url("192.0.2.10", 3128), "http://192.0.2.10:3128");
    EXPECT_EQ(proxy_url("gw.example.com", 8080), "http://gw.example.com:8080");
    EXPECT_EQ(proxy_url("2001:db8::1", 3128), "http://[2001:db8::1]:3128");
}

TEST(VvHost, ConnectHostNames) {
    EXPECT_TRUE(usable_as_connect_host("vm1"));
    EXPECT_TRUE(usable_as_connect_host("Web_Server-2.prod"));
    EXPECT_FALSE(usable_as_connect_host(""));
    EXPECT_FALSE(usable_as_connect_host("my vm"));
    EXPECT_FALSE(usable_as_connect_host("vm:1"));
}

// ---- the file ----

TEST(VvText, KeyfileEscapes) {
    EXPECT_EQ(keyfile_string("a\nb"), "a\\nb");
    EXPECT_EQ(keyfile_string("back\\slash\ttab\rcr"), "back\\\\slash\\ttab\\rcr");
    EXPECT_EQ(keyfile_string(" lead and inner "), "\\slead and inner ");
    EXPECT_EQ(keyfile_string("C=DE,O=a\\,b"), "C=DE,O=a\\\\,b");
}

TEST(VvText, ALongLivedFileHasNoPasswordAndStays) {
    const VvFile file{"gw.example.com", 5901, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                      "O=Example,CN=gw.example.com", "vm1", "anne", "", ""};
    EXPECT_EQ(render_vv(file),
              "[virt-viewer]\n"
              "type=spice\n"
              "host=gw.example.com\n"
              "tls-port=5901\n"
              "ca=-----BEGIN CERTIFICATE-----\\nAAAA\\n-----END CERTIFICATE-----\\n\n"
              "host-subject=O=Example,CN=gw.example.com\n"
              "title=vm1\n"
              "secure-channels=all\n"
              "username=anne\n");
}

TEST(VvText, ATicketFileDeletesItself) {
    const VvFile file{"gw.example.com", 5902, "CA", "CN=gw", "vm1", "", "tkt-123", ""};
    const auto text = render_vv(file);
    EXPECT_THAT(text, HasSubstr("\npassword=tkt-123\ndelete-this-file=1\n"));
    EXPECT_THAT(text, ::testing::Not(HasSubstr("username=")));
    EXPECT_THAT(text, ::testing::Not(HasSubstr("proxy=")));
}

TEST(VvText, AProxyFileNamesTheVmAsHost) {
    const VvFile file{"vm1", 3128, "CA", "CN=gw", "vm1", "anne", "", "http://192.0.2.10:3128"};
    const auto text = render_vv(file);
    EXPECT_THAT(text, HasSubstr("\nhost=vm1\ntls-port=3128\n"));
    EXPECT_THAT(text, HasSubstr("\nsecure-channels=all\nproxy=http://192.0.2.10:3128\nusername=anne\n"));
}

// ---- the certificate ----

class TempDir {
public:
    TempDir() {
        char pattern[] = "/tmp/vmgate-vv-XXXXXX";
        path_ = ::mkdtemp(pattern);
    }
    ~TempDir() { fs::remove_all(path_); }
    fs::path operator/(const char* name) const { return path_ / name; }

private:
    fs::path path_;
};

Credential server_cert(const Credential& ca, CertSpec spec = {}) {
    if (spec.subject.empty()) spec.subject = {{"C", "DE"}, {"O", "Example, Inc."}, {"CN", "gw.example.com"}};
    if (spec.alt_names.empty())
        spec.alt_names = {{AltNameKind::dns, "*.vms.example.com"}, {AltNameKind::dns, "gw.example.com"}};
    return test::make_credential(spec, &ca);
}

void append_cert_pem(const fs::path& file, X509* cert) {
    const auto existing = fs::path(file.string() + ".part");
    test::write_cert_pem(existing, cert);
    std::ifstream in(existing);
    std::ofstream(file, std::ios::app) << in.rdbuf();
    fs::remove(existing);
}

TEST(VvCertificate, SubjectInOrderWithEscapes) {
    const auto ca = test::make_ca("Example CA");
    const auto server = server_cert(ca, {.subject = {{"C", "DE"}, {"O", "a\\b,c"}, {"CN", "gw"}}});
    std::string error;
    EXPECT_EQ(spice_host_subject(server.cert.get(), error), "C=DE,O=a\\\\b\\,c,CN=gw") << error;
}

TEST(VvCertificate, SubjectWithAnOidOpenSslCannotName) {
    const auto ca = test::make_ca("Example CA");
    const auto server = server_cert(ca, {.subject = {{"1.3.6.1.4.1.99999.1", "x"}, {"CN", "gw"}}});
    std::string error;
    EXPECT_EQ(spice_host_subject(server.cert.get(), error), "1.3.6.1.4.1.99999.1=x,CN=gw") << error;
}

TEST(VvCertificate, EmptyValueCannotBeWritten) {
    const auto ca = test::make_ca("Example CA");
    const auto server = server_cert(ca, {.subject = {{"O", ""}, {"CN", "gw"}}});
    std::string error;
    EXPECT_FALSE(spice_host_subject(server.cert.get(), error));
    EXPECT_THAT(error, HasSubstr("empty or unreadable O"));
}

TEST(VvCertificate, MultiValuedRdnCannotBeWritten) {
    const auto ca = test::make_ca("Example CA");
    auto server = server_cert(ca);
    X509_NAME* name = X509_get_subject_name(server.cert.get());
    ASSERT_EQ(X509_NAME_add_entry_by_txt(name, "OU", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>("ops"),
                                         -1, -1, -1),
              1);  // set -1: joins the last RDN
    std::string error;
    EXPECT_FALSE(spice_host_subject(server.cert.get(), error));
    EXPECT_THAT(error, HasSubstr("multi-valued RDN"));
}

TEST(VvCertificate, CaFromTheOption) {
    TempDir dir;
    const auto ca = test::make_ca("Example CA");
    const auto server = server_cert(ca);
    test::write_cert_pem(dir / "cert.pem", server.cert.get());
    test::write_cert_pem(dir / "ca.pem", ca.cert.get());
    std::string error;
    const auto read = read_server_certificate(dir / "cert.pem", dir / "ca.pem", error);
    ASSERT_TRUE(read) << error;
    std::ifstream ca_file(dir / "ca.pem");
    EXPECT_EQ(read->ca_pem, std::string(std::istreambuf_iterator<char>(ca_file), {}));
    EXPECT_EQ(read->host_subject, "C=DE,O=Example\\, Inc.,CN=gw.example.com");
    EXPECT_EQ(read->dns_name, "gw.example.com");  // the wildcard before it names no host
}

TEST(VvCertificate, CaFromTheChainsSelfSignedRoot) {
    TempDir dir;
    const auto root = test::make_ca("Example Root");
    auto intermediate = test::make_credential({.subject = {{"CN", "Example Issuing CA"}}, .ca = true}, &root);
    const auto server = server_cert(intermediate);
    for (X509* cert : {server.cert.get(), intermediate.cert.get(), root.cert.get()})
        append_cert_pem(dir / "chain.pem", cert);
    test::write_cert_pem(dir / "root.pem", root.cert.get());
    std::string error;
    const auto read = read_server_certificate(dir / "chain.pem", "", error);
    ASSERT_TRUE(read) << error;
    std::ifstream root_file(dir / "root.pem");
    EXPECT_EQ(read->ca_pem, std::string(std::istreambuf_iterator<char>(root_file), {}));
}

TEST(VvCertificate, NoChainAndNoCaAsksForCa) {
    TempDir dir;
    const auto ca = test::make_ca("Example CA");
    test::write_cert_pem(dir / "cert.pem", server_cert(ca).cert.get());
    std::string error;
    EXPECT_FALSE(read_server_certificate(dir / "cert.pem", "", error));
    EXPECT_THAT(error, HasSubstr("give --ca FILE"));
}

TEST(VvCertificate, ACaThatDidNotSignIsRefused) {
    TempDir dir;
    const auto ca = test::make_ca("Example CA");
    const auto other = test::make_ca("Other CA");
    test::write_cert_pem(dir / "cert.pem", server_cert(ca).cert.get());
    test::write_cert_pem(dir / "other.pem", other.cert.get());
    std::string error;
    EXPECT_FALSE(read_server_certificate(dir / "cert.pem", dir / "other.pem", error));
    EXPECT_THAT(error, HasSubstr("does not verify against the CA in"));
    EXPECT_THAT(error, HasSubstr("unable to get local issuer certificate"));
}

TEST(VvCertificate, MissingFilesSayWhich) {
    std::string error;
    EXPECT_FALSE(read_server_certificate("/nonexistent/cert.pem", "", error));
    EXPECT_EQ(error, "/nonexistent/cert.pem: No such file or directory");
}

}  // namespace
}  // namespace vmgate::cli
