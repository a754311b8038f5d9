#include "spice/main_channel_filter.hpp"

#include "spice/wire.hpp"

#include <algorithm>
#include <utility>

namespace vmgate::spice {
namespace {

// §8.1: the full header starts with a u64 serial; type and size follow in both forms.
constexpr std::size_t mini_type_at = 0;
constexpr std::size_t full_type_at = sizeof(std::uint64_t);
constexpr std::size_t type_to_size = sizeof(std::uint16_t);
// §6.4: u32 count, then {u8 type, u8 id} per channel. QEMU lists about ten; anything near this
// bound is not a channel list.
constexpr std::size_t channels_list_entry_size = 2;
constexpr std::size_t max_channels_list_body = 64 * 1024;

// §8.3, §12 item 19: these carry the hypervisor's host and port; the client must never see them.
bool reveals_hypervisor(std::uint16_t type) {
    switch (static_cast<MainMsg>(type)) {
    case MainMsg::migrate_begin:
    case MainMsg::migrate_begin_seamless:
    case MainMsg::migrate_switch_host: return true;
    default: return false;
    }
}

}  // namespace

MainChannelFilter::MainChannelFilter(bool mini_header, std::bitset<256> hidden_channels)
    : header_size_(mini_header ? mini_header_size : full_header_size),
      type_at_(mini_header ? mini_type_at : full_type_at), hidden_channels_(hidden_channels) {}

void MainChannelFilter::feed(std::span<const std::uint8_t> in, std::vector<std::uint8_t>& to_client) {
    while (!in.empty() && !failed_) {
        in = body_left_ == 0 ? read_header(in, to_client) : pass_body(in, to_client);
    }
}

std::vector<std::uint16_t> MainChannelFilter::take_dropped() { return std::exchange(dropped_, {}); }

std::span<const std::uint8_t> MainChannelFilter::read_header(std::span<const std::uint8_t> in,
                                                             std::vector<std::uint8_t>& to_client) {
    const std::size_t count = std::min(header_size_ - header_fill_, in.size());
    std::copy_n(in.begin(), count, header_.begin() + static_cast<std::ptrdiff_t>(header_fill_));
    header_fill_ += count;
    if (header_fill_ == header_size_) on_header(to_client);
    return in.subspan(count);
}

void MainChannelFilter::on_header(std::vector<std::uint8_t>& to_client) {
    const std::uint16_t type = wire::get_u16(header_, type_at_);
    const std::uint32_t size = wire::get_u32(header_, type_at_ + type_to_size);
    header_fill_ = 0;
    if (size > max_main_message_body) {
        failed_ = true;
        return;
    }
    dropping_ = reveals_hypervisor(type);
    rewriting_ = static_cast<MainMsg>(type) == MainMsg::channels_list && hidden_channels_.any();
    if (rewriting_ && size > max_channels_list_body) {
        failed_ = true;
        return;
    }
    if (dropping_) {
        dropped_.push_back(type);
    } else if (rewriting_) {
        list_body_.clear();  // the header goes out with the rewritten body
        if (size == 0) emit_channels_list(to_client);
    } else {
        to_client.insert(to_client.end(), header_.begin(),
                         header_.begin() + static_cast<std::ptrdiff_t>(header_size_));
    }
    // §8.2: only the first MAIN_INIT names the session; a shorter body carries no id.
    capturing_ = static_cast<MainMsg>(type) == MainMsg::init && !session_id_ &&
                 size >= init_prefix_.size();
    init_fill_ = 0;
    body_left_ = size;
}

std::span<const std::uint8_t> MainChannelFilter::pass_body(std::span<const std::uint8_t> in,
                                                           std::vector<std::uint8_t>& to_client) {
    const auto count = static_cast<std::size_t>(std::min<std::uint64_t>(body_left_, in.size()));
    const auto chunk = in.first(count);
    if (capturing_) capture_session_id(chunk);
    body_left_ -= count;
    if (rewriting_) {
        list_body_.insert(list_body_.end(), chunk.begin(), chunk.end());
        if (body_left_ == 0) emit_channels_list(to_client);
    } else if (!dropping_) {
        to_client.insert(to_client.end(), chunk.begin(), chunk.end());
    }
    return in.subspan(count);
}

// The collected CHANNELS_LIST without the hidden channels, under its header with the new size.
void MainChannelFilter::emit_channels_list(std::vector<std::uint8_t>& to_client) {
    rewriting_ = false;
    const std::size_t count_size = sizeof(std::uint32_t);
    if (list_body_.size() < count_size ||
        list_body_.size() != count_size + std::size_t{wire::get_u32(list_body_, 0)} * channels_list_entry_size) {
        failed_ = true;
        return;
    }
    std::vector<std::uint8_t> kept;
    for (std::size_t at = count_size; at < list_body_.size(); at += channels_list_entry_size)
        if (!hidden_channels_.test(list_body_[at])) kept.insert(kept.end(), {list_body_[at], list_body_[at + 1]});
    std::vector<std::uint8_t> body;
    wire::put_u32(body, static_cast<std::uint32_t>(kept.size() / channels_list_entry_size));
    body.insert(body.end(), kept.begin(), kept.end());
    std::vector<std::uint8_t> size;
    wire::put_u32(size, static_cast<std::uint32_t>(body.size()));
    std::copy(size.begin(), size.end(), header_.begin() + static_cast<std::ptrdiff_t>(type_at_ + type_to_size));
    to_client.insert(to_client.end(), header_.begin(), header_.begin() + static_cast<std::ptrdiff_t>(header_size_));
    to_client.insert(to_client.end(), body.begin(), body.end());
    list_body_.clear();
    list_body_.shrink_to_fit();
}

void MainChannelFilter::capture_session_id(std::span<const std::uint8_t> body_chunk) {
    const std::size_t count = std::min(init_prefix_.size() - init_fill_, body_chunk.size());
    std::copy_n(body_chunk.begin(), count, init_prefix_.begin() + static_cast<std::ptrdiff_t>(init_fill_));
    init_fill_ += count;
    if (init_fill_ == init_prefix_.size()) {
        session_id_ = wire::get_u32(init_prefix_, 0);
        capturing_ = false;
    }
}

}  // namespace vmgate::spice
