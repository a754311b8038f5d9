// qmp::Client fed arbitrary monitor bytes, issuing the gateway's two commands once ready (flag
// bit 0). Checks: no crash or sanitizer report; nothing is sent before a greeting; Ready comes at
// most once and before any reply; every reply answers a command issued and each only once; a
// failure is the last event and leaves the machine failed; chunking never changes the outcome.
#include "fuzz_util.hpp"
#include "qmp/client.hpp"

#include <algorithm>
#include <set>
#include <string>
#include <variant>

namespace {

using namespace vmgate::qmp;
using vmgate::fuzz::check;

constexpr std::uint8_t issue_commands = 1 << 0;  // behaviour flag (byte 0)

struct Trace {
    std::vector<std::string> events;  // kinds and ids; reply values are not compared (may be deep)
    std::vector<std::uint8_t> output;
    bool ready = false;
    bool failed = false;
    bool operator==(const Trace&) const = default;
};

std::string describe(const Event& event) {
    if (std::holds_alternative<Ready>(event)) return "ready";
    if (const auto* failed = std::get_if<Failed>(&event)) return "failed " + failed->detail;
    const Reply& reply = std::get<Reply>(event);
    const auto* error = std::get_if<CommandError>(&reply.outcome);
    return "reply " + std::to_string(reply.id) + (error ? " error " + error->error_class + " " + error->desc : "");
}

void check_event(const Event& event, Client& client, std::set<CommandId>& issued, Trace& trace, std::uint8_t flags) {
    check(!trace.failed);  // nothing after a failure
    if (std::holds_alternative<Ready>(event)) {
        check(!trace.ready && client.ready());
        trace.ready = true;
        if (flags & issue_commands) {
            issued.insert(client.command("getfd", {{"fdname", "vmgate-1"}}));
            issued.insert(client.command("add_client", {{"protocol", "spice"}, {"fdname", "vmgate-1"}}));
        }
    } else if (const auto* reply = std::get_if<Reply>(&event)) {
        check(trace.ready);
        check(issued.erase(reply->id) == 1);
    } else {
        trace.failed = true;
        check(client.failed() && !client.ready());
    }
}

Trace run(const std::vector<std::span<const std::uint8_t>>& chunks, std::uint8_t flags) {
    Client client;
    Trace trace;
    std::set<CommandId> issued;
    for (const auto& chunk : chunks) {
        client.feed(chunk);
        while (auto event = client.next_event()) {
            check_event(*event, client, issued, trace, flags);
            trace.events.push_back(describe(*event));
        }
        const auto out = client.take_output();
        trace.output.insert(trace.output.end(), out.begin(), out.end());
    }
    check(client.recent_async_events().size() <= Client::kept_async_events);
    return trace;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto input = vmgate::fuzz::split_input(data, size);
    const Trace whole = run({input.stream}, input.flags);
    const std::string capabilities = R"({"arguments":{},"execute":"qmp_capabilities","id":1})";
    if (!whole.output.empty())
        check(whole.output.size() > capabilities.size() && std::equal(capabilities.begin(), capabilities.end(), whole.output.begin()));
    check(run(vmgate::fuzz::chunk(input.stream, input.seed), input.flags) == whole);
    return 0;
}
