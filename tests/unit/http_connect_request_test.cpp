#include "http/connect_request.hpp"

#include <gtest/gtest.h>

#include <string>
#include <variant>

namespace vmgate::http {
namespace {

std::span<const std::uint8_t> bytes(std::string_view text) {
    return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

ConnectRequestReader read(std::string_view text) {
    ConnectRequestReader reader;
    reader.feed(bytes(text));
    return reader;
}

ConnectTarget target_of(const ConnectRequestReader& reader) {
    EXPECT_TRUE(reader.result().has_value());
    const auto* target = std::get_if<ConnectTarget>(&*reader.result());
    EXPECT_NE(target, nullptr) << (target ? "" : std::get<Rejection>(*reader.result()).detail);
    return target ? *target : ConnectTarget{};
}

Rejection rejection_of(const ConnectRequestReader& reader) {
    EXPECT_TRUE(reader.result().has_value());
    const auto* rejection = std::get_if<Rejection>(&*reader.result());
    EXPECT_NE(rejection, nullptr) << "the request was accepted";
    return rejection ? *rejection : Rejection{Status::ok, ""};
}

// What spice-gtk sends through GLib's GHttpProxy (spice-protocol.md §9.3).
constexpr std::string_view glib_request =
    "CONNECT vm1.vms.test:5901 HTTP/1.0\r\nHost: vm1.vms.test:5901\r\nProxy-Connection: keep-alive\r\n"
    "User-Agent: GLib/2.74\r\n\r\n";

TEST(HttpConnectRequest, GlibRequestNamesHostAndPort) {
    const auto target = target_of(read(glib_request));
    EXPECT_EQ(target.host, "vm1.vms.test");
    EXPECT_EQ(target.port, 5901);
}

TEST(HttpConnectRequest, ByteByByteGivesTheSameRequest) {
    ConnectRequestReader reader;
    for (std::size_t i = 0; i < glib_request.size(); ++i) {
        EXPECT_FALSE(reader.result().has_value()) << "complete after " << i << " bytes";
        reader.feed(bytes(glib_request.substr(i, 1)));
    }
    EXPECT_EQ(target_of(reader).host, "vm1.vms.test");
}

TEST(HttpConnectRequest, HostIsLowercasedAndBareLineEndsAreTolerated) {
    const auto target = target_of(read("CONNECT VM1:443 HTTP/1.1\nHost: VM1:443\n\n"));
    EXPECT_EQ(target.host, "vm1");
    EXPECT_EQ(target.port, 443);
}

TEST(HttpConnectRequest, Ipv6LiteralLosesItsBrackets) {
    const auto target = target_of(read("CONNECT [::1]:5901 HTTP/1.1\r\n\r\n"));
    EXPECT_EQ(target.host, "::1");
    EXPECT_EQ(target.port, 5901);
}

TEST(HttpConnectRequest, IncompleteHeadWaits) {
    EXPECT_FALSE(read("CONNECT vm1:1 HTTP/1.1\r\nHost: vm1:1\r\n").result().has_value());
}

TEST(HttpConnectRequest, OtherMethodsGet405) {
    const auto rejection = rejection_of(read("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    EXPECT_EQ(rejection.status, Status::method_not_allowed);
    const std::string reply = error_reply(rejection);
    EXPECT_TRUE(reply.starts_with("HTTP/1.1 405 Method Not Allowed\r\n")) << reply;
    EXPECT_NE(reply.find("\r\nAllow: CONNECT\r\n"), std::string::npos) << reply;
}

TEST(HttpConnectRequest, UnknownVersionGets505) {
    EXPECT_EQ(rejection_of(read("CONNECT vm1:1 HTTP/2.0\r\n\r\n")).status, Status::http_version_not_supported);
    EXPECT_EQ(rejection_of(read("CONNECT vm1:1 FTP/1.0\r\n\r\n")).status, Status::bad_request);
}

TEST(HttpConnectRequest, BadTargetsGet400) {
    for (const char* request : {"CONNECT vm1 HTTP/1.1\r\n\r\n", "CONNECT vm1:0 HTTP/1.1\r\n\r\n",
                                "CONNECT vm1:65536 HTTP/1.1\r\n\r\n", "CONNECT :5901 HTTP/1.1\r\n\r\n",
                                "CONNECT vm1:59x1 HTTP/1.1\r\n\r\n", "CONNECT vm/1:5901 HTTP/1.1\r\n\r\n",
                                "CONNECT [::1:5901 HTTP/1.1\r\n\r\n", "CONNECT [vm1]:5901 HTTP/1.1\r\n\r\n",
                                "CONNECT vm1:+5901 HTTP/1.1\r\n\r\n", "CONNECT  vm1:5901 HTTP/1.1\r\n\r\n",
                                "CONNECT vm1:5901 HTTP/1.1 x\r\n\r\n"})
        EXPECT_EQ(rejection_of(read(request)).status, Status::bad_request) << request;
}

TEST(HttpConnectRequest, MalformedHeaderFieldsGet400) {
    EXPECT_EQ(rejection_of(read("CONNECT vm1:1 HTTP/1.1\r\nno colon\r\n\r\n")).status, Status::bad_request);
    EXPECT_EQ(rejection_of(read("CONNECT vm1:1 HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n")).status, Status::bad_request);
    EXPECT_EQ(rejection_of(read("CONNECT vm1:1 HTTP/1.1\r\nBad Name: a\r\n\r\n")).status, Status::bad_request);
}

TEST(HttpConnectRequest, TlsOrSpiceSentStraightToTheProxyIsRefusedAtOnce) {
    // A ClientHello record header, and a SPICE link (magic "REDQ", then binary version words):
    // refused from the first bytes, without waiting for a line end that never comes.
    EXPECT_EQ(rejection_of(read(std::string_view("\x16\x03\x01\x02\x00", 5))).status, Status::bad_request);
    const auto spice = rejection_of(read(std::string_view("REDQ\x02\x00\x00\x00", 8)));
    EXPECT_EQ(spice.status, Status::bad_request);
    EXPECT_NE(spice.detail.find("proxy"), std::string::npos) << spice.detail;
}

TEST(HttpConnectRequest, OversizeHeadGets431) {
    std::string request = "CONNECT vm1:1 HTTP/1.1\r\n";
    while (request.size() <= ConnectRequestReader::max_head_size) request += "X-Filler: 0123456789abcdef\r\n";
    EXPECT_EQ(rejection_of(read(request)).status, Status::request_header_fields_too_large);
    EXPECT_EQ(rejection_of(read(request + "\r\n")).status, Status::request_header_fields_too_large);
}

TEST(HttpConnectRequest, DataBeforeTheReplyIsRefused) {
    std::string request(glib_request);
    EXPECT_EQ(rejection_of(read(request + "\x16")).status, Status::bad_request);
    ConnectRequestReader reader = read(request);
    target_of(reader);
    reader.feed(bytes("\x16"));
    EXPECT_EQ(rejection_of(reader).status, Status::bad_request);
}

TEST(HttpConnectRequest, ARefusedHeadKeepsItsStatusWhateverFollowsIt) {
    // Found by fuzzing: bytes after a refused head must not turn its 405 into the 400 for data
    // before the reply, or the answer would depend on how the bytes were split into reads.
    const std::string get = "GET / HTTP/1.1\r\n\r\n";
    EXPECT_EQ(rejection_of(read(get + "more")).status, Status::method_not_allowed);
    ConnectRequestReader reader = read(get);
    reader.feed(bytes("more"));
    EXPECT_EQ(rejection_of(reader).status, Status::method_not_allowed);
}

TEST(HttpConnectRequest, RepliesAreCompleteHttpMessages) {
    EXPECT_EQ(tunnel_established(), "HTTP/1.1 200 Connection established\r\n\r\n");
    const std::string reply = error_reply({Status::not_found, "no SPICE VM named \"x\""});
    const std::string body = "vmgate: no SPICE VM named \"x\"\n";
    EXPECT_TRUE(reply.starts_with("HTTP/1.1 404 Not Found\r\n")) << reply;
    EXPECT_NE(reply.find("Content-Length: " + std::to_string(body.size()) + "\r\n"), std::string::npos) << reply;
    EXPECT_NE(reply.find("Connection: close\r\n"), std::string::npos) << reply;
    EXPECT_TRUE(reply.ends_with("\r\n\r\n" + body)) << reply;
}

}  // namespace
}  // namespace vmgate::http
