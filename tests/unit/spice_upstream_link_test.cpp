#include "spice/upstream_link.hpp"
#include "spice_test_util.hpp"

#include <gtest/gtest.h>

namespace vmgate::spice {
namespace {

using test::ascii;
using test::Bytes;
using test::cat;
using test::hex;
using test::le32;

LinkMess gateway_link(std::uint32_t common = 0x09) {
    LinkMess m;
    m.channel_type = static_cast<std::uint8_t>(ChannelType::main);
    m.common_caps.words = {common};
    m.channel_caps.words = {0x0F};
    return m;
}

LinkReply server_reply(std::uint32_t common = 0x0B) {
    LinkReply r;
    r.pub_key = test::sample_pub_key();
    r.common_caps.words = {common};
    r.channel_caps.words = {0x0F};
    return r;
}

Bytes ticket_bytes() { return test::to_bytes(test::sample_ticket()); }

// MAIN_INIT with the mini header (§8.2): type 103, 32-byte body, session id 0x12345678.
Bytes main_init() { return cat({hex("67 00 20 00 00 00"), le32(0x12345678), Bytes(28, 0)}); }

struct Outcome {
    std::vector<std::string> events;
    Bytes output;
    Bytes excess;
    bool closed = false;
    bool done = false;
    bool operator==(const Outcome&) const = default;
};

std::string describe(const UpstreamEvent& e) {
    if (const auto* r = std::get_if<ReplyReceived>(&e)) {
        return "reply " + std::string(to_string(r->reply.error)) + " common=" +
               std::to_string(r->reply.common_caps.words.empty() ? 0 : r->reply.common_caps.words[0]);
    }
    if (const auto* r = std::get_if<Result>(&e)) return "result " + std::string(to_string(r->code));
    return "failed " + std::string(to_string(std::get<Failed>(e).code));
}

// Feeds the server's bytes in `chunks`, sending the ticket as soon as an OK reply arrives.
Outcome run(const LinkMess& link, const std::vector<Bytes>& chunks) {
    UpstreamLink up(link);
    Outcome out;
    const auto ticket = test::sample_ticket();
    for (const Bytes& chunk : chunks) {
        up.feed(chunk);
        while (auto e = up.next_event()) {
            out.events.push_back(describe(*e));
            const auto* reply = std::get_if<ReplyReceived>(&*e);
            if (reply && reply->reply.error == LinkError::ok) up.send_ticket(ticket);
        }
    }
    out.output = up.take_output();
    out.excess = up.take_excess();
    out.closed = up.closed();
    out.done = up.done();
    return out;
}

Outcome run_all_chunkings(const LinkMess& link, const Bytes& stream) {
    const Outcome whole = run(link, {stream});
    const auto chunkings = test::chunkings(stream);
    for (std::size_t i = 0; i < chunkings.size(); ++i) EXPECT_EQ(run(link, chunkings[i]), whole) << "chunking #" << i;
    return whole;
}

TEST(SpiceUpstreamLink, QueuesTheLinkMessage) {
    UpstreamLink up(gateway_link());
    EXPECT_EQ(up.take_output(), encode_link_mess(gateway_link()));
    EXPECT_TRUE(up.take_output().empty());
    EXPECT_FALSE(up.next_event());
}

TEST(SpiceUpstreamLink, TicketHandshakeKeepsMainInitAsExcess) {
    // §12 item 16: the result and MAIN_INIT may share one read.
    const Outcome out = run_all_chunkings(gateway_link(), cat({encode_link_reply(server_reply()), le32(0), main_init()}));
    EXPECT_EQ(out.events, (std::vector<std::string>{"reply ok common=11", "result ok"}));
    EXPECT_EQ(out.output, cat({encode_link_mess(gateway_link()), le32(1), ticket_bytes()}));
    EXPECT_EQ(out.excess, main_init());
    EXPECT_TRUE(out.done);
}

TEST(SpiceUpstreamLink, ReplyEventCarriesTheServersFields) {
    UpstreamLink up(gateway_link());
    up.feed(encode_link_reply(server_reply()));
    auto e = up.next_event();
    ASSERT_TRUE(e && std::holds_alternative<ReplyReceived>(*e));
    EXPECT_EQ(std::get<ReplyReceived>(*e).reply, server_reply());
}

TEST(SpiceUpstreamLink, FeedAfterDoneAppendsToExcess) {
    UpstreamLink up(gateway_link());
    up.feed(encode_link_reply(server_reply()));
    ASSERT_TRUE(up.next_event());
    up.send_ticket(test::sample_ticket());
    up.feed(cat({le32(0), ascii("ab")}));
    ASSERT_TRUE(up.next_event());
    up.feed(ascii("cd"));
    EXPECT_EQ(up.take_excess(), ascii("abcd"));
    EXPECT_TRUE(up.take_excess().empty());
}

TEST(SpiceUpstreamLink, NoMechanismWordWithoutSelectionOnBothSides) {
    // §3.2: the server reads the word only if the client advertised AUTH_SELECTION, and a
    // client sends it only if the server did.
    const Bytes server = cat({encode_link_reply(server_reply(0x0A)), le32(0)});
    EXPECT_EQ(run(gateway_link(), {server}).output, cat({encode_link_mess(gateway_link()), ticket_bytes()}));
    const Bytes server2 = cat({encode_link_reply(server_reply()), le32(0)});
    EXPECT_EQ(run(gateway_link(0x08), {server2}).output, cat({encode_link_mess(gateway_link(0x08)), ticket_bytes()}));
}

TEST(SpiceUpstreamLink, SaslOnlyServerCannotTakeATicket) {
    UpstreamLink up(gateway_link());
    (void)up.take_output();
    up.feed(encode_link_reply(server_reply(0x0D)));
    ASSERT_TRUE(up.next_event());
    up.send_ticket(test::sample_ticket());
    auto e = up.next_event();
    ASSERT_TRUE(e && std::holds_alternative<Failed>(*e));
    EXPECT_TRUE(up.closed());
    EXPECT_TRUE(up.take_output().empty());
}

TEST(SpiceUpstreamLink, FailedResultCloses) {
    const Outcome out = run_all_chunkings(gateway_link(), cat({encode_link_reply(server_reply()), le32(7), ascii("zz")}));
    ASSERT_FALSE(out.events.empty());
    EXPECT_EQ(out.events.back(), "result permission_denied");
    EXPECT_TRUE(out.closed);
    EXPECT_TRUE(out.excess.empty());
}

TEST(SpiceUpstreamLink, ErrorReplyIsReportedAndCloses) {
    const Outcome out = run_all_chunkings(gateway_link(), encode_link_error(LinkError::need_secured));
    EXPECT_EQ(out.events, std::vector<std::string>{"reply need_secured common=0"});
    EXPECT_TRUE(out.closed);
    EXPECT_EQ(out.output, encode_link_mess(gateway_link()));
}

TEST(SpiceUpstreamLink, TruncatedReplyProducesNothing) {
    const Bytes reply = encode_link_reply(server_reply());
    for (std::size_t n : {std::size_t{0}, std::size_t{4}, std::size_t{16}, reply.size() - 1}) {
        UpstreamLink up(gateway_link());
        up.feed(std::span(reply).first(n));
        EXPECT_FALSE(up.next_event()) << n;
        EXPECT_FALSE(up.closed()) << n;
    }
}

void expect_failed(const Bytes& server, LinkError code) {
    const Outcome out = run_all_chunkings(gateway_link(), server);
    EXPECT_EQ(out.events, std::vector<std::string>{"failed " + std::string(to_string(code))});
    EXPECT_TRUE(out.closed);
    EXPECT_EQ(out.output, encode_link_mess(gateway_link()));  // nothing beyond the link went out
}

Bytes reply_header(std::uint32_t major, std::uint32_t size) { return cat({ascii("REDQ"), le32(major), le32(2), le32(size)}); }

TEST(SpiceUpstreamLink, MalformedReplies) {
    expect_failed(ascii("HTTP/1.1 400 Bad Request\r\n"), LinkError::invalid_magic);
    expect_failed(reply_header(1, 178), LinkError::version_mismatch);
    expect_failed(reply_header(2, 177), LinkError::invalid_data);  // §2.4: clients insist on >= 178
    expect_failed(reply_header(2, 18), LinkError::invalid_data);
    expect_failed(reply_header(2, 4097), LinkError::invalid_data);
    Bytes body(link_reply_size, 0);
    const Bytes triple = cat({le32(1), le32(0), le32(178)});  // one caps word promised, none present
    std::copy(triple.begin(), triple.end(), body.begin() + 166);
    expect_failed(cat({reply_header(2, link_reply_size), body}), LinkError::invalid_data);
    const Bytes too_many = cat({le32(1025), le32(0), le32(178)});
    std::copy(too_many.begin(), too_many.end(), body.begin() + 166);
    expect_failed(cat({reply_header(2, link_reply_size), body}), LinkError::invalid_data);
}

TEST(SpiceUpstreamLink, SendTicketBeforeTheReplyThrows) {
    UpstreamLink up(gateway_link());
    EXPECT_THROW(up.send_ticket(test::sample_ticket()), std::logic_error);
}

TEST(SpiceUpstreamLink, UnsolicitedDataBeforeTheTicketIsBounded) {
    UpstreamLink up(gateway_link());
    up.feed(cat({encode_link_reply(server_reply()), Bytes(max_handshake_buffer, 0)}));
    ASSERT_TRUE(up.next_event());
    EXPECT_FALSE(up.closed());
    up.feed(hex("00"));
    auto e = up.next_event();
    ASSERT_TRUE(e && std::holds_alternative<Failed>(*e));
    EXPECT_TRUE(up.closed());
}

}  // namespace
}  // namespace vmgate::spice
