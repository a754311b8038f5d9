// ClientMessageFilter fed arbitrary client bytes, view-only or not. A byte-by-byte run without
// dropping cuts the stream into the messages the filter passes (each byte completes at most one).
// Checks: no crash or sanitizer report; those messages are the stream's prefix; input is reported
// exactly for key, pointer, clipboard, xvp and QEMU extended key messages; a view-only run
// forwards exactly the messages that are not key, pointer, clipboard, xvp, SetDesktopSize or
// QEMU extended key events, and counts the others; at most one partial message is held; nothing
// is forwarded after failure; and chunking never changes output, failure, error, drop count or
// whether input was seen.
#include "fuzz_util.hpp"
#include "vnc/client_message_filter.hpp"

#include <algorithm>
#include <utility>

namespace {

using namespace vmgate::vnc;
using vmgate::fuzz::check;

constexpr std::uint8_t drop_input = 1 << 0;  // behaviour flag (byte 0)

using Bytes = std::vector<std::uint8_t>;

constexpr std::uint8_t key_event[] = {4, 1, 0, 0, 0, 0, 0, 'a'};

struct Trace {
    Bytes output;
    bool failed = false;
    std::string error;
    std::uint64_t dropped = 0;
    bool input_seen = false;
    bool operator==(const Trace&) const = default;
};

// The harness's own reading of §5.2 roles, independent of the filter's table.
bool is_input(std::span<const std::uint8_t> message) {
    switch (static_cast<ClientMessageType>(message[0])) {
    case ClientMessageType::key_event:
    case ClientMessageType::pointer_event:
    case ClientMessageType::client_cut_text:
    case ClientMessageType::xvp: return true;
    case ClientMessageType::qemu:
        return static_cast<QemuClientSubtype>(message[1]) == QemuClientSubtype::extended_key_event;
    default: return false;
    }
}

bool view_only_drops(std::span<const std::uint8_t> message) {
    return is_input(message) || static_cast<ClientMessageType>(message[0]) == ClientMessageType::set_desktop_size;
}

Trace run(const std::vector<std::span<const std::uint8_t>>& chunks, std::uint8_t flags) {
    ClientMessageFilter filter({.drop_input = (flags & drop_input) != 0});
    Trace trace;
    for (const auto& chunk : chunks) {
        filter.feed(chunk, trace.output);
        trace.input_seen = filter.take_input_seen() || trace.input_seen;
    }
    // Nothing more once failed, whatever follows.
    const std::size_t before = trace.output.size();
    if (filter.failed()) filter.feed(std::span(key_event), trace.output);
    check(trace.output.size() == before);
    trace.failed = filter.failed();
    trace.error = filter.error();
    check(trace.failed != trace.error.empty());
    trace.dropped = filter.dropped_messages();
    return trace;
}

// The stream as a byte-by-byte run without dropping cuts it.
struct Reference {
    std::vector<std::span<const std::uint8_t>> messages;
    bool failed = false;
    std::string error;
};

// Each message is checked against the stream and for input as it completes.
Reference reference_of(std::span<const std::uint8_t> stream) {
    ClientMessageFilter filter({});
    std::vector<std::span<const std::uint8_t>> messages;
    Bytes output;
    std::size_t start = 0;
    for (std::size_t at = 0; at < stream.size(); ++at) {
        const bool failed_before = filter.failed();
        const std::size_t before = output.size();
        filter.feed(stream.subspan(at, 1), output);
        const bool grew = output.size() > before;
        check(!(failed_before && grew));
        if (!grew) {
            check(!filter.take_input_seen());
            continue;
        }
        const auto message = stream.subspan(start, at + 1 - start);
        check(output.size() == at + 1 && std::ranges::equal(std::span(output).subspan(start), message));
        check(filter.take_input_seen() == is_input(message));
        messages.push_back(message);
        start = at + 1;
    }
    // Only one partial message is held: the rest past the last whole one.
    check(filter.failed() || stream.size() - start < max_client_message_size);
    return {std::move(messages), filter.failed(), filter.error()};
}

void check_filtered(const Reference& reference, const Trace& trace, bool view_only) {
    check(trace.failed == reference.failed && trace.error == reference.error);
    Bytes expected;
    std::uint64_t dropped = 0;
    bool input = false;
    for (const auto& message : reference.messages) {
        input = input || is_input(message);
        if (view_only && view_only_drops(message)) {
            ++dropped;
        } else {
            expected.insert(expected.end(), message.begin(), message.end());
        }
    }
    check(trace.output == expected);
    check(trace.dropped == dropped);
    check(trace.input_seen == input);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto input = vmgate::fuzz::split_input(data, size);
    const Trace whole = run({input.stream}, input.flags);
    check_filtered(reference_of(input.stream), whole, (input.flags & drop_input) != 0);
    check(run(vmgate::fuzz::chunk(input.stream, input.seed), input.flags) == whole);
    return 0;
}
