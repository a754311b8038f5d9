// MainChannelFilter fed arbitrary server→client bytes, with or without hidden channels. Checks:
// no crash or sanitizer report, output never larger than input, only migration types reported
// dropped, and chunking never changes output, session id, dropped list or failure.
#include "fuzz_util.hpp"
#include "spice/main_channel_filter.hpp"

#include <algorithm>

namespace {

using namespace vmgate::spice;
using vmgate::fuzz::check;

constexpr std::uint8_t full_header = 1 << 0;     // behaviour flags (byte 0)
constexpr std::uint8_t hide_channels = 1 << 1;   // hide inputs and usbredir from CHANNELS_LIST

struct Trace {
    std::vector<std::uint8_t> output;
    std::optional<std::uint32_t> session_id;
    std::vector<std::uint16_t> dropped;
    bool failed = false;
    bool operator==(const Trace&) const = default;
};

bool is_migration(std::uint16_t type) {
    const auto t = static_cast<MainMsg>(type);
    return t == MainMsg::migrate_begin || t == MainMsg::migrate_begin_seamless || t == MainMsg::migrate_switch_host;
}

Trace run(const std::vector<std::span<const std::uint8_t>>& chunks, std::uint8_t flags) {
    std::bitset<256> hidden;
    if (flags & hide_channels) {
        hidden.set(static_cast<std::uint8_t>(ChannelType::inputs));
        hidden.set(static_cast<std::uint8_t>(ChannelType::usbredir));
    }
    MainChannelFilter filter(!(flags & full_header), hidden);
    Trace trace;
    for (const auto& chunk : chunks) {
        filter.feed(chunk, trace.output);
        const auto dropped = filter.take_dropped();
        trace.dropped.insert(trace.dropped.end(), dropped.begin(), dropped.end());
    }
    trace.session_id = filter.session_id();
    trace.failed = filter.failed();
    return trace;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto input = vmgate::fuzz::split_input(data, size);
    const Trace whole = run({input.stream}, input.flags);
    check(whole.output.size() <= input.stream.size());
    check(std::ranges::all_of(whole.dropped, is_migration));
    check(run(vmgate::fuzz::chunk(input.stream, input.seed), input.flags) == whole);
    return 0;
}
