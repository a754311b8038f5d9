// DownstreamLink fed arbitrary client bytes, answered by a scripted gateway. Checks: no crash or
// sanitizer report, decode(encode(link)) == link, nothing after a Failed, a completed handshake
// ends in the OK result, and identical events, output and excess whether the stream arrives
// whole or in random chunks.
#include "fuzz_util.hpp"
#include "spice/downstream_link.hpp"

#include <algorithm>
#include <variant>

namespace {

using namespace vmgate::spice;
using vmgate::fuzz::check;

// Behaviour flags (byte 0 of the input). By default the gateway offers both mechanisms.
constexpr std::uint8_t no_ticket_offer = 1 << 0;
constexpr std::uint8_t no_sasl_offer = 1 << 1;
constexpr std::uint8_t no_auth_selection = 1 << 2;
constexpr std::uint8_t refuse = 1 << 3;
constexpr std::uint8_t deny = 1 << 4;
constexpr std::uint8_t sasl_fails = 1 << 5;
constexpr std::uint8_t long_sasl = 1 << 6;  // three SASL round trips instead of one
constexpr unsigned short_sasl_steps = 1;
constexpr unsigned long_sasl_steps = 3;

struct Trace {
    std::vector<std::size_t> events;  // variant indices
    std::vector<std::uint8_t> output;
    std::vector<std::uint8_t> excess;
    bool closed = false;
    bool done = false;
    bool operator==(const Trace&) const = default;
};

LinkReply reply_for(const LinkMess& link, std::uint8_t flags) {
    LinkReply reply;
    if (!(flags & no_auth_selection)) reply.common_caps.set(CommonCap::auth_selection);
    if (!(flags & no_ticket_offer)) reply.common_caps.set(CommonCap::auth_spice);
    if (!(flags & no_sasl_offer)) reply.common_caps.set(CommonCap::auth_sasl);
    reply.common_caps.set(CommonCap::mini_header);
    reply.channel_caps = link.channel_caps;
    return reply;
}

class Gateway {
public:
    explicit Gateway(std::uint8_t flags) : flags_(flags) {}

    void answer(DownstreamLink& link, const DownstreamEvent& event) {
        if (const auto* received = std::get_if<LinkReceived>(&event)) return on_link(link, received->link);
        if (std::holds_alternative<TicketReceived>(event)) return link.finish(result());
        if (const auto* start = std::get_if<SaslStart>(&event)) return on_sasl(link, start->client_data);
        if (const auto* step = std::get_if<SaslStep>(&event)) return on_sasl(link, step->client_data);
    }

private:
    void on_link(DownstreamLink& link, const LinkMess& mess) {
        const std::vector<std::uint8_t> encoded = encode_link_mess(mess);
        const auto round_trip = decode_link_mess(std::span(encoded).subspan(link_header_size));
        check(std::holds_alternative<LinkMess>(round_trip) && std::get<LinkMess>(round_trip) == mess);
        if (flags_ & refuse) return link.refuse_link(LinkError::need_secured);
        link.accept_link(reply_for(mess, flags_), "SCRAM-SHA-256,PLAIN");
    }

    void on_sasl(DownstreamLink& link, const std::optional<std::vector<std::uint8_t>>& data) {
        const unsigned steps = (flags_ & long_sasl) ? long_sasl_steps : short_sasl_steps;
        if (sasl_rounds_++ < steps) return link.sasl_continue(data);  // echo as the challenge
        if (flags_ & sasl_fails) return link.sasl_failure();
        link.sasl_success(data);
        link.finish(result());
    }

    LinkError result() const { return (flags_ & deny) ? LinkError::permission_denied : LinkError::ok; }

    std::uint8_t flags_;
    unsigned sasl_rounds_ = 0;
};

Trace run(const std::vector<std::span<const std::uint8_t>>& chunks, std::uint8_t flags) {
    DownstreamLink link;
    Gateway gateway(flags);
    Trace trace;
    bool failed = false;
    for (const auto& chunk : chunks) {
        link.feed(chunk);
        while (auto event = link.next_event()) {
            check(!failed);  // a Failed event is always the last one
            failed = std::holds_alternative<Failed>(*event);
            check(!failed || link.closed());
            trace.events.push_back(event->index());
            gateway.answer(link, *event);
        }
        const auto out = link.take_output();
        trace.output.insert(trace.output.end(), out.begin(), out.end());
        // A completed handshake always ends in the final link result OK (§2.1).
        check(!link.done() || (trace.output.size() >= 4 && std::all_of(trace.output.end() - 4, trace.output.end(),
                                                                         [](std::uint8_t b) { return b == 0; })));
    }
    trace.excess = link.take_excess();
    trace.closed = link.closed();
    trace.done = link.done();
    return trace;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto input = vmgate::fuzz::split_input(data, size);
    const Trace whole = run({input.stream}, input.flags);
    check(run(vmgate::fuzz::chunk(input.stream, input.seed), input.flags) == whole);
    return 0;
}
