#include "qmp/client.hpp"

#include "byte_test_util.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace vmgate::qmp {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using test::ascii;
using test::Bytes;
using test::cat;

// What QEMU 7.2 sends, byte for byte (one JSON object and "\r\n" per message).
const std::string greeting =
    R"({"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18"}, "capabilities": ["oob"]}})"
    "\r\n";
const std::string capabilities_sent = R"({"arguments":{},"execute":"qmp_capabilities","id":1})" "\r\n";
const std::string capabilities_ok = R"({"return": {}, "id": 1})" "\r\n";

std::string line(std::string_view json) { return std::string(json) + "\r\n"; }

std::string describe(const Event& event) {
    if (const auto* ready = std::get_if<Ready>(&event)) return "ready " + ready->qemu_version;
    if (const auto* failed = std::get_if<Failed>(&event)) return "failed: " + failed->detail;
    const auto& reply = std::get<Reply>(event);
    if (const auto* error = std::get_if<CommandError>(&reply.outcome))
        return "reply " + std::to_string(reply.id) + " error " + error->error_class + ": " + error->desc;
    return "reply " + std::to_string(reply.id) + " return " + std::get<nlohmann::json>(reply.outcome).dump();
}

struct Outcome {
    std::vector<std::string> events;
    std::string output;
    std::vector<std::string> async_events;
    bool ready = false;
    bool failed = false;
    bool operator==(const Outcome&) const = default;
};

// Feeds the chunks, draining events after each; on Ready issues `commands` (name, arguments),
// as the gateway does.
Outcome run(const std::vector<Bytes>& chunks, const std::vector<std::pair<std::string, nlohmann::json>>& commands = {}) {
    Client client;
    Outcome out;
    for (const Bytes& chunk : chunks) {
        client.feed(chunk);
        while (auto event = client.next_event()) {
            out.events.push_back(describe(*event));
            if (!std::holds_alternative<Ready>(*event)) continue;
            for (const auto& [name, arguments] : commands) client.command(name, arguments);
        }
        const auto bytes = client.take_output();
        out.output.append(bytes.begin(), bytes.end());
    }
    out.async_events.assign(client.recent_async_events().begin(), client.recent_async_events().end());
    out.ready = client.ready();
    out.failed = client.failed();
    return out;
}

Outcome run_all_chunkings(const std::string& stream,
                          const std::vector<std::pair<std::string, nlohmann::json>>& commands = {}) {
    const Bytes bytes = ascii(stream);
    const Outcome whole = run({bytes}, commands);
    const auto chunkings = test::chunkings(bytes);
    for (std::size_t i = 0; i < chunkings.size(); ++i) EXPECT_EQ(run(chunkings[i], commands), whole) << "chunking #" << i;
    return whole;
}

const std::vector<std::pair<std::string, nlohmann::json>> getfd_then_add_client = {
    {"getfd", {{"fdname", "vmgate-1"}}},
    {"add_client", {{"protocol", "vnc"}, {"fdname", "vmgate-1"}, {"skipauth", true}, {"tls", false}}},
};

// ---------------------------------------------------------------- happy paths

TEST(QmpClient, GreetingThenCapabilitiesThenReady) {
    const Outcome out = run_all_chunkings(greeting + capabilities_ok);
    EXPECT_EQ(out.events, std::vector<std::string>{"ready 7.2.22"});
    EXPECT_EQ(out.output, capabilities_sent);
    EXPECT_TRUE(out.ready);
    EXPECT_FALSE(out.failed);
}

TEST(QmpClient, NothingIsSentBeforeTheGreeting) {
    const Outcome out = run_all_chunkings(greeting.substr(0, greeting.size() - 1));  // no "\n" yet
    EXPECT_TRUE(out.events.empty());
    EXPECT_EQ(out.output, "");
    EXPECT_FALSE(out.ready || out.failed);
}

