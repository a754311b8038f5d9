#include "spice/link_codec.hpp"
#include "spice/sasl_codec.hpp"
#include "spice_test_util.hpp"

#include <gtest/gtest.h>

namespace vmgate::spice {
namespace {

using test::Bytes;
using test::cat;
using test::hex;
using test::le32;

Bytes body_of(const Bytes& message) { return Bytes(message.begin() + link_header_size, message.end()); }

// §2.7: spice-gtk's main-channel link message, byte for byte.
const Bytes example_link = hex(
    "52 45 44 51 02 00 00 00 02 00 00 00 1A 00 00 00"
    "00 00 00 00 01 00 01 00 00 00 01 00 00 00 12 00 00 00"
    "0D 00 00 00"
    "0F 00 00 00");

LinkMess example_mess() {
    LinkMess m;
    m.channel_type = static_cast<std::uint8_t>(ChannelType::main);
    m.common_caps.words = {0x0D};
    m.channel_caps.words = {0x0F};
    return m;
}

LinkReply example_reply() {
    LinkReply r;
    r.pub_key = test::sample_pub_key();
    r.common_caps.words = {0x0B};
    r.channel_caps.words = {0x0F};
    return r;
}

Bytes mess_body(std::uint32_t ncommon, std::uint32_t nchannel, std::uint32_t offset, std::size_t words_present) {
    Bytes body = cat({le32(0), hex("01 00"), le32(ncommon), le32(nchannel), le32(offset)});
    for (std::size_t i = 0; i < words_present; ++i) {
        Bytes w = le32(static_cast<std::uint32_t>(i + 1));
        body.insert(body.end(), w.begin(), w.end());
    }
    return body;
}

TEST(SpiceLinkCodec, WorkedExampleLinkMessBytes) {
    EXPECT_EQ(encode_link_mess(example_mess()), example_link);
    const auto decoded = decode_link_mess(body_of(example_link));
    ASSERT_TRUE(std::holds_alternative<LinkMess>(decoded));
    EXPECT_EQ(std::get<LinkMess>(decoded), example_mess());
}

TEST(SpiceLinkCodec, WorkedExampleLinkReplyBytes) {
    const Bytes encoded = encode_link_reply(example_reply());
    const LinkReply r = example_reply();
    const Bytes expected = cat({hex("52 45 44 51 02 00 00 00 02 00 00 00 BA 00 00 00 00 00 00 00"),
                                Bytes(r.pub_key.begin(), r.pub_key.end()),
                                hex("01 00 00 00 01 00 00 00 B2 00 00 00 0B 00 00 00 0F 00 00 00")});
    EXPECT_EQ(encoded, expected);
    EXPECT_EQ(encoded.size(), link_header_size + link_reply_size + 8);
}

TEST(SpiceLinkCodec, ErrorReplyIsFullSizeAndZeroButError) {
    const Bytes e = encode_link_error(LinkError::need_secured);
    ASSERT_EQ(e.size(), 194u);
    EXPECT_EQ(Bytes(e.begin(), e.begin() + 20), hex("52 45 44 51 02 00 00 00 02 00 00 00 B2 00 00 00 05 00 00 00"));
    for (std::size_t i = 20; i < e.size(); ++i) EXPECT_EQ(e[i], 0) << i;
    const auto reply = decode_link_reply(body_of(e));
    ASSERT_TRUE(std::holds_alternative<LinkReply>(reply));
    EXPECT_EQ(std::get<LinkReply>(reply).error, LinkError::need_secured);
}

TEST(SpiceLinkCodec, RoundTripsMultiWordAndEmptyCaps) {
    LinkMess m;
    m.connection_id = 0xDEADBEEF;
    m.channel_type = 9;
    m.channel_id = 3;
    m.common_caps.words = {1, 2, 3};
    const auto dm = decode_link_mess(body_of(encode_link_mess(m)));
    ASSERT_TRUE(std::holds_alternative<LinkMess>(dm));
    EXPECT_EQ(std::get<LinkMess>(dm), m);

    LinkReply r;
    r.error = LinkError::permission_denied;
    r.channel_caps.words = {0xFFFFFFFF, 0};
    const auto dr = decode_link_reply(body_of(encode_link_reply(r)));
    ASSERT_TRUE(std::holds_alternative<LinkReply>(dr));
    EXPECT_EQ(std::get<LinkReply>(dr), r);
}

TEST(SpiceLinkCodec, HonoursCapsOffsetBeyondTheStruct) {
    // Two padding bytes between the struct and the caps are legal (§2.3 caps_offset).
    Bytes body = cat({le32(7), hex("02 00"), le32(1), le32(1), le32(20), hex("EE EE"), le32(0x11), le32(0x22)});
    const auto d = decode_link_mess(body);
    ASSERT_TRUE(std::holds_alternative<LinkMess>(d));
    EXPECT_EQ(std::get<LinkMess>(d).common_caps.words, std::vector<std::uint32_t>{0x11});
    EXPECT_EQ(std::get<LinkMess>(d).channel_caps.words, std::vector<std::uint32_t>{0x22});
}

TEST(SpiceLinkCodec, CapsOffsetIgnoredWithoutCaps) {
    EXPECT_TRUE(std::holds_alternative<LinkMess>(decode_link_mess(mess_body(0, 0, 0, 0))));
    EXPECT_TRUE(std::holds_alternative<LinkMess>(decode_link_mess(mess_body(0, 0, 0xFFFFFFFF, 0))));
}

void expect_invalid(const Decoded<LinkMess>& d) {
    ASSERT_TRUE(std::holds_alternative<Failed>(d));
    EXPECT_EQ(std::get<Failed>(d).code, LinkError::invalid_data);
    EXPECT_FALSE(std::get<Failed>(d).detail.empty());
}

TEST(SpiceLinkCodec, RejectsMalformedCaps) {
    expect_invalid(decode_link_mess(mess_body(1025, 0, 18, 0)));          // §2.6: > 1024 words
    expect_invalid(decode_link_mess(mess_body(0, 1025, 18, 0)));
    expect_invalid(decode_link_mess(mess_body(2, 0, 18, 1)));             // caps run past the end
    expect_invalid(decode_link_mess(mess_body(1, 0, 17, 1)));             // offset inside the struct
    expect_invalid(decode_link_mess(mess_body(1, 0, 0xFFFFFFFC, 1)));     // offset + 4n wraps in 32 bits
    expect_invalid(decode_link_mess(mess_body(1024, 1024, 18, 2)));
    expect_invalid(decode_link_mess(hex("00 00 00 00 01 00")));           // shorter than the struct
    EXPECT_TRUE(std::holds_alternative<LinkMess>(decode_link_mess(mess_body(1, 1, 18, 2))));
}

TEST(SpiceLinkCodec, RejectsMalformedReplyCaps) {
    Bytes body(link_reply_size, 0);
    const Bytes triple = cat({le32(1), le32(0), le32(177)});
    std::copy(triple.begin(), triple.end(), body.begin() + 166);
    body.resize(body.size() + 4, 0);
    EXPECT_TRUE(std::holds_alternative<Failed>(decode_link_reply(body)));
    EXPECT_TRUE(std::holds_alternative<Failed>(decode_link_reply(Bytes(177, 0))));
}

TEST(SpiceLinkCodec, HeaderChecks) {
    LinkHeader h;
    h.size = 18;
    EXPECT_FALSE(check_link_header(h, link_mess_size));
    h.size = 4096;
    EXPECT_FALSE(check_link_header(h, link_mess_size));
    h.size = 17;
    EXPECT_EQ(check_link_header(h, link_mess_size)->code, LinkError::invalid_data);
    h.size = 4097;
    EXPECT_EQ(check_link_header(h, link_mess_size)->code, LinkError::invalid_data);
    h.size = 177;
    EXPECT_EQ(check_link_header(h, link_reply_size)->code, LinkError::invalid_data);
    h.size = 178;
    h.major = 1;
    EXPECT_EQ(check_link_header(h, link_reply_size)->code, LinkError::version_mismatch);
}

TEST(SpiceLinkCodec, DecodesHeaderFields) {
    const auto bytes = hex("52 45 44 51 02 00 00 00 03 00 00 00 1A 01 00 00");
    const LinkHeader h = decode_link_header(std::span<const std::uint8_t, 16>(bytes.data(), 16));
    EXPECT_EQ(h.major, 2u);
    EXPECT_EQ(h.minor, 3u);
    EXPECT_EQ(h.size, 0x11Au);
    EXPECT_TRUE(is_link_magic(h.magic));
}

TEST(SpiceSaslCodec, FormatsMechlistWithFramingCommas) {
    EXPECT_EQ(format_sasl_mechlist("PLAIN"), ",PLAIN,");
    EXPECT_EQ(format_sasl_mechlist("SCRAM-SHA-256,PLAIN"), ",SCRAM-SHA-256,PLAIN,");
    EXPECT_EQ(format_sasl_mechlist(" SCRAM-SHA-256  PLAIN,,"), ",SCRAM-SHA-256,PLAIN,");
    EXPECT_FALSE(format_sasl_mechlist(""));
    EXPECT_FALSE(format_sasl_mechlist(" , "));
    const std::string fits(max_sasl_mechlist_len - 2, 'A');
    EXPECT_TRUE(format_sasl_mechlist(fits));
    EXPECT_FALSE(format_sasl_mechlist(fits + "A"));  // spice-gtk aborts above 300 bytes
}

TEST(SpiceSaslCodec, MechanismMustMatchAWholeEntry) {
    const std::string list = ",PLAIN,SCRAM-SHA-256,";
    EXPECT_TRUE(sasl_mechlist_offers(list, "PLAIN"));
    EXPECT_TRUE(sasl_mechlist_offers(list, "SCRAM-SHA-256"));
    EXPECT_FALSE(sasl_mechlist_offers(list, "PLAI"));
    EXPECT_FALSE(sasl_mechlist_offers(list, "SCRAM-SHA-1"));
    EXPECT_FALSE(sasl_mechlist_offers(list, "PLAIN,SCRAM-SHA-256"));  // §5.1: no comma, ever
    EXPECT_FALSE(sasl_mechlist_offers(list, ""));
}

TEST(SpiceSaslCodec, ServerDataCarriesCountedNul) {
    Bytes out;
    put_sasl_server_data(out, std::nullopt, true);
    EXPECT_EQ(out, hex("00 00 00 00 01"));
    out.clear();
    put_sasl_server_data(out, Bytes{}, false);
    EXPECT_EQ(out, hex("01 00 00 00 00 00"));
    out.clear();
    put_sasl_server_data(out, test::ascii("r=x"), false);
    EXPECT_EQ(out, hex("04 00 00 00 72 3D 78 00 00"));
}

}  // namespace
}  // namespace vmgate::spice
