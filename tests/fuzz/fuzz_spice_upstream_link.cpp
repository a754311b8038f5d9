// UpstreamLink fed arbitrary server bytes; the ticket goes out as soon as an OK reply arrives.
// Checks: no crash or sanitizer report, decode(encode(reply)) == reply, an OK handshake leaves
// exactly the bytes after reply + result as excess, and chunking never changes the outcome.
#include "fuzz_util.hpp"
#include "spice/upstream_link.hpp"
#include "spice/wire.hpp"

#include <variant>

namespace {

using namespace vmgate::spice;
using vmgate::fuzz::check;

constexpr std::uint8_t link_without_auth_selection = 1 << 0;  // behaviour flag (byte 0)
constexpr std::size_t result_size = sizeof(std::uint32_t);

struct Trace {
    std::vector<std::size_t> events;
    std::vector<std::uint8_t> output;
    std::vector<std::uint8_t> excess;
    bool closed = false;
    bool done = false;
    bool operator==(const Trace&) const = default;
};

LinkMess gateway_link(std::uint8_t flags) {
    LinkMess link;
    link.channel_type = static_cast<std::uint8_t>(ChannelType::main);
    if (!(flags & link_without_auth_selection)) link.common_caps.set(CommonCap::auth_selection);
    link.common_caps.set(CommonCap::mini_header);
    link.channel_caps.words = {0x0F};
    return link;
}

void check_round_trip(const LinkReply& reply) {
    const std::vector<std::uint8_t> encoded = encode_link_reply(reply);
    const auto decoded = decode_link_reply(std::span(encoded).subspan(link_header_size));
    check(std::holds_alternative<LinkReply>(decoded) && std::get<LinkReply>(decoded) == reply);
}

Trace run(const std::vector<std::span<const std::uint8_t>>& chunks, std::uint8_t flags) {
    UpstreamLink up(gateway_link(flags));
    const std::array<std::uint8_t, ticket_ciphertext_size> ticket{};
    Trace trace;
    for (const auto& chunk : chunks) {
        up.feed(chunk);
        while (auto event = up.next_event()) {
            trace.events.push_back(event->index());
            const auto* reply = std::get_if<ReplyReceived>(&*event);
            if (reply) check_round_trip(reply->reply);
            if (reply && !up.closed()) up.send_ticket(ticket);
        }
    }
    trace.output = up.take_output();
    trace.excess = up.take_excess();
    trace.closed = up.closed();
    trace.done = up.done();
    return trace;
}

// When the handshake completed, the server's final result was OK and the excess is precisely
// what followed that 4-byte result.
void check_excess(std::span<const std::uint8_t> stream, const Trace& trace) {
    if (!trace.done) return check(trace.excess.empty());
    const LinkHeader header = decode_link_header(stream.first<link_header_size>());
    const std::size_t consumed = link_header_size + header.size + result_size;
    check(wire::get_u32(stream, consumed - result_size) == static_cast<std::uint32_t>(LinkError::ok));
    const auto tail = stream.subspan(consumed);
    check(std::equal(tail.begin(), tail.end(), trace.excess.begin(), trace.excess.end()));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto input = vmgate::fuzz::split_input(data, size);
    const Trace whole = run({input.stream}, input.flags);
    check_excess(input.stream, whole);
    check(run(vmgate::fuzz::chunk(input.stream, input.seed), input.flags) == whole);
    return 0;
}