TEST(QmpClient, CommandsCarryIdsAndRepliesAreMatched) {
    const Outcome out = run_all_chunkings(greeting + capabilities_ok + line(R"({"return": {}, "id": 2})") +
                                              line(R"({"return": {"x": [1, 2]}, "id": 3})"),
                                          getfd_then_add_client);
    EXPECT_EQ(out.events, (std::vector<std::string>{"ready 7.2.22", "reply 2 return {}", R"(reply 3 return {"x":[1,2]})"}));
    EXPECT_EQ(out.output, capabilities_sent + line(R"({"arguments":{"fdname":"vmgate-1"},"execute":"getfd","id":2})") +
                              line(R"({"arguments":{"fdname":"vmgate-1","protocol":"vnc","skipauth":true,"tls":false},)"
                                   R"("execute":"add_client","id":3})"));
}

TEST(QmpClient, RepliesMayComeInAnyOrder) {
    const Outcome out = run(
        {ascii(greeting + capabilities_ok + line(R"({"return": {}, "id": 3})") + line(R"({"return": {}, "id": 2})"))},
        getfd_then_add_client);
    EXPECT_EQ(out.events, (std::vector<std::string>{"ready 7.2.22", "reply 3 return {}", "reply 2 return {}"}));
}

TEST(QmpClient, ErrorRepliesCarryClassAndDesc) {
    const Outcome out = run_all_chunkings(
        greeting + capabilities_ok +
            line(R"({"error": {"class": "GenericError", "desc": "No file descriptor supplied via SCM_RIGHTS"}, "id": 2})") +
            line(R"({"error": {"class": "GenericError", "desc": "SPICE is not in use"}, "id": 3})"),
        getfd_then_add_client);
    EXPECT_EQ(out.events, (std::vector<std::string>{"ready 7.2.22",
                                                    "reply 2 error GenericError: No file descriptor supplied via SCM_RIGHTS",
                                                    "reply 3 error GenericError: SPICE is not in use"}));
    EXPECT_TRUE(out.ready);  // a refused command leaves the connection usable
}

TEST(QmpClient, ErrorTextsArePrintableAndShort) {
    const std::string long_desc(500, 'd');
    const Outcome out = run({ascii(greeting + capabilities_ok +
                                   line(R"({"error": {"class": "Generic\nError", "desc": "a\u0007b)" + long_desc + R"("}, "id": 2})"))},
                            {{"getfd", {{"fdname", "a"}}}});
    ASSERT_EQ(out.events.size(), 2u);
    EXPECT_EQ(out.events[1], "reply 2 error Generic?Error: a?b" + std::string(197, 'd') + "...");
}

TEST(QmpClient, AsyncEventsAnywhereAreSkippedAndTheLatestKept) {
    const std::string event = line(R"({"timestamp": {"seconds": 1, "microseconds": 2}, "event": "VNC_CONNECTED", "data": {}})");
    const Outcome out = run_all_chunkings(greeting + event + capabilities_ok + event +
                                              line(R"({"event": "RESET", "data": {"guest": true}})") +
                                              line(R"({"return": {}, "id": 2})") + line(R"({"event": "SHUTDOWN"})"),
                                          {{"getfd", {{"fdname", "a"}}}});
    EXPECT_EQ(out.events, (std::vector<std::string>{"ready 7.2.22", "reply 2 return {}"}));
    EXPECT_EQ(out.async_events, (std::vector<std::string>{"VNC_CONNECTED", "VNC_CONNECTED", "RESET", "SHUTDOWN"}));
}

TEST(QmpClient, OnlyTheLatestAsyncEventsAreKept) {
    std::string stream = greeting + capabilities_ok;
    for (int i = 0; i < 20; ++i) stream += line(R"({"event": "E)" + std::to_string(i) + R"("})");
    const Outcome out = run({ascii(stream)});
    ASSERT_EQ(out.async_events.size(), Client::kept_async_events);
    EXPECT_EQ(out.async_events.front(), "E12");
    EXPECT_EQ(out.async_events.back(), "E19");
}

