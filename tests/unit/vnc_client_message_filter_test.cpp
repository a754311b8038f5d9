#include "vnc/client_message_filter.hpp"
#include "vnc_test_util.hpp"

#include <gtest/gtest.h>

namespace vmgate::vnc {
namespace {

using test::ascii;
using test::be16;
using test::be32;
using test::Bytes;
using test::cat;
using test::hex;

void append(Bytes& to, const Bytes& bytes) { to.insert(to.end(), bytes.begin(), bytes.end()); }

// One sample of every message QEMU parses (§5.2), as a client sends it.
Bytes set_pixel_format() { return hex("00 000000  20 18 00 01 00ff 00ff 00ff 10 08 00 000000"); }
Bytes set_encodings(std::uint16_t count) {
    Bytes message = cat({hex("02 00"), be16(count)});
    for (std::uint16_t i = 0; i < count; ++i) append(message, be32(0xFFFFFF21u - i));
    return message;
}
Bytes update_request() { return hex("03 01 0000 0000 0400 0300"); }
Bytes key_event() { return hex("04 01 0000 0000ff0d"); }
Bytes pointer_event() { return hex("05 01 0010 0020"); }
Bytes cut_text(std::string_view text) {
    return cat({hex("06 000000"), be32(static_cast<std::uint32_t>(text.size())), ascii(text)});
}
// Extended clipboard (negative length): u32 flags, then the payload.
Bytes extended_cut_text(const Bytes& payload) {
    const auto length = static_cast<std::uint32_t>(payload.size());
    return cat({hex("06 000000"), be32(0U - length), payload});
}
Bytes xvp_reset() { return hex("fa 00 01 02"); }
Bytes set_desktop_size(std::uint8_t screens) {
    Bytes message = cat({hex("fb 00 0400 0300"), Bytes{screens}, hex("00")});
    for (std::uint8_t i = 0; i < screens; ++i) append(message, cat({be32(i), hex("0000 0000 0400 0300"), be32(0)}));
    return message;
}
Bytes extended_key_event() { return hex("ff 00 0001 0000ff0d 0000001c"); }
Bytes audio_enable() { return hex("ff 01 0000"); }
Bytes audio_disable() { return hex("ff 01 0001"); }
Bytes audio_set_format() { return hex("ff 01 0002 03 02 0000ac44"); }

struct Sample {
    std::string name;
    Bytes bytes;
    bool input = false;    // reported by take_input_seen
    bool dropped = false;  // withheld from a view-only session
};

std::vector<Sample> samples() {
    return {
        {"SetPixelFormat", set_pixel_format()},
        {"SetEncodings", set_encodings(3)},
        {"SetEncodings empty", set_encodings(0)},
        {"FramebufferUpdateRequest", update_request()},
        {"KeyEvent", key_event(), true, true},
        {"PointerEvent", pointer_event(), true, true},
        {"ClientCutText", cut_text("hello"), true, true},
        {"ClientCutText empty", cut_text(""), true, true},
        {"extended ClientCutText", extended_cut_text(hex("01000001 00000005")), true, true},
        {"xvp", xvp_reset(), true, true},
        {"SetDesktopSize", set_desktop_size(2), false, true},
        {"QEMU extended key event", extended_key_event(), true, true},
        {"QEMU audio enable", audio_enable()},
        {"QEMU audio disable", audio_disable()},
        {"QEMU audio set format", audio_set_format()},
    };
}

Bytes all_samples(bool view_only) {
    Bytes stream;
    for (const Sample& s : samples())
        if (!view_only || !s.dropped) append(stream, s.bytes);
    return stream;
}

std::uint64_t dropped_samples() {
    std::uint64_t count = 0;
    for (const Sample& s : samples()) count += s.dropped ? 1 : 0;
    return count;
}

struct Outcome {
    Bytes out;
    bool failed = false;
    std::string error;
    std::uint64_t dropped = 0;
};

Outcome run(const std::vector<Bytes>& chunks, bool view_only = false) {
    ClientMessageFilter filter({.drop_input = view_only});
    Outcome result;
    for (const Bytes& chunk : chunks) filter.feed(chunk, result.out);
    result.failed = filter.failed();
    result.error = filter.error();
    result.dropped = filter.dropped_messages();
    return result;
}

TEST(VncClientMessageFilter, ForwardsEveryMessageTypeByteExact) {
    for (const Sample& s : samples()) {
        SCOPED_TRACE(s.name);
        const Outcome r = run({s.bytes});
        EXPECT_FALSE(r.failed) << r.error;
        EXPECT_EQ(r.out, s.bytes);
        EXPECT_EQ(r.dropped, 0u);
    }
}

TEST(VncClientMessageFilter, EverySplitOfAStreamGivesTheSameOutput) {
    const Bytes stream = all_samples(false);
    for (const bool view_only : {false, true}) {
        const Bytes expected = all_samples(view_only);
        for (const auto& chunks : test::chunkings(stream)) {
            const Outcome r = run(chunks, view_only);
            ASSERT_FALSE(r.failed) << r.error;
            ASSERT_EQ(r.out, expected) << "view_only " << view_only << ", " << chunks.size() << " chunks";
            ASSERT_EQ(r.dropped, view_only ? dropped_samples() : 0u);
        }
    }
}

TEST(VncClientMessageFilter, ViewOnlyDropsExactlyTheInputMessages) {
    for (const Sample& s : samples()) {
        SCOPED_TRACE(s.name);
        const Outcome r = run({s.bytes}, true);
        EXPECT_FALSE(r.failed) << r.error;
        EXPECT_EQ(r.out, s.dropped ? Bytes{} : s.bytes);
        EXPECT_EQ(r.dropped, s.dropped ? 1u : 0u);
    }
}

TEST(VncClientMessageFilter, ReportsInputOnceWhetherForwardedOrDropped) {
    for (const bool view_only : {false, true}) {
        for (const Sample& s : samples()) {
            SCOPED_TRACE(s.name);
            ClientMessageFilter filter({.drop_input = view_only});
            Bytes out;
            filter.feed(s.bytes, out);
            EXPECT_EQ(filter.take_input_seen(), s.input);
            EXPECT_FALSE(filter.take_input_seen());  // reported once
        }
    }
}

TEST(VncClientMessageFilter, InputIsSeenOnlyOnceTheMessageIsWhole) {
    ClientMessageFilter filter({});
    Bytes out;
    const Bytes key = key_event();
    filter.feed(update_request(), out);
    filter.feed(std::span(key).first(7), out);
    EXPECT_FALSE(filter.take_input_seen());
    filter.feed(std::span(key).subspan(7), out);
    EXPECT_TRUE(filter.take_input_seen());
    filter.feed(cat({update_request(), update_request(), set_encodings(1)}), out);
    EXPECT_FALSE(filter.take_input_seen());
    filter.feed(cat({pointer_event(), pointer_event()}), out);
    EXPECT_TRUE(filter.take_input_seen());
    EXPECT_FALSE(filter.take_input_seen());
}

TEST(VncClientMessageFilter, HoldsAnIncompleteMessageUntilItIsWhole) {
    // A dropped message never leaks a prefix; a forwarded one goes out only whole.
    for (const bool view_only : {false, true}) {
        const Bytes clip = cut_text(std::string(100'000, 'x'));
        ClientMessageFilter filter({.drop_input = view_only});
        Bytes out;
        filter.feed(update_request(), out);
        for (std::size_t at = 0; at + 1 < clip.size(); at += 4096) {
            filter.feed(std::span(clip).subspan(at, std::min<std::size_t>(4096, clip.size() - 1 - at)), out);
            ASSERT_EQ(out, update_request());
        }
        filter.feed(std::span(clip).last(1), out);
        EXPECT_EQ(out, view_only ? update_request() : cat({update_request(), clip}));
        EXPECT_EQ(filter.dropped_messages(), view_only ? 1u : 0u);
    }
}

TEST(VncClientMessageFilter, AcceptsTheLargestLegalMessages) {
    const Bytes encodings = set_encodings(0xFFFF);
    const Bytes clip = cut_text(std::string(max_client_cut_text_len, 'x'));
    const Bytes extended = extended_cut_text(Bytes(max_client_cut_text_len, 0));
    const Bytes screens = set_desktop_size(0xFF);
    EXPECT_EQ(encodings.size(), 4u + 4u * 0xFFFF);
    EXPECT_EQ(screens.size(), 8u + 16u * 0xFF);
    for (const Bytes* message : {&encodings, &clip, &extended, &screens}) {
        const Outcome r = run({*message});
        EXPECT_FALSE(r.failed) << r.error;
        EXPECT_EQ(r.out, *message);
    }
}

TEST(VncClientMessageFilter, RefusesUnknownMessageTypes) {
    // 1: a server message number; 150 EnableContinuousUpdates, 248 Fence, 253 gii and the other
    // extensions QEMU does not parse; 77 nothing at all.
    for (const int type : {1, 7, 77, 127, 150, 248, 249, 252, 253, 254}) {
        const Outcome r = run({cat({update_request(), Bytes{static_cast<std::uint8_t>(type)}, key_event()})});
        EXPECT_TRUE(r.failed);
        EXPECT_EQ(r.error, "unknown client message type " + std::to_string(type));
        EXPECT_EQ(r.out, update_request());  // what came before, and nothing after
    }
}

TEST(VncClientMessageFilter, RefusesUnknownQemuSubtypesAndAudioOperations) {
    const Outcome subtype = run({hex("ff 02 0000 0000")});
    EXPECT_TRUE(subtype.failed);
    EXPECT_EQ(subtype.error, "unknown QEMU client message subtype 2");
    const Outcome audio = run({hex("ff 01"), hex("0003 00 00")});
    EXPECT_TRUE(audio.failed);
    EXPECT_EQ(audio.error, "unknown QEMU audio operation 3");
    EXPECT_TRUE(subtype.out.empty());
    EXPECT_TRUE(audio.out.empty());
}

TEST(VncClientMessageFilter, RefusesOversizedClipboardsFromTheHeaderAlone) {
    const auto header = [](std::uint32_t length) { return cat({hex("06 000000"), be32(length)}); };
    const Outcome plain = run({header(max_client_cut_text_len + 1)});
    EXPECT_TRUE(plain.failed);
    EXPECT_EQ(plain.error, "ClientCutText of 1048577 bytes exceeds the 1048576-byte limit");
    const Outcome extended = run({header(0U - static_cast<std::uint32_t>(max_client_cut_text_len + 1))});
    EXPECT_TRUE(extended.failed);
    EXPECT_EQ(extended.error, "extended ClientCutText of 1048577 bytes exceeds the 1048576-byte limit");
    const Outcome most_negative = run({header(0x8000'0000)});
    EXPECT_TRUE(most_negative.failed);
    EXPECT_EQ(most_negative.error, "extended ClientCutText of 2147483648 bytes exceeds the 1048576-byte limit");
    const Outcome huge = run({header(0x7FFF'FFFF)});
    EXPECT_TRUE(huge.failed);
    EXPECT_EQ(huge.error, "ClientCutText of 2147483647 bytes exceeds the 1048576-byte limit");
}

TEST(VncClientMessageFilter, RefusesAnExtendedClipboardWithoutItsFlags) {
    const Outcome r = run({extended_cut_text(hex("0100"))});
    EXPECT_TRUE(r.failed);
    EXPECT_EQ(r.error, "extended ClientCutText of 2 bytes is shorter than its 4-byte flags");
    EXPECT_TRUE(r.out.empty());
}

TEST(VncClientMessageFilter, OutputsNothingAfterFailure) {
    ClientMessageFilter filter({});
    Bytes out;
    filter.feed(cat({pointer_event(), hex("06 000000"), be32(0xFFEF'FFFF)}), out);
    ASSERT_TRUE(filter.failed());
    EXPECT_EQ(out, pointer_event());
    filter.feed(cat({update_request(), key_event()}), out);
    filter.feed(set_pixel_format(), out);
    EXPECT_EQ(out, pointer_event());
    EXPECT_TRUE(filter.failed());
    EXPECT_EQ(filter.error(), "extended ClientCutText of 1048577 bytes exceeds the 1048576-byte limit");
}

TEST(VncClientMessageFilter, FailsWhenAHeldMessageTurnsOutMalformed) {
    ClientMessageFilter filter({});
    Bytes out;
    filter.feed(cat({update_request(), hex("ff")}), out);
    EXPECT_FALSE(filter.failed());
    filter.feed(cat({hex("07 0000"), key_event()}), out);
    EXPECT_TRUE(filter.failed());
    EXPECT_EQ(filter.error(), "unknown QEMU client message subtype 7");
    EXPECT_EQ(out, update_request());
}

TEST(VncClientMessageFilter, NoErrorWhileHealthy) {
    ClientMessageFilter filter({.drop_input = true});
    Bytes out;
    filter.feed(all_samples(false), out);
    EXPECT_FALSE(filter.failed());
    EXPECT_EQ(filter.error(), "");
    EXPECT_EQ(filter.dropped_messages(), dropped_samples());
}

}  // namespace
}  // namespace vmgate::vnc
