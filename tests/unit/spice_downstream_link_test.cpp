#include "spice/downstream_link.hpp"
#include "spice_test_util.hpp"

#include <gtest/gtest.h>

#include <cstdio>

namespace vmgate::spice {
namespace {

using test::ascii;
using test::Bytes;
using test::cat;
using test::hex;
using test::le32;

constexpr std::uint32_t caps_select_spice_mini = 0x0B;  // AUTH_SELECTION|AUTH_SPICE|MINI_HEADER
constexpr std::uint32_t caps_select_sasl_mini = 0x0D;   // AUTH_SELECTION|AUTH_SASL|MINI_HEADER
constexpr std::uint32_t caps_select_both_mini = 0x0F;
constexpr std::uint32_t main_caps = 0x0F;

template <class... Ts>
struct Overloaded : Ts... {
    using Ts::operator()...;
};

std::string to_hex(std::span<const std::uint8_t> bytes) {
    std::string s;
    for (std::uint8_t b : bytes) {
        char buf[3];
        std::snprintf(buf, sizeof buf, "%02x", b);
        s += buf;
    }
    return s;
}

std::string describe_data(const std::optional<Bytes>& data) { return data ? "[" + to_hex(*data) + "]" : "null"; }

std::string describe(const DownstreamEvent& event) {
    return std::visit(
        Overloaded{
            [](const LinkReceived& e) {
                return "link conn=" + std::to_string(e.link.connection_id) +
                       " type=" + std::to_string(e.link.channel_type) + " id=" + std::to_string(e.link.channel_id);
            },
            [](const TicketReceived& e) { return "ticket " + to_hex(e.ciphertext); },
            [](const SaslStart& e) { return "sasl_start " + e.mechanism + " " + describe_data(e.client_data); },
            [](const SaslStep& e) { return "sasl_step " + describe_data(e.client_data); },
            [](const Failed& e) { return "failed " + std::string(to_string(e.code)); },
        },
        event);
}

LinkReply reply_with(std::uint32_t common) {
    LinkReply r;
    r.pub_key = test::sample_pub_key();
    r.common_caps.words = {common};
    r.channel_caps.words = {main_caps};
    return r;
}

// A scripted gateway: accepts the link, answers SASL with `challenges` in order, then succeeds.
struct Gateway {
    LinkReply reply = reply_with(caps_select_spice_mini);
    std::string mechs = "SCRAM-SHA-256,PLAIN";
    std::vector<std::optional<Bytes>> challenges;
    std::optional<Bytes> sasl_final;
    bool sasl_ok = true;
    LinkError result = LinkError::ok;
};

struct Outcome {
    std::vector<std::string> events;
    Bytes output;
    Bytes excess;
    bool closed = false;
    bool done = false;
    bool operator==(const Outcome&) const = default;
};

void answer(DownstreamLink& link, const Gateway& gw, const DownstreamEvent& event, std::size_t& next_challenge) {
    const auto sasl_answer = [&] {
        if (next_challenge < gw.challenges.size()) {
            link.sasl_continue(gw.challenges[next_challenge++]);
        } else if (!gw.sasl_ok) {
            link.sasl_failure();
        } else {
            link.sasl_success(gw.sasl_final);
            link.finish(gw.result);
        }
    };
    std::visit(Overloaded{
                   [&](const LinkReceived&) { link.accept_link(gw.reply, gw.mechs); },
                   [&](const TicketReceived&) { link.finish(gw.result); },
                   [&](const SaslStart&) { sasl_answer(); },
                   [&](const SaslStep&) { sasl_answer(); },
                   [](const Failed&) {},
               },
               event);
}

Outcome run(const Gateway& gw, const std::vector<Bytes>& chunks) {
    DownstreamLink link;
    Outcome out;
    std::size_t next_challenge = 0;
    for (const Bytes& chunk : chunks) {
        link.feed(chunk);
        while (auto event = link.next_event()) {
            out.events.push_back(describe(*event));
            answer(link, gw, *event, next_challenge);
        }
    }
    out.output = link.take_output();
    out.excess = link.take_excess();
    out.closed = link.closed();
    out.done = link.done();
    return out;
}

// Runs the stream whole, cut at every byte boundary, and byte by byte: all must agree.
Outcome run_all_chunkings(const Gateway& gw, const Bytes& stream) {
    const Outcome whole = run(gw, {stream});
    const auto chunkings = test::chunkings(stream);
    for (std::size_t i = 0; i < chunkings.size(); ++i) {
        EXPECT_EQ(run(gw, chunkings[i]), whole) << "chunking #" << i;
    }
    return whole;
}

Bytes client_link(std::uint32_t common = caps_select_sasl_mini, std::uint32_t connection_id = 0) {
    LinkMess m;
    m.connection_id = connection_id;
    m.channel_type = static_cast<std::uint8_t>(ChannelType::main);
    m.common_caps.words = {common};
    m.channel_caps.words = {main_caps};
    return encode_link_mess(m);
}

Bytes ticket_bytes() {
    const auto t = test::sample_ticket();
    return Bytes(t.begin(), t.end());
}

std::string ticket_event() { return "ticket " + to_hex(ticket_bytes()); }

const std::string link_event = "link conn=0 type=1 id=0";

Bytes reply_bytes(std::uint32_t common) { return encode_link_reply(reply_with(common)); }

Bytes error_reply(LinkError e) { return encode_link_error(e); }

// ---------------------------------------------------------------- worked examples

TEST(SpiceDownstreamLink, WorkedExampleTicketAuth) {
    // §2.7: the client's link, then mechanism 1 and the ticket in one write.
    const Bytes stream = cat({hex("52 45 44 51 02 00 00 00 02 00 00 00 1A 00 00 00"
                                  "00 00 00 00 01 00 01 00 00 00 01 00 00 00 12 00 00 00"
                                  "0D 00 00 00 0F 00 00 00"),
                              hex("01 00 00 00"), ticket_bytes()});
    const Outcome out = run_all_chunkings(Gateway{}, stream);
    EXPECT_EQ(out.events, (std::vector<std::string>{link_event, ticket_event()}));
    const Bytes expected = cat({hex("52 45 44 51 02 00 00 00 02 00 00 00 BA 00 00 00 00 00 00 00"),
                                test::to_bytes(test::sample_pub_key()),
                                hex("01 00 00 00 01 00 00 00 B2 00 00 00 0B 00 00 00 0F 00 00 00"),
                                hex("00 00 00 00")});
    EXPECT_EQ(out.output, expected);
    EXPECT_TRUE(out.done);
    EXPECT_FALSE(out.closed);
    EXPECT_TRUE(out.excess.empty());
}

TEST(SpiceDownstreamLink, WorkedExampleSaslPlain) {
    // §5.4: PLAIN over TLS, user alice, password s3cret.
    Gateway gw;
    gw.reply = reply_with(caps_select_sasl_mini);
    gw.reply.pub_key = {};
    gw.mechs = "PLAIN";
    const Bytes stream = cat({client_link(), hex("02 00 00 00"), hex("05 00 00 00 50 4C 41 49 4E"),
                              hex("0E 00 00 00 00 61 6C 69 63 65 00 73 33 63 72 65 74 00")});
    const Outcome out = run_all_chunkings(gw, stream);
    // The client's trailing NUL is stripped; the NULs inside the PLAIN payload are kept.
    EXPECT_EQ(out.events,
              (std::vector<std::string>{link_event, "sasl_start PLAIN [00616c69636500733363726574]"}));
    EXPECT_EQ(out.output, cat({encode_link_reply(gw.reply), hex("07 00 00 00 2C 50 4C 41 49 4E 2C"),
                               hex("00 00 00 00 01"), hex("00 00 00 00"), hex("00 00 00 00")}));
    EXPECT_TRUE(out.done);
}

TEST(SpiceDownstreamLink, SaslMultiStepWithNulHandling) {
    Gateway gw;
    gw.reply = reply_with(caps_select_both_mini);
    gw.challenges = {ascii("r=abc"), Bytes{}, std::nullopt};
    gw.sasl_final = ascii("v=xyz");
    const Bytes stream = cat({client_link(), hex("02 00 00 00"), le32(13), ascii("SCRAM-SHA-256"),
                              le32(0),                                // start without initial response
                              le32(4), ascii("c=1"), hex("00"),       // step with data
                              le32(1), hex("00"),                     // step with empty data
                              le32(0)});                              // step with no data
    const Outcome out = run_all_chunkings(gw, stream);
    EXPECT_EQ(out.events, (std::vector<std::string>{link_event, "sasl_start SCRAM-SHA-256 null",
                                                    "sasl_step [633d31]", "sasl_step []", "sasl_step null"}));
    EXPECT_EQ(out.output, cat({reply_bytes(caps_select_both_mini), le32(21), ascii(",SCRAM-SHA-256,PLAIN,"),
                               le32(6), ascii("r=abc"), hex("00 00"),  // continue, data + NUL
                               le32(1), hex("00 00"),                  // continue, empty data
                               le32(0), hex("00"),                     // continue, no data
                               le32(6), ascii("v=xyz"), hex("00 01"),  // success with data
                               le32(0), le32(0)}));                    // SASL OK, link result OK
    EXPECT_TRUE(out.done);
}

TEST(SpiceDownstreamLink, SaslFailureClosesWithoutOutput) {
    Gateway gw;
    gw.reply = reply_with(caps_select_sasl_mini);
    gw.sasl_ok = false;
    const Bytes stream = cat({client_link(), hex("02 00 00 00"), le32(5), ascii("PLAIN"), le32(1), hex("00")});
    const Outcome out = run_all_chunkings(gw, stream);
    EXPECT_EQ(out.output, cat({reply_bytes(caps_select_sasl_mini), le32(21), ascii(",SCRAM-SHA-256,PLAIN,")}));
    EXPECT_TRUE(out.closed);
}

// ---------------------------------------------------------------- results and excess

TEST(SpiceDownstreamLink, PermissionDeniedIsTheFinalWord) {
    Gateway gw;
    gw.result = LinkError::permission_denied;
    const Outcome out = run_all_chunkings(gw, cat({client_link(), hex("01 00 00 00"), ticket_bytes(), ascii("xx")}));
    EXPECT_EQ(out.output, cat({reply_bytes(caps_select_spice_mini), hex("07 00 00 00")}));
    EXPECT_TRUE(out.closed);
    EXPECT_TRUE(out.excess.empty());
}

TEST(SpiceDownstreamLink, BytesAfterTheHandshakeAreExcess) {
    const Bytes early = hex("03 00 00 00 00 00 68 00 00 00 00 00");  // a client data-phase message
    const Outcome out = run_all_chunkings(Gateway{}, cat({client_link(), hex("01 00 00 00"), ticket_bytes(), early}));
    EXPECT_TRUE(out.done);
    EXPECT_EQ(out.excess, early);
}

TEST(SpiceDownstreamLink, FeedAfterDoneAccumulatesExcess) {
    DownstreamLink link;
    link.feed(cat({client_link(), hex("01 00 00 00")}));
    ASSERT_TRUE(link.next_event());
    link.accept_link(reply_with(caps_select_spice_mini), "");
    link.feed(ticket_bytes());
    ASSERT_TRUE(link.next_event());
    EXPECT_TRUE(link.take_excess().empty());  // not done yet
    link.finish(LinkError::ok);
    link.feed(ascii("ab"));
    link.feed(ascii("c"));
    EXPECT_EQ(link.take_excess(), ascii("abc"));
    EXPECT_TRUE(link.take_excess().empty());
}

TEST(SpiceDownstreamLink, LegacyClientSendsTicketWithoutMechanismWord) {
    // §3.2: no AUTH_SELECTION in the client's caps → the ticket follows the reply directly.
    Gateway gw;
    gw.reply = reply_with(caps_select_both_mini);
    const Outcome out = run_all_chunkings(gw, cat({client_link(0x08), ticket_bytes()}));
    EXPECT_EQ(out.events, (std::vector<std::string>{link_event, ticket_event()}));
    EXPECT_TRUE(out.done);
}

TEST(SpiceDownstreamLink, LegacyClientWithoutTicketAuthIsVersionMismatch) {
    Gateway gw;
    gw.reply = reply_with(caps_select_sasl_mini);
    const Outcome out = run(gw, {client_link(0x08)});
    EXPECT_EQ(out.events, (std::vector<std::string>{link_event, "failed version_mismatch"}));
    EXPECT_EQ(out.output, cat({reply_bytes(caps_select_sasl_mini), error_reply(LinkError::version_mismatch)}));
    EXPECT_TRUE(out.closed);
}

TEST(SpiceDownstreamLink, ReplyWithoutAuthSelectionGetsTheTicketDirectly) {
    Gateway gw;
    gw.reply = reply_with(0x0A);  // AUTH_SPICE|MINI_HEADER: spice-gtk then skips the word
    const Outcome out = run_all_chunkings(gw, cat({client_link(), ticket_bytes()}));
    EXPECT_EQ(out.events, (std::vector<std::string>{link_event, ticket_event()}));
}

// ---------------------------------------------------------------- gateway decisions

TEST(SpiceDownstreamLink, RefuseLinkSendsFullSizeError) {
    DownstreamLink link;
    link.feed(client_link());
    ASSERT_TRUE(link.next_event());
    link.refuse_link(LinkError::need_secured);
    EXPECT_EQ(link.take_output(), error_reply(LinkError::need_secured));
    EXPECT_TRUE(link.closed());
    EXPECT_THROW(DownstreamLink().refuse_link(LinkError::ok), std::invalid_argument);
}

TEST(SpiceDownstreamLink, AcceptingWithAnErrorReplyCloses) {
    DownstreamLink link;
    link.feed(client_link());
    ASSERT_TRUE(link.next_event());
    LinkReply r;
    r.error = LinkError::channel_not_available;
    link.accept_link(r, "");
    EXPECT_EQ(link.take_output(), encode_link_reply(r));
    EXPECT_TRUE(link.closed());
}

TEST(SpiceDownstreamLink, SaslOfferNeedsAUsableMechList) {
    DownstreamLink link;
    link.feed(client_link());
    ASSERT_TRUE(link.next_event());
    EXPECT_THROW(link.accept_link(reply_with(caps_select_sasl_mini), ""), std::invalid_argument);
    EXPECT_TRUE(link.take_output().empty());
    link.accept_link(reply_with(caps_select_spice_mini), "");  // ticket only: list not needed
    EXPECT_FALSE(link.take_output().empty());
}

TEST(SpiceDownstreamLink, CallsInTheWrongStateThrow) {
    DownstreamLink link;
    EXPECT_THROW(link.finish(LinkError::ok), std::logic_error);
    EXPECT_THROW(link.accept_link(reply_with(caps_select_spice_mini), ""), std::logic_error);
    link.feed(client_link());
    EXPECT_THROW(link.sasl_continue(std::nullopt), std::logic_error);
    EXPECT_THROW(link.sasl_success(std::nullopt), std::logic_error);
    EXPECT_THROW(link.sasl_failure(), std::logic_error);
}

TEST(SpiceDownstreamLink, CallsAfterCloseAreIgnored) {
    DownstreamLink link;
    link.feed(ascii("GET / HTTP/1.1\r\n"));
    ASSERT_TRUE(link.closed());
    (void)link.take_output();
    link.accept_link(reply_with(caps_select_spice_mini), "");
    link.finish(LinkError::ok);
    link.refuse_link(LinkError::error);
    link.feed(client_link());
    EXPECT_TRUE(link.take_output().empty());
    ASSERT_TRUE(link.next_event());  // the original Failed
    EXPECT_FALSE(link.next_event());
}

// ---------------------------------------------------------------- malformed input

// Feeds `stream` (optionally accepting the link with `gw`) and expects exactly one Failed with
// `code`, output = what preceded it + the full-size error reply, and closed().
void expect_failure(const Bytes& stream, LinkError code, const Bytes& output_before = {}, const Gateway& gw = {}) {
    const Outcome out = run_all_chunkings(gw, stream);
    ASSERT_FALSE(out.events.empty());
    EXPECT_EQ(out.events.back(), "failed " + std::string(to_string(code)));
    EXPECT_EQ(out.output, cat({output_before, error_reply(code)}));
    EXPECT_TRUE(out.closed);
    EXPECT_FALSE(out.done);
}

Bytes header(std::uint32_t major, std::uint32_t size) {
    return cat({ascii("REDQ"), le32(major), le32(2), le32(size)});
}

Bytes body_with_caps(std::uint32_t ncommon, std::uint32_t nchannel, std::uint32_t offset, std::size_t words) {
    Bytes b = cat({le32(0), hex("01 00"), le32(ncommon), le32(nchannel), le32(offset)});
    b.resize(b.size() + 4 * words, 0x01);
    return b;
}

Bytes link_with_caps(std::uint32_t ncommon, std::uint32_t nchannel, std::uint32_t offset, std::size_t words) {
    const Bytes body = body_with_caps(ncommon, nchannel, offset, words);
    return cat({header(2, static_cast<std::uint32_t>(body.size())), body});
}

TEST(SpiceDownstreamLink, WrongMagicFailsAfterFourBytes) {
    expect_failure(ascii("GET / HTTP/1.1\r\n\r\n"), LinkError::invalid_magic);
    DownstreamLink link;
    link.feed(hex("16 03 01 00"));  // a TLS ClientHello on the plain port
    EXPECT_TRUE(link.closed());
    EXPECT_EQ(link.take_output(), error_reply(LinkError::invalid_magic));
}

TEST(SpiceDownstreamLink, WrongMajorVersion) {
    expect_failure(cat({header(3, 26), Bytes(26, 0)}), LinkError::version_mismatch);
    expect_failure(header(1, 26), LinkError::version_mismatch);
}

TEST(SpiceDownstreamLink, MajorZeroGetsABareClose) {
    // §2.5: spice-server sends VERSION_MISMATCH only for a non-zero major.
    const Outcome out = run_all_chunkings(Gateway{}, header(0, 26));
    EXPECT_EQ(out.events, std::vector<std::string>{"failed version_mismatch"});
    EXPECT_TRUE(out.output.empty());
    EXPECT_TRUE(out.closed);
}

TEST(SpiceDownstreamLink, SizeOutsideBounds) {
    expect_failure(header(2, 17), LinkError::invalid_data);
    expect_failure(header(2, 0), LinkError::invalid_data);
    expect_failure(header(2, 4097), LinkError::invalid_data);
    expect_failure(header(2, 0xFFFFFFFF), LinkError::invalid_data);
}

TEST(SpiceDownstreamLink, MaximalSizeIsAccepted) {
    Bytes body = body_with_caps(0, 0, 18, 0);
    body.resize(max_link_body, 0);
    const Outcome out = run(Gateway{}, {cat({header(2, 4096), body})});
    ASSERT_FALSE(out.events.empty());
    EXPECT_EQ(out.events.front(), link_event);
}

TEST(SpiceDownstreamLink, MalformedCaps) {
    expect_failure(link_with_caps(1025, 0, 18, 0), LinkError::invalid_data);
    expect_failure(link_with_caps(0, 1025, 18, 0), LinkError::invalid_data);
    expect_failure(link_with_caps(2, 1, 18, 2), LinkError::invalid_data);   // caps outside the message
    expect_failure(link_with_caps(1, 0, 14, 1), LinkError::invalid_data);   // caps_offset < 18
    expect_failure(link_with_caps(1, 1, 0xFFFFFFFC, 2), LinkError::invalid_data);
}

TEST(SpiceDownstreamLink, UnknownMechanism) {
    expect_failure(cat({client_link(), le32(3)}), LinkError::invalid_data, reply_bytes(caps_select_spice_mini));
    expect_failure(cat({client_link(), le32(0)}), LinkError::invalid_data, reply_bytes(caps_select_spice_mini));
}

TEST(SpiceDownstreamLink, MechanismNotOffered) {
    Gateway sasl_only;
    sasl_only.reply = reply_with(caps_select_sasl_mini);
    expect_failure(cat({client_link(), le32(1), ticket_bytes()}), LinkError::invalid_data,
                   reply_bytes(caps_select_sasl_mini), sasl_only);
    expect_failure(cat({client_link(), le32(2)}), LinkError::invalid_data, reply_bytes(caps_select_spice_mini));
}

// The reply and mechlist the SASL tests see before their failure.
Gateway sasl_gateway() {
    Gateway gw;
    gw.reply = reply_with(caps_select_sasl_mini);
    return gw;
}

Bytes sasl_prefix_output() { return cat({reply_bytes(caps_select_sasl_mini), le32(21), ascii(",SCRAM-SHA-256,PLAIN,")}); }

Bytes sasl_stream(const Bytes& rest) { return cat({client_link(), le32(2), rest}); }

TEST(SpiceDownstreamLink, BadMechanismNames) {
    const auto fails = [](const Bytes& rest) {
        expect_failure(sasl_stream(rest), LinkError::invalid_data, sasl_prefix_output(), sasl_gateway());
    };
    fails(le32(0));                                           // empty name
    fails(le32(101));                                         // too long: refused before the name arrives
    fails(cat({le32(101), Bytes(101, 'A')}));
    fails(cat({le32(4), ascii("PLAI")}));                     // prefix of an offered name
    fails(cat({le32(9), ascii("DIGEST-MD")}));                // not offered
    fails(cat({le32(19), ascii("PLAIN,SCRAM-SHA-256")}));     // ",PLAIN,SCRAM-SHA-256," is in the list, but commas are banned
    fails(cat({le32(6), ascii("PLAIN"), hex("00")}));         // the name carries no NUL (§5.1)
}

// The refusal names what the client sent, even when more bytes followed the name in the same
// read (the name's bytes are consumed before the detail is written).
TEST(SpiceDownstreamLink, RefusedMechanismIsNamedInTheDetail) {
    DownstreamLink link;
    link.feed(client_link());
    ASSERT_TRUE(link.next_event());
    LinkReply reply;
    reply.common_caps.words = {caps_select_sasl_mini};
    link.accept_link(reply, "SCRAM-SHA-256,PLAIN");
    link.feed(cat({le32(2), le32(10), ascii("EVILMECH01"), Bytes(12, 'x')}));
    const auto event = link.next_event();
    ASSERT_TRUE(event);
    const auto* failed = std::get_if<Failed>(&*event);
    ASSERT_TRUE(failed);
    EXPECT_EQ(failed->detail, "SASL mechanism 'EVILMECH01' not offered");
}

TEST(SpiceDownstreamLink, LongestMechanismNameIsAccepted) {
    Gateway gw = sasl_gateway();
    const std::string name(max_sasl_mechname_len, 'M');
    gw.mechs = name;
    const Outcome out = run(gw, {sasl_stream(cat({le32(100), ascii(name), le32(0)}))});
    ASSERT_FALSE(out.events.empty());
    EXPECT_EQ(out.events.back(), "sasl_start " + name + " null");
}

TEST(SpiceDownstreamLink, OversizedSaslData) {
    const Bytes mech = cat({le32(5), ascii("PLAIN")});
    // Refused as soon as the length arrives, for the start and for a later step.
    expect_failure(sasl_stream(cat({mech, le32(max_sasl_data_len + 1)})), LinkError::invalid_data,
                   sasl_prefix_output(), sasl_gateway());
    Gateway stepping = sasl_gateway();
    stepping.challenges = {std::nullopt};
    expect_failure(sasl_stream(cat({mech, le32(0), le32(0xFFFFFFFF)})), LinkError::invalid_data,
                   cat({sasl_prefix_output(), hex("00 00 00 00 00")}), stepping);
}

TEST(SpiceDownstreamLink, LargestSaslDataIsAccepted) {
    Bytes data(max_sasl_data_len, 'x');
    data.back() = 0;
    const Outcome out = run(sasl_gateway(), {sasl_stream(cat({le32(5), ascii("PLAIN"), le32(max_sasl_data_len), data}))});
    EXPECT_TRUE(out.done);
    EXPECT_EQ(out.events.size(), 2u);
}

TEST(SpiceDownstreamLink, TruncatedInputProducesNothing) {
    const Bytes full = cat({client_link(), le32(1), ticket_bytes()});
    const std::size_t link_size = client_link().size();
    for (std::size_t n : {std::size_t{0}, std::size_t{3}, std::size_t{15}, std::size_t{16}, link_size - 1}) {
        DownstreamLink link;
        link.feed(std::span(full).first(n));
        EXPECT_FALSE(link.next_event()) << n;
        EXPECT_TRUE(link.take_output().empty()) << n;
        EXPECT_FALSE(link.closed()) << n;
    }
    // A partial mechanism word or ticket: the reply went out, no further event yet.
    for (std::size_t n : {link_size + 3, link_size + 4, full.size() - 1}) {
        const Outcome out = run(Gateway{}, {Bytes(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n))});
        EXPECT_EQ(out.events, std::vector<std::string>{link_event}) << n;
        EXPECT_EQ(out.output, reply_bytes(caps_select_spice_mini)) << n;
        EXPECT_FALSE(out.closed || out.done) << n;
    }
}

TEST(SpiceDownstreamLink, GarbageAfterTheLink) {
    // Sent before the reply, it is read as the mechanism word once the link is accepted.
    expect_failure(cat({client_link(), ascii("garbage!")}), LinkError::invalid_data,
                   reply_bytes(caps_select_spice_mini));
}

TEST(SpiceDownstreamLink, FloodWhileWaitingForTheGatewayIsBounded) {
    DownstreamLink link;
    link.feed(cat({client_link(), Bytes(max_handshake_buffer, 0)}));
    ASSERT_TRUE(link.next_event());
    EXPECT_FALSE(link.closed());
    link.feed(hex("00"));
    auto event = link.next_event();
    ASSERT_TRUE(event && std::holds_alternative<Failed>(*event));
    EXPECT_TRUE(link.closed());
    EXPECT_EQ(link.take_output(), error_reply(LinkError::invalid_data));
}

TEST(SpiceDownstreamLink, LinkEventCarriesTheClientsFields) {
    LinkMess m;
    m.connection_id = 0x01020304;
    m.channel_type = static_cast<std::uint8_t>(ChannelType::display);
    m.channel_id = 2;
    m.common_caps.words = {0x09};
    m.channel_caps.words = {0xFFFF, 0x1};
    DownstreamLink link;
    link.feed(encode_link_mess(m));
    auto event = link.next_event();
    ASSERT_TRUE(event && std::holds_alternative<LinkReceived>(*event));
    EXPECT_EQ(std::get<LinkReceived>(*event).link, m);
}

}  // namespace
}  // namespace vmgate::spice