TEST(QmpClient, BareNewlinesBlankLinesAndSpacesAreAccepted) {
    const Outcome out = run_all_chunkings(
        "\n \r\n" + greeting.substr(0, greeting.size() - 2) + "\n\n  {\"return\": {}, \"id\": 1}  \n");
    EXPECT_EQ(out.events, std::vector<std::string>{"ready 7.2.22"});
}

TEST(QmpClient, AGreetingWithoutVersionStillWorks) {
    const Outcome out = run_all_chunkings(line(R"({"QMP": {"capabilities": []}})") + capabilities_ok);
    EXPECT_EQ(out.events, std::vector<std::string>{"ready "});
}

// The gateway drains events after each read: a reply already in the input when the command is
// issued is still matched, because lines are read only when next_event() asks.
TEST(QmpClient, AReplyBufferedBeforeItsCommandIsMatched) {
    Client client;
    client.feed(ascii(greeting + capabilities_ok + line(R"({"return": {}, "id": 2})")));
    auto first = client.next_event();
    ASSERT_TRUE(first && std::holds_alternative<Ready>(*first));
    EXPECT_EQ(client.command("getfd", {{"fdname", "x"}}), 2u);
    auto second = client.next_event();
    ASSERT_TRUE(second);
    EXPECT_EQ(describe(*second), "reply 2 return {}");
}

TEST(QmpClient, ALineOfExactlyTheBoundIsAccepted) {
    std::string reply = R"({"return": {}, "id": 1})";
    reply.append(Client::max_line_size - reply.size(), ' ');
    const Outcome out = run({ascii(greeting + reply + "\n")});
    EXPECT_EQ(out.events, std::vector<std::string>{"ready 7.2.22"});
}

// ---------------------------------------------------------------- failures

void expect_failure(const std::string& stream, const std::string& detail_part,
                    const std::vector<std::pair<std::string, nlohmann::json>>& commands = {}) {
    const Outcome out = run_all_chunkings(stream, commands);
    ASSERT_FALSE(out.events.empty()) << stream;
    EXPECT_THAT(out.events.back(), StartsWith("failed: "));
    EXPECT_THAT(out.events.back(), HasSubstr(detail_part));
    EXPECT_TRUE(out.failed);
    EXPECT_FALSE(out.ready);
}

TEST(QmpClient, MalformedJsonFails) {
    expect_failure(greeting + capabilities_ok + line(R"({"return": {}, "id": )"), "malformed JSON from QEMU");
    expect_failure(line("{\"QMP\": {}"), "use -qmp, not -qmp-pretty");
    expect_failure(line("\x01\x02garbage"), "in '??garbage'");
}

TEST(QmpClient, PrettyPrintedQmpFailsWithAHint) {
    expect_failure("{\r\n    \"QMP\": {\r\n    }\r\n}\r\n", "-qmp-pretty");
}

TEST(QmpClient, NonObjectsFail) {
    expect_failure(line("[1, 2]"), "must be a JSON object, got '[1, 2]'");
    expect_failure(greeting + line("42"), "must be a JSON object");
}

TEST(QmpClient, TheFirstMessageMustBeTheGreeting) {
    expect_failure(capabilities_ok, "expected QEMU's QMP greeting");
    expect_failure(line(R"({"event": "RESET"})"), "expected QEMU's QMP greeting");
    expect_failure(line(R"({"QMP": 1})"), "expected QEMU's QMP greeting");
}

TEST(QmpClient, RefusedCapabilitiesFail) {
    expect_failure(greeting + line(R"({"error": {"class": "CommandNotFound", "desc": "nope"}, "id": 1})"),
                   "QEMU refused qmp_capabilities: nope");
}

