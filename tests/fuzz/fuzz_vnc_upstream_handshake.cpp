// UpstreamHandshake fed arbitrary server bytes, with or without a VNC password. Checks: no crash
// or sanitizer report, the first output is the 3.8 version, a completed handshake sent the shared
// ClientInit last and leaves exactly the bytes after ServerInit as excess, the ServerInit bytes
// are the stream's own (length-consistent, name within its bound), and chunking never changes
// the outcome.
#include "fuzz_util.hpp"
#include "vnc/upstream_handshake.hpp"

#include <algorithm>
#include <variant>

namespace {

using namespace vmgate::vnc;
using vmgate::fuzz::check;

constexpr std::uint8_t with_password = 1 << 0;  // behaviour flag (byte 0)
constexpr std::uint8_t shared_client_init = 1;

struct Trace {
    std::vector<std::size_t> events;
    std::vector<std::uint8_t> output;
    std::vector<std::uint8_t> server_init;
    std::vector<std::uint8_t> excess;
    bool closed = false;
    bool done = false;
    bool operator==(const Trace&) const = default;
};

Trace run(const std::vector<std::span<const std::uint8_t>>& chunks, std::uint8_t flags) {
    UpstreamHandshake up((flags & with_password) ? std::optional<std::string>("password") : std::nullopt);
    Trace trace;
    for (const auto& chunk : chunks) {
        up.feed(chunk);
        while (auto event = up.next_event()) {
            trace.events.push_back(event->index());
            if (const auto* received = std::get_if<ServerInitReceived>(&*event)) {
                const ServerInit& init = received->server_init;
                check(init.name.size() <= max_desktop_name_len);
                check(init.bytes.size() == server_init_header_size + init.name.size());
                check(std::equal(init.name.begin(), init.name.end(), init.bytes.begin() + server_init_header_size,
                                 [](char c, std::uint8_t b) { return static_cast<std::uint8_t>(c) == b; }));
                trace.server_init = init.bytes;
            }
        }
    }
    trace.output = up.take_output();
    trace.excess = up.take_excess();
    trace.closed = up.closed();
    trace.done = up.done();
    return trace;
}

void check_shape(std::span<const std::uint8_t> stream, const Trace& trace) {
    if (!trace.output.empty()) {
        check(std::equal(protocol_version_3_8.begin(), protocol_version_3_8.end(), trace.output.begin()));
    }
    if (!trace.done) return check(trace.excess.empty() && trace.server_init.empty());
    check(trace.output.back() == shared_client_init);
    // The stream ends with ServerInit followed by the excess, byte for byte.
    const std::size_t tail = trace.server_init.size() + trace.excess.size();
    check(stream.size() >= tail);
    const auto init_in_stream = stream.subspan(stream.size() - tail, trace.server_init.size());
    const auto excess_in_stream = stream.subspan(stream.size() - trace.excess.size());
    check(std::ranges::equal(init_in_stream, trace.server_init));
    check(std::ranges::equal(excess_in_stream, trace.excess));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto input = vmgate::fuzz::split_input(data, size);
    const Trace whole = run({input.stream}, input.flags);
    check_shape(input.stream, whole);
    check(run(vmgate::fuzz::chunk(input.stream, input.seed), input.flags) == whole);
    return 0;
}
