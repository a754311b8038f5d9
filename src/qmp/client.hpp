// The gateway as a client of QEMU's QMP monitor (QEMU docs/interop/qmp-spec): the greeting, the
// capabilities negotiation, commands with an id and their replies, asynchronous events skipped.
//
// Sans-I/O: feed() QEMU's bytes, send take_output() to QEMU, drain next_event(). QEMU sends one
// JSON object per line ("\r\n"; a bare "\n" is accepted too). Lines are parsed as next_event()
// asks for them, so a reply is read only after the command it answers was issued, however the
// bytes were split. Events:
//
//   Ready  → the greeting came and QEMU accepted qmp_capabilities; command() may be used.
//   Reply  → QEMU's answer to command(id): its "return" value or its "error" {class, desc}.
//   Failed → malformed JSON, a line over max_line_size, a message QMP does not have, a reply to
//            no command issued, or QEMU refusing qmp_capabilities; failed(). The connection is
//            of no further use: close it.
//
// Asynchronous events (SHUTDOWN, VNC_CONNECTED, ...) are not replies: their names are kept, the
// latest few, for log messages.
#pragma once

#include "core/input_buffer.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace vmgate::qmp {

using CommandId = std::uint64_t;

// QEMU's refusal of a command: {"error": {"class": "GenericError", "desc": "..."}}, both texts
// cut to printable ASCII.
struct CommandError {
    std::string error_class;
    std::string desc;
};

struct Ready {
    std::string qemu_version;  // "7.2.22", from the greeting; "" when it names none
};

struct Reply {
    CommandId id = 0;
    std::variant<nlohmann::json, CommandError> outcome;  // the "return" value, or the error
};

struct Failed {
    std::string detail;
};

using Event = std::variant<Ready, Reply, Failed>;

class Client {
public:
    // A bound on one message: QEMU's replies to what vmgate asks are a few hundred bytes.
    static constexpr std::size_t max_line_size = 1024 * 1024;
    static constexpr std::size_t kept_async_events = 8;

    Client() = default;

    void feed(std::span<const std::uint8_t> bytes);
    std::optional<Event> next_event();
    std::vector<std::uint8_t> take_output();

    // Queues {"execute": name, "arguments": arguments, "id": N} and returns N. Only once ready():
    // QEMU refuses every command before qmp_capabilities. Throws std::logic_error otherwise.
    CommandId command(std::string_view name, nlohmann::json arguments = nlohmann::json::object());

    bool ready() const { return state_ == State::ready; }
    bool failed() const { return state_ == State::failed; }
    // Names of the latest asynchronous events, oldest first.
    const std::deque<std::string>& recent_async_events() const { return async_events_; }

private:
    enum class State {
        greeting,     // waiting for {"QMP": {...}}
        negotiating,  // qmp_capabilities sent, waiting for its reply
        ready,
        failed,
    };

    std::optional<Event> handle_line(std::string_view raw);
    std::optional<Event> handle_greeting(const nlohmann::json& message, std::string_view line);
    std::optional<Event> handle_reply(nlohmann::json& message, std::string_view line);
    void note_async_event(const nlohmann::json& name);
    CommandId send(std::string_view name, nlohmann::json arguments);
    Failed fail(std::string detail);

    State state_ = State::greeting;
    core::InputBuffer input_;
    std::size_t scanned_ = 0;  // bytes of input_ already known to hold no newline
    std::vector<std::uint8_t> output_;
    CommandId next_id_ = 1;
    CommandId capabilities_id_ = 0;
    std::set<CommandId> pending_;
    std::string qemu_version_;
    std::deque<std::string> async_events_;
};

}  // namespace vmgate::qmp
