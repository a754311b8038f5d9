#include "vnc/upstream_handshake.hpp"
#include "vnc/vnc_auth.hpp"
#include "vnc_test_util.hpp"

#include <gtest/gtest.h>

#include <algorithm>

namespace vmgate::vnc {
namespace {

using test::ascii;
using test::be16;
using test::be32;
using test::Bytes;
using test::cat;
using test::framed;
using test::hex;
using test::to_hex;

const Bytes version_3_8 = ascii("RFB 003.008\n");
const Bytes challenge = hex("000102030405060708090a0b0c0d0e0f");

Bytes response_to_challenge(std::string_view password) {
    VncChallenge c{};
    std::ranges::copy(challenge, c.begin());
    return test::to_bytes(vnc_auth_response(password, c));
}

// What QEMU sends (§5.1): 32 bpp, depth 24, little-endian, true colour, 255/255/255, 16/8/0.
Bytes qemu_pixel_format() { return hex("20 18 00 01 00ff 00ff 00ff 10 08 00 000000"); }

Bytes server_init(std::uint16_t width, std::uint16_t height, std::string_view name) {
    return cat({be16(width), be16(height), qemu_pixel_format(), framed(name)});
}

struct Outcome {
    std::vector<std::string> events;
    Bytes output;
    Bytes excess;
    bool closed = false;
    bool done = false;
    bool operator==(const Outcome&) const = default;
};

std::string describe(const UpstreamEvent& event) {
    if (const auto* failed = std::get_if<Failed>(&event)) return "failed: " + failed->detail;
    const ServerInit& init = std::get<ServerInitReceived>(event).server_init;
    return "server_init " + std::to_string(init.width) + "x" + std::to_string(init.height) + " '" + init.name +
           "' pf=" + to_hex(init.pixel_format) + " bytes=" + to_hex(init.bytes);
}

Outcome run(const std::optional<std::string>& password, const std::vector<Bytes>& chunks) {
    UpstreamHandshake up(password);
    Outcome out;
    for (const Bytes& chunk : chunks) {
        up.feed(chunk);
        while (auto event = up.next_event()) out.events.push_back(describe(*event));
    }
    out.output = up.take_output();
    out.excess = up.take_excess();
    out.closed = up.closed();
    out.done = up.done();
    return out;
}

Outcome run_all_chunkings(const std::optional<std::string>& password, const Bytes& stream) {
    const Outcome whole = run(password, {stream});
    const auto chunkings = test::chunkings(stream);
    for (std::size_t i = 0; i < chunkings.size(); ++i) EXPECT_EQ(run(password, chunkings[i]), whole) << "chunking #" << i;
    return whole;
}

std::string init_event(const Bytes& init, std::string_view size, std::string_view name) {
    return "server_init " + std::string(size) + " '" + std::string(name) + "' pf=" + to_hex(qemu_pixel_format()) +
           " bytes=" + to_hex(init);
}

// ---------------------------------------------------------------- happy paths

TEST(VncUpstreamHandshake, NoneOnAUnixSocket) {
    // §5.2 step 4: QEMU offers exactly one type; None still gets a SecurityResult at 3.8.
    const Bytes init = server_init(1024, 768, "QEMU (vm1)");
    const Outcome out = run_all_chunkings(std::nullopt, cat({version_3_8, hex("01 01"), be32(0), init}));
    EXPECT_EQ(out.events, std::vector<std::string>{init_event(init, "1024x768", "QEMU (vm1)")});
    EXPECT_EQ(out.output, cat({version_3_8, hex("01"), hex("01")}));  // version, None, ClientInit shared
    EXPECT_TRUE(out.done);
    EXPECT_FALSE(out.closed);
    EXPECT_TRUE(out.excess.empty());
}

TEST(VncUpstreamHandshake, VncAuthWithThePassword) {
    const Bytes init = server_init(720, 400, "QEMU");
    const Outcome out = run_all_chunkings("password", cat({version_3_8, hex("01 02"), challenge, be32(0), init}));
    EXPECT_EQ(out.events, std::vector<std::string>{init_event(init, "720x400", "QEMU")});
    // §2 vector: "password" answers 000102...0f with b866...e2.
    EXPECT_EQ(out.output, cat({version_3_8, hex("02"), hex("b866924125c8eebb9debc1db61c538e2"), hex("01")}));
    EXPECT_TRUE(out.done);
}

TEST(VncUpstreamHandshake, NoneIsTakenEvenWithAPassword) {
    const Outcome out = run_all_chunkings("password", cat({version_3_8, hex("01 01"), be32(0), server_init(1, 1, "")}));
    EXPECT_EQ(out.output, cat({version_3_8, hex("01 01")}));
    EXPECT_TRUE(out.done);
}

TEST(VncUpstreamHandshake, VncAuthIsFoundInALongerList) {
    const Outcome out = run("secret", {cat({version_3_8, hex("03 10 13 02"), challenge})});
    EXPECT_EQ(out.output, cat({version_3_8, hex("02"), hex("ee22539f33a5983ec12f9c2edbc995dd")}));
    EXPECT_FALSE(out.closed || out.done);
}

TEST(VncUpstreamHandshake, LaterMinorIsAnsweredWith38) {
    const Outcome out = run(std::nullopt, {ascii("RFB 003.889\n")});
    EXPECT_EQ(out.output, version_3_8);
    EXPECT_FALSE(out.closed);
}

TEST(VncUpstreamHandshake, BytesAfterServerInitAreExcess) {
    const Bytes init = server_init(800, 600, "QEMU (x)");
    const Outcome out = run_all_chunkings(std::nullopt, cat({version_3_8, hex("01 01"), be32(0), init, hex("02 00 00 01")}));
    EXPECT_TRUE(out.done);
    EXPECT_EQ(out.excess, hex("02 00 00 01"));
}

TEST(VncUpstreamHandshake, FeedAfterDoneAccumulatesExcess) {
    UpstreamHandshake up(std::nullopt);
    up.feed(cat({version_3_8, hex("01 01"), be32(0)}));
    EXPECT_TRUE(up.take_excess().empty());  // not done yet
    up.feed(server_init(1, 1, "n"));
    ASSERT_TRUE(up.next_event());
    up.feed(ascii("ab"));
    up.feed(ascii("c"));
    EXPECT_EQ(up.take_excess(), ascii("abc"));
    EXPECT_TRUE(up.take_excess().empty());
}

TEST(VncUpstreamHandshake, LongestDesktopNameIsAccepted) {
    const std::string name(max_desktop_name_len, 'n');
    const Outcome out = run(std::nullopt, {cat({version_3_8, hex("01 01"), be32(0), server_init(1, 1, name)})});
    EXPECT_TRUE(out.done);
}

// ---------------------------------------------------------------- refusals and malformed input

void expect_failure(const std::optional<std::string>& password, const Bytes& stream, const std::string& detail,
                    const Bytes& output) {
    const Outcome out = run_all_chunkings(password, stream);
    EXPECT_EQ(out.events, std::vector<std::string>{"failed: " + detail});
    EXPECT_EQ(out.output, output);
    EXPECT_TRUE(out.closed);
    EXPECT_FALSE(out.done);
}

TEST(VncUpstreamHandshake, WrongPasswordCarriesQemusReason) {
    // §5.2 step 4: QEMU counts a trailing NUL in its reason.
    expect_failure("wrong", cat({version_3_8, hex("01 02"), challenge, be32(1), be32(22), ascii("Authentication failed"),
                                 hex("00")}),
                   "upstream refused the authentication: Authentication failed",
                   cat({version_3_8, hex("02"), response_to_challenge("wrong")}));
}

TEST(VncUpstreamHandshake, TooManyAttemptsIsAFailureToo) {
    const auto too_many = static_cast<std::uint32_t>(SecurityResult::too_many_attempts);
    expect_failure(std::nullopt, cat({version_3_8, hex("01 01"), be32(too_many), framed("slow down")}),
                   "upstream refused the authentication: slow down", cat({version_3_8, hex("01")}));
}

TEST(VncUpstreamHandshake, EmptyTypeListCarriesAReason) {
    expect_failure(std::nullopt, cat({version_3_8, hex("00"), framed("Too many connections")}),
                   "upstream refused the connection: Too many connections", version_3_8);
}

TEST(VncUpstreamHandshake, UnusableSecurityTypes) {
    const std::string needs = "; vmgate needs None (1), or VNC auth (2) with a configured password";
    // §6.1: QEMU with tls-creds offers VeNCrypt, with sasl=on SASL.
    expect_failure("pw", cat({version_3_8, hex("01 13")}), "upstream offers security types 19" + needs, version_3_8);
    expect_failure("pw", cat({version_3_8, hex("01 14")}), "upstream offers security types 20" + needs, version_3_8);
    expect_failure(std::nullopt, cat({version_3_8, hex("01 02")}), "upstream offers security types 2" + needs, version_3_8);
    expect_failure(std::nullopt, cat({version_3_8, hex("03 10 02 13")}), "upstream offers security types 16,2,19" + needs,
                   version_3_8);
}

TEST(VncUpstreamHandshake, WrongVersions) {
    expect_failure(std::nullopt, ascii("RFB 003.003\n"), "upstream speaks RFB 3.3; vmgate needs RFB 3.8", {});
    expect_failure(std::nullopt, ascii("RFB 003.007\n"), "upstream speaks RFB 3.7; vmgate needs RFB 3.8", {});
    expect_failure(std::nullopt, ascii("RFB 004.001\n"), "upstream speaks RFB 4.1; vmgate needs RFB 3.8", {});
    expect_failure(std::nullopt, ascii("REDQ\x02"), "upstream did not send an RFB version: 'RE'", {});  // SPICE
    expect_failure(std::nullopt, ascii("RFB 003.008\r\n"), "upstream did not send an RFB version: 'RFB 003.008?'", {});
}

TEST(VncUpstreamHandshake, OversizedLengths) {
    expect_failure(std::nullopt, cat({version_3_8, hex("01 01"), be32(0), be16(1), be16(1), qemu_pixel_format(), be32(4097)}),
                   "upstream desktop name length 4097 exceeds 4096", cat({version_3_8, hex("01 01")}));
    expect_failure(std::nullopt, cat({version_3_8, hex("00"), be32(256)}),
                   "upstream refused the connection with a reason of 256 bytes", version_3_8);
    expect_failure(std::nullopt, cat({version_3_8, hex("01 01"), be32(1), be32(0xFFFFFFFF)}),
                   "upstream refused the authentication with a reason of 4294967295 bytes", cat({version_3_8, hex("01")}));
}

TEST(VncUpstreamHandshake, ReasonsArePrintable) {
    expect_failure(std::nullopt, cat({version_3_8, hex("00"), be32(4), hex("41 0a 1b 42")}),
                   "upstream refused the connection: A??B", version_3_8);
}

TEST(VncUpstreamHandshake, TruncatedInputWaits) {
    const Bytes full = cat({version_3_8, hex("01 02"), challenge, be32(0), server_init(640, 480, "QEMU (t)")});
    for (std::size_t n : {std::size_t{0}, std::size_t{5}, std::size_t{12}, std::size_t{13}, std::size_t{14},
                          std::size_t{29}, std::size_t{30}, std::size_t{33}, std::size_t{34}, std::size_t{57},
                          full.size() - 1}) {
        const Outcome out = run("password", {Bytes(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n))});
        EXPECT_TRUE(out.events.empty()) << n;
        EXPECT_FALSE(out.closed || out.done) << n;
    }
}

}  // namespace
}  // namespace vmgate::vnc
