#include "vnc/client_message_filter.hpp"

#include "vnc/wire.hpp"

#include <algorithm>
#include <limits>
#include <utility>

namespace vmgate::vnc {
namespace {

// Message layouts as QEMU's protocol_client_msg (ui/vnc.c) reads them (§5.2): fixed sizes, and
// for the variable ones the header that holds the count or length.
constexpr std::size_t set_pixel_format_size = 20;
constexpr std::size_t framebuffer_update_request_size = 10;
constexpr std::size_t key_event_size = 8;
constexpr std::size_t pointer_event_size = 6;
constexpr std::size_t xvp_size = 4;
constexpr std::size_t set_encodings_header = 4;
constexpr std::size_t encoding_count_at = 2;  // u16
constexpr std::size_t encoding_size = 4;      // s32 each
constexpr std::size_t cut_text_header = 8;
constexpr std::size_t cut_text_length_at = 4;  // s32; negative = extended clipboard, |length| bytes
constexpr std::uint32_t s32_sign_bit = 0x8000'0000;
constexpr std::size_t extended_clipboard_flags_size = 4;  // the u32 that starts its payload
constexpr std::size_t set_desktop_size_header = 8;
constexpr std::size_t screen_count_at = 6;  // u8
constexpr std::size_t screen_size = 16;
constexpr std::size_t qemu_header = 2;
constexpr std::size_t qemu_subtype_at = 1;
constexpr std::size_t extended_key_event_size = 12;
constexpr std::size_t audio_header = 4;
constexpr std::size_t audio_operation_at = 2;  // u16
constexpr std::size_t audio_set_format_size = 10;

// A held buffer grown beyond this by a large message (a clipboard) is freed rather than kept for
// the session's lifetime.
constexpr std::size_t kept_capacity = 64 * 1024;

// The count fields bound these two below the largest ClientCutText, so only that needs a cap.
static_assert(set_encodings_header + encoding_size * std::numeric_limits<std::uint16_t>::max() <=
              max_client_message_size);
static_assert(set_desktop_size_header + screen_size * std::numeric_limits<std::uint8_t>::max() <=
              max_client_message_size);

// What a message's first bytes say about it. `size` is the whole message's length once `head`
// holds the fields that give it; before that, how many bytes to wait for (more than
// head.size()). A non-empty `error` names a message QEMU would refuse.
struct Extent {
    std::size_t size = 0;
    std::string error;
};

Extent cut_text_extent(std::span<const std::uint8_t> head) {
    if (head.size() < cut_text_header) return {cut_text_header, {}};
    const std::uint32_t raw = wire::get_u32(head, cut_text_length_at);
    const bool extended = (raw & s32_sign_bit) != 0;
    // |s32| in unsigned arithmetic: the most negative value stays 2^31, far above the cap.
    const std::uint32_t length = extended ? 0U - raw : raw;
    const auto refuse = [&](const std::string& why) {
        return Extent{0, (extended ? "extended ClientCutText of " : "ClientCutText of ") + std::to_string(length) +
                             " bytes " + why};
    };
    if (length > max_client_cut_text_len) {
        return refuse("exceeds the " + std::to_string(max_client_cut_text_len) + "-byte limit");
    }
    if (extended && length < extended_clipboard_flags_size) {
        return refuse("is shorter than its " + std::to_string(extended_clipboard_flags_size) + "-byte flags");
    }
    return {cut_text_header + length, {}};
}

Extent audio_extent(std::span<const std::uint8_t> head) {
    if (head.size() < audio_header) return {audio_header, {}};
    const std::uint16_t operation = wire::get_u16(head, audio_operation_at);
    switch (static_cast<QemuAudioOperation>(operation)) {
    case QemuAudioOperation::enable:
    case QemuAudioOperation::disable: return {audio_header, {}};
    case QemuAudioOperation::set_format: return {audio_set_format_size, {}};
    }
    return {0, "unknown QEMU audio operation " + std::to_string(operation)};
}

Extent qemu_extent(std::span<const std::uint8_t> head) {
    if (head.size() < qemu_header) return {qemu_header, {}};
    const std::uint8_t subtype = head[qemu_subtype_at];
    switch (static_cast<QemuClientSubtype>(subtype)) {
    case QemuClientSubtype::extended_key_event: return {extended_key_event_size, {}};
    case QemuClientSubtype::audio: return audio_extent(head);
    }
    return {0, "unknown QEMU client message subtype " + std::to_string(subtype)};
}

// `head` is not empty. Only as many bytes as the message's header are read, so the answer for
// a given stream does not depend on where it was cut.
Extent extent_of(std::span<const std::uint8_t> head) {
    switch (static_cast<ClientMessageType>(head[0])) {
    case ClientMessageType::set_pixel_format: return {set_pixel_format_size, {}};
    case ClientMessageType::framebuffer_update_request: return {framebuffer_update_request_size, {}};
    case ClientMessageType::key_event: return {key_event_size, {}};
    case ClientMessageType::pointer_event: return {pointer_event_size, {}};
    case ClientMessageType::xvp: return {xvp_size, {}};
    case ClientMessageType::set_encodings:
        // QEMU's only bound is the u16 count: at most 256 KiB, below the clipboard's.
        if (head.size() < set_encodings_header) return {set_encodings_header, {}};
        return {set_encodings_header + encoding_size * wire::get_u16(head, encoding_count_at), {}};
    case ClientMessageType::set_desktop_size:
        if (head.size() < set_desktop_size_header) return {set_desktop_size_header, {}};
        return {set_desktop_size_header + screen_size * head[screen_count_at], {}};
    case ClientMessageType::client_cut_text: return cut_text_extent(head);
    case ClientMessageType::qemu: return qemu_extent(head);
    }
    return {0, "unknown client message type " + std::to_string(head[0])};
}

// What a whole message means for the session.
struct Role {
    bool user_input = false;       // a person acted: keeps the session from going idle
    bool view_only_drops = false;  // acts on the guest: a view-only session may not send it
};

Role role_of(std::span<const std::uint8_t> message) {
    switch (static_cast<ClientMessageType>(message[0])) {
    // Typing and mouse use are what view-only withholds, and what "idle" means.
    case ClientMessageType::key_event:
    case ClientMessageType::pointer_event: return {true, true};
    // Text (or extended-clipboard traffic) into the guest's clipboard is input like typing; a
    // viewer's clipboard stays out of the VM. Clients also send it when their local clipboard
    // changes, which is a person at work too.
    case ClientMessageType::client_cut_text: return {true, true};
    // Power control (shutdown, reset) is chosen by a person in the viewer's menu, and is the last
    // thing a viewer may do to the VM.
    case ClientMessageType::xvp: return {true, true};
    // Resizing the guest's display changes it for everyone; clients send it by themselves when
    // connecting or when their window changes, so it says nothing about a person being there.
    case ClientMessageType::set_desktop_size: return {false, true};
    case ClientMessageType::qemu:
        // The extended key event is QEMU's KeyEvent with the scancode. Audio requests only ask
        // to hear the guest: nothing reaches the VM, and clients send them at connect.
        return static_cast<QemuClientSubtype>(message[qemu_subtype_at]) == QemuClientSubtype::extended_key_event
                   ? Role{true, true}
                   : Role{false, false};
    // How the client wants to receive the screen; sent by the client on its own, update requests
    // continuously. A viewer needs all of them to see anything.
    case ClientMessageType::set_pixel_format:
    case ClientMessageType::set_encodings:
    case ClientMessageType::framebuffer_update_request: return {false, false};
    }
    return {};  // unreachable: extent_of refused every other type
}

}  // namespace

ClientMessageFilter::ClientMessageFilter(ClientMessageFilterOptions options) : options_(options) {}

void ClientMessageFilter::feed(std::span<const std::uint8_t> in, std::vector<std::uint8_t>& out) {
    if (!held_.empty() && !failed_) in = complete_held(in, out);
    if (!failed_) pass_whole(in, out);
}

bool ClientMessageFilter::take_input_seen() { return std::exchange(input_seen_, false); }

// Tops the held message up from `in`, never past its end (first to its header, then to the
// length the header gives), and settles it once whole. Returns the input after it; empty while
// the message is still incomplete.
std::span<const std::uint8_t> ClientMessageFilter::complete_held(std::span<const std::uint8_t> in,
                                                                 std::vector<std::uint8_t>& out) {
    for (;;) {
        Extent extent = extent_of(held_);
        if (!extent.error.empty()) {
            fail(std::move(extent.error));
            return {};
        }
        if (held_.size() == extent.size) break;
        if (in.empty()) return in;
        const auto more = in.first(std::min(extent.size - held_.size(), in.size()));
        held_.insert(held_.end(), more.begin(), more.end());
        in = in.subspan(more.size());
    }
    if (admit(held_)) out.insert(out.end(), held_.begin(), held_.end());
    release_held();
    return in;
}

// Every whole message of `in` in one pass: consecutive forwarded messages go out as one copy,
// and the incomplete message at the end (if any) is held.
void ClientMessageFilter::pass_whole(std::span<const std::uint8_t> in, std::vector<std::uint8_t>& out) {
    std::size_t run = 0;  // forwarded messages from `run` up to `at` are not copied out yet
    std::size_t at = 0;
    const auto copy_run = [&] {
        const auto bytes = in.subspan(run, at - run);
        out.insert(out.end(), bytes.begin(), bytes.end());
    };
    while (at < in.size()) {
        const auto rest = in.subspan(at);
        Extent extent = extent_of(rest);
        if (!extent.error.empty()) {
            copy_run();
            return fail(std::move(extent.error));
        }
        if (extent.size > rest.size()) {
            held_.assign(rest.begin(), rest.end());
            break;
        }
        if (!admit(rest.first(extent.size))) {
            copy_run();
            run = at + extent.size;
        }
        at += extent.size;
    }
    copy_run();
}

// Notes input and counts a drop; true if the message goes upstream.
bool ClientMessageFilter::admit(std::span<const std::uint8_t> message) {
    const Role role = role_of(message);
    input_seen_ = input_seen_ || role.user_input;
    if (!options_.drop_input || !role.view_only_drops) return true;
    ++dropped_;
    return false;
}

void ClientMessageFilter::release_held() {
    if (held_.capacity() > kept_capacity) {
        held_ = {};
    } else {
        held_.clear();
    }
}

void ClientMessageFilter::fail(std::string error) {
    failed_ = true;
    error_ = std::move(error);
    held_ = {};
}

}  // namespace vmgate::vnc
