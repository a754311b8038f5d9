#include "spice/main_channel_filter.hpp"
#include "spice_test_util.hpp"

#include <gtest/gtest.h>

namespace vmgate::spice {
namespace {

using test::ascii;
using test::Bytes;
using test::cat;
using test::hex;
using test::le16;
using test::le32;

constexpr std::uint32_t session = 0x12345678;

Bytes message(bool mini, std::uint16_t type, const Bytes& body, std::uint64_t serial = 1) {
    const Bytes size = le32(static_cast<std::uint32_t>(body.size()));
    if (mini) return cat({le16(type), size, body});
    return cat({le32(static_cast<std::uint32_t>(serial)), le32(static_cast<std::uint32_t>(serial >> 32)), le16(type), size,
                le32(0), body});
}

Bytes message(bool mini, MainMsg type, const Bytes& body, std::uint64_t serial = 1) {
    return message(mini, static_cast<std::uint16_t>(type), body, serial);
}

// §8.3 DstInfo: port, sport, host_size, host offset, subject size, subject offset, strings.
Bytes dst_info(const std::string& host) {
    const auto host_size = static_cast<std::uint32_t>(host.size() + 1);
    return cat({le16(5900), le16(5901), le32(host_size), le32(20), le32(0), le32(0), ascii(host), hex("00")});
}

Bytes init_body(std::uint32_t id) { return cat({le32(id), le32(1), le32(3), le32(2), le32(0), le32(10), le32(0), le32(0)}); }

struct Stream {
    Bytes input;
    Bytes expected_output;
};

// A realistic main-channel sequence with every dropped type interleaved with forwarded ones.
Stream sample_stream(bool mini) {
    const Bytes init = message(mini, MainMsg::init, init_body(session), 1);
    const Bytes name = message(mini, MainMsg::name, cat({le32(6), ascii("vm-42"), hex("00")}), 2);
    const Bytes begin = message(mini, MainMsg::migrate_begin, dst_info("10.0.0.7"), 3);
    const Bytes ping = message(mini, 4, cat({le32(1), le32(0), le32(0)}), 4);  // common PING
    const Bytes empty = message(mini, MainMsg::migrate_cancel, {}, 5);
    const Bytes begin_seamless = message(mini, MainMsg::migrate_begin_seamless, cat({dst_info("hv1"), le32(1)}), 6);
    const Bytes list = message(mini, MainMsg::channels_list, cat({le32(2), hex("01 00 02 00")}), 7);
    const Bytes switch_host = message(mini, MainMsg::migrate_switch_host, dst_info("hv2.example"), 8);
    const Bytes second_init = message(mini, MainMsg::init, init_body(0xBAD), 9);
    return {cat({init, name, begin, ping, empty, begin_seamless, list, switch_host, second_init}),
            cat({init, name, ping, empty, list, second_init})};
}

struct Outcome {
    Bytes output;
    std::optional<std::uint32_t> session_id;
    std::vector<std::uint16_t> dropped;
    bool failed = false;
    bool operator==(const Outcome&) const = default;
};

Outcome run(bool mini, const std::vector<Bytes>& chunks) {
    MainChannelFilter filter(mini);
    Outcome out;
    for (const Bytes& c : chunks) filter.feed(c, out.output);
    out.session_id = filter.session_id();
    out.dropped = filter.take_dropped();
    out.failed = filter.failed();
    return out;
}

const std::vector<std::uint16_t> all_dropped{101, 116, 111};

void expect_filtered_at_every_boundary(bool mini) {
    const Stream s = sample_stream(mini);
    const auto chunkings = test::chunkings(s.input);
    for (std::size_t i = 0; i < chunkings.size(); ++i) {
        const Outcome out = run(mini, chunkings[i]);
        EXPECT_EQ(out.output, s.expected_output) << "chunking #" << i;
        EXPECT_EQ(out.session_id, session) << "chunking #" << i;
        EXPECT_EQ(out.dropped, all_dropped) << "chunking #" << i;
        EXPECT_FALSE(out.failed);
    }
}

TEST(SpiceMainChannelFilter, MiniHeaderAtEveryBoundary) { expect_filtered_at_every_boundary(true); }

TEST(SpiceMainChannelFilter, FullHeaderAtEveryBoundary) { expect_filtered_at_every_boundary(false); }

TEST(SpiceMainChannelFilter, ThreeWayCuts) {
    const Stream s = sample_stream(true);
    for (std::size_t a = 1; a < s.input.size(); a += 7) {
        for (std::size_t b = a + 1; b < s.input.size(); b += 5) {
            const auto at = [&](std::size_t n) { return s.input.begin() + static_cast<std::ptrdiff_t>(n); };
            const Outcome out = run(true, {Bytes(s.input.begin(), at(a)), Bytes(at(a), at(b)), Bytes(at(b), s.input.end())});
            ASSERT_EQ(out.output, s.expected_output) << a << "," << b;
        }
    }
}

TEST(SpiceMainChannelFilter, SessionIdIsUnknownUntilFourBodyBytes) {
    MainChannelFilter filter(true);
    Bytes out;
    const Bytes init = message(true, MainMsg::init, init_body(session));
    filter.feed(std::span(init).first(mini_header_size + 3), out);
    EXPECT_FALSE(filter.session_id());
    filter.feed(std::span(init).subspan(mini_header_size + 3, 1), out);
    EXPECT_EQ(filter.session_id(), session);
}

TEST(SpiceMainChannelFilter, ShortInitCarriesNoSessionId) {
    const Bytes stream = cat({message(true, MainMsg::init, hex("01 02 03")), message(true, MainMsg::init, init_body(7))});
    const Outcome out = run(true, {stream});
    EXPECT_EQ(out.session_id, 7u);
    EXPECT_EQ(out.output, stream);
}

TEST(SpiceMainChannelFilter, TakeDroppedClears) {
    MainChannelFilter filter(true);
    Bytes out;
    filter.feed(message(true, MainMsg::migrate_switch_host, dst_info("h")), out);
    EXPECT_TRUE(out.empty());
    EXPECT_EQ(filter.take_dropped(), std::vector<std::uint16_t>{111});
    EXPECT_TRUE(filter.take_dropped().empty());
}

TEST(SpiceMainChannelFilter, DroppedHeaderAloneIsRecorded) {
    MainChannelFilter filter(true);
    Bytes out;
    filter.feed(cat({le16(101), le32(1000)}), out);  // body still to come: skipped as it streams
    EXPECT_EQ(filter.take_dropped(), std::vector<std::uint16_t>{101});
    filter.feed(Bytes(1000, 0xAB), out);
    filter.feed(message(true, MainMsg::name, ascii("x")), out);
    EXPECT_EQ(out, message(true, MainMsg::name, ascii("x")));
}

TEST(SpiceMainChannelFilter, LargeBodiesStreamWithoutBuffering) {
    MainChannelFilter filter(true);
    Bytes out;
    constexpr std::uint32_t big = 3 * 1024 * 1024;
    filter.feed(cat({le16(107), le32(big)}), out);  // AGENT_DATA-sized message
    EXPECT_EQ(out.size(), mini_header_size);        // the header goes out before the body arrives
    const Bytes piece(64 * 1024, 0x5A);
    for (std::uint32_t sent = 0; sent < big; sent += static_cast<std::uint32_t>(piece.size())) {
        filter.feed(piece, out);
        ASSERT_EQ(out.size(), mini_header_size + sent + piece.size());
    }
    const Bytes next = message(true, MainMsg::name, ascii("y"));
    filter.feed(next, out);
    EXPECT_TRUE(std::equal(next.begin(), next.end(), out.end() - static_cast<std::ptrdiff_t>(next.size())));
    EXPECT_FALSE(filter.failed());
}

TEST(SpiceMainChannelFilter, BodyAboveSixteenMebibytesFails) {
    MainChannelFilter ok(true);
    Bytes out;
    ok.feed(cat({le16(107), le32(max_main_message_body)}), out);
    EXPECT_FALSE(ok.failed());

    MainChannelFilter bad(false);
    out.clear();
    const Bytes before = message(false, MainMsg::name, ascii("z"));
    bad.feed(cat({before, Bytes(8, 0), le16(107), le32(max_main_message_body + 1), le32(0), ascii("tail")}), out);
    EXPECT_TRUE(bad.failed());
    EXPECT_EQ(out, before);  // nothing of the oversized message or after it
    bad.feed(before, out);
    EXPECT_EQ(out, before);
}

TEST(SpiceMainChannelFilter, UnrelatedTypesPassByteForByte) {
    Bytes stream;
    for (std::uint16_t type = 1; type < 200; ++type) {
        if (type == 101 || type == 111 || type == 116) continue;
        const Bytes m = message(false, type, Bytes(type % 9, static_cast<std::uint8_t>(type)), 0xFFFFFFFF00000000ull + type);
        stream.insert(stream.end(), m.begin(), m.end());
    }
    const Outcome out = run(false, test::chunkings(stream).back());
    EXPECT_EQ(out.output, stream);
    EXPECT_TRUE(out.dropped.empty());
}

// ---- hidden channels (view-only rules, deny_channels) ----

std::bitset<256> hide(std::initializer_list<ChannelType> types) {
    std::bitset<256> bits;
    for (auto t : types) bits.set(static_cast<std::uint8_t>(t));
    return bits;
}

Bytes list_body(const std::vector<std::pair<std::uint8_t, std::uint8_t>>& channels) {
    Bytes body = le32(static_cast<std::uint32_t>(channels.size()));
    for (auto [type, id] : channels) body.insert(body.end(), {type, id});
    return body;
}

void expect_list_rewritten(bool mini) {
    const Bytes init = message(mini, MainMsg::init, init_body(session), 1);
    const Bytes list = message(mini, MainMsg::channels_list,
                               list_body({{2, 0}, {3, 0}, {4, 0}, {9, 0}, {9, 1}, {5, 0}}), 2);
    const Bytes ping = message(mini, 4, cat({le32(1), le32(0), le32(0)}), 3);
    const Bytes expected_list = message(mini, MainMsg::channels_list, list_body({{2, 0}, {4, 0}, {5, 0}}), 2);
    const Bytes input = cat({init, list, ping});
    const auto chunkings = test::chunkings(input);
    for (std::size_t i = 0; i < chunkings.size(); ++i) {
        MainChannelFilter filter(mini, hide({ChannelType::inputs, ChannelType::usbredir}));
        Bytes out;
        for (const Bytes& c : chunkings[i]) filter.feed(c, out);
        ASSERT_FALSE(filter.failed()) << "chunking #" << i;
        ASSERT_EQ(out, cat({init, expected_list, ping})) << "chunking #" << i;
        EXPECT_EQ(filter.session_id(), session);
    }
}

TEST(SpiceMainChannelFilter, HiddenChannelsLeaveTheListMiniHeader) { expect_list_rewritten(true); }

TEST(SpiceMainChannelFilter, HiddenChannelsLeaveTheListFullHeader) { expect_list_rewritten(false); }

TEST(SpiceMainChannelFilter, NothingHiddenLeavesTheListAlone) {
    const Bytes list = message(true, MainMsg::channels_list, list_body({{3, 0}, {4, 0}}), 1);
    MainChannelFilter filter(true);
    Bytes out;
    filter.feed(list, out);
    EXPECT_EQ(out, list);
}

TEST(SpiceMainChannelFilter, ListWhoseCountDisagreesWithItsSizeFails) {
    for (const Bytes& body : {cat({le32(3), hex("02 00 03 00")}), cat({le32(1), hex("02 00 03 00")}), hex("01 00"), Bytes{}}) {
        MainChannelFilter filter(true, hide({ChannelType::inputs}));
        Bytes out;
        filter.feed(message(true, MainMsg::channels_list, body), out);
        EXPECT_TRUE(filter.failed()) << body.size() << " body bytes";
        EXPECT_TRUE(out.empty());
    }
}

TEST(SpiceMainChannelFilter, OversizedListFailsBeforeBuffering) {
    MainChannelFilter filter(true, hide({ChannelType::inputs}));
    Bytes out;
    filter.feed(cat({le16(static_cast<std::uint16_t>(MainMsg::channels_list)), le32(1024 * 1024)}), out);
    EXPECT_TRUE(filter.failed());
}

}  // namespace
}  // namespace vmgate::spice
