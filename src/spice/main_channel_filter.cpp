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

MainChannelFilter::MainChannelFilter(bool mini_header)
    : header_size_(mini_header ? mini_header_size : full_header_size),
      type_at_(mini_header ? mini_type_at : full_type_at) {}

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
    if (dropping_) {
        dropped_.push_back(type);
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
    if (!dropping_) to_client.insert(to_client.end(), chunk.begin(), chunk.end());
    body_left_ -= count;
    return in.subspan(count);
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