TEST(QmpClient, RepliesToNoCommandFail) {
    expect_failure(greeting + line(R"({"return": {}, "id": 7})"), "a command vmgate did not send");
    expect_failure(greeting + line(R"({"return": {}})"), "a command vmgate did not send");
    expect_failure(greeting + line(R"({"return": {}, "id": "1"})"), "a command vmgate did not send");
    // Each id is answered once.
    expect_failure(greeting + capabilities_ok + capabilities_ok, "a command vmgate did not send");
    expect_failure(greeting + capabilities_ok + line(R"({"return": {}, "id": 2})") + line(R"({"return": {}, "id": 2})"),
                   "a command vmgate did not send", {{"getfd", {{"fdname", "a"}}}});
}

TEST(QmpClient, MalformedErrorsFail) {
    expect_failure(greeting + line(R"({"error": "bad", "id": 1})"), "malformed QMP error");
    expect_failure(greeting + line(R"({"error": {"class": "GenericError"}, "id": 1})"), "malformed QMP error");
    expect_failure(greeting + line(R"({"error": {"class": "GenericError", "desc": 5}, "id": 1})"), "malformed QMP error");
}

TEST(QmpClient, UnknownMessagesFail) {
    expect_failure(greeting + capabilities_ok + line(R"({"hello": 1})"), "not a QMP reply or event: '{\"hello\": 1}'");
    expect_failure(greeting + capabilities_ok + greeting, "not a QMP reply or event");
}

TEST(QmpClient, OverlongLinesFailWithOrWithoutTheirEnd) {
    const std::string long_line = "{\"event\": \"" + std::string(Client::max_line_size, 'x') + "\"}";
    const std::string detail = "failed: QEMU sent a QMP message longer than 1048576 bytes";
    const Outcome complete = run({ascii(greeting + capabilities_ok + long_line + "\r\n")});
    EXPECT_EQ(complete.events, (std::vector<std::string>{"ready 7.2.22", detail}));
    const Outcome partial = run({ascii(greeting + capabilities_ok + long_line)});
    EXPECT_EQ(partial.events, complete.events);
    // Fed in pieces, as a socket delivers it.
    std::vector<Bytes> pieces{ascii(greeting + capabilities_ok)};
    for (std::size_t at = 0; at < long_line.size(); at += 4096) pieces.push_back(ascii(long_line.substr(at, 4096)));
    EXPECT_EQ(run(pieces).events, complete.events);
}

TEST(QmpClient, NothingHappensAfterAFailure) {
    Client client;
    client.feed(ascii(line("nonsense")));
    ASSERT_TRUE(client.next_event());
    EXPECT_FALSE(client.next_event());
    client.feed(ascii(greeting + capabilities_ok));
    EXPECT_FALSE(client.next_event());
    EXPECT_TRUE(client.take_output().empty());
    EXPECT_TRUE(client.failed());
}

TEST(QmpClient, CommandsBeforeReadyAreALogicError) {
    Client client;
    EXPECT_THROW(client.command("getfd"), std::logic_error);
    client.feed(ascii(greeting));
    EXPECT_FALSE(client.next_event());
    EXPECT_THROW(client.command("getfd"), std::logic_error);
}

// Parsing, moving and destroying nlohmann values is iterative; nothing here may copy or dump one.
TEST(QmpClient, DeeplyNestedValuesDoNotExhaustTheStack) {
    const std::size_t depth = 200000;
    const std::string nested = std::string(depth, '[') + std::string(depth, ']');
    Client client;
    client.feed(ascii(greeting + capabilities_ok + line(R"({"return": )" + nested + R"(, "id": 2})") +
                      line(R"({"x": )" + nested + "}")));
    ASSERT_TRUE(client.next_event());
    client.command("query-x");
    auto reply = client.next_event();
    ASSERT_TRUE(reply && std::holds_alternative<Reply>(*reply));
    EXPECT_TRUE(std::get<nlohmann::json>(std::get<Reply>(*reply).outcome).is_array());
    auto failure = client.next_event();
    ASSERT_TRUE(failure && std::holds_alternative<Failed>(*failure));
    EXPECT_THAT(std::get<Failed>(*failure).detail, StartsWith("not a QMP reply or event"));
}

}  // namespace
}  // namespace vmgate::qmp
