#include "qmp/client.hpp"

#include <algorithm>
#include <stdexcept>
#include <utility>

namespace vmgate::qmp {
namespace {

constexpr std::size_t shown_text_size = 80;    // of a bad message, in failure details
constexpr std::size_t max_event_name_size = 64;
constexpr std::size_t max_parser_message_size = 200;
constexpr std::size_t max_desc_size = 200;

// A prefix of QEMU's text for a failure detail: printable ASCII only, so a hostile or broken
// peer cannot put control characters into the log.
std::string printable(std::string_view text, std::size_t limit = shown_text_size) {
    std::string out;
    for (char c : text.substr(0, limit)) out += (c >= ' ' && c <= '~') ? c : '?';
    if (text.size() > limit) out += "...";
    return out;
}

std::string_view trim(std::string_view line) {
    constexpr std::string_view blanks = " \t\r";
    const auto first = line.find_first_not_of(blanks);
    if (first == std::string_view::npos) return {};
    return line.substr(first, line.find_last_not_of(blanks) - first + 1);
}

const nlohmann::json* find_object(const nlohmann::json& parent, const char* key) {
    const auto it = parent.find(key);
    return it != parent.end() && it->is_object() ? &*it : nullptr;
}

// {"QMP": {"version": {"qemu": {"major": 7, "minor": 2, "micro": 22}, ...}}} -> "7.2.22".
std::string version_text(const nlohmann::json& greeting) {
    const auto* version = find_object(greeting, "version");
    const auto* qemu = version ? find_object(*version, "qemu") : nullptr;
    if (!qemu) return "";
    std::string text;
    for (const char* part : {"major", "minor", "micro"}) {
        const auto it = qemu->find(part);
        if (it == qemu->end() || !it->is_number_unsigned()) return "";
        text += (text.empty() ? "" : ".") + std::to_string(it->get<std::uint64_t>());
    }
    return text;
}

// {"class": "...", "desc": "..."}; nullopt when either is missing or not a string. The texts
// end up in logs and in what clients are told, so they are kept printable and short.
std::optional<CommandError> command_error(const nlohmann::json& error) {
    if (!error.is_object()) return std::nullopt;
    const auto error_class = error.find("class");
    const auto desc = error.find("desc");
    if (error_class == error.end() || !error_class->is_string() || desc == error.end() || !desc->is_string())
        return std::nullopt;
    return CommandError{printable(error_class->get<std::string>(), max_event_name_size),
                        printable(desc->get<std::string>(), max_desc_size)};
}

}  // namespace

void Client::feed(std::span<const std::uint8_t> bytes) {
    if (failed()) return;
    input_.append(bytes);
}

// Lines are taken one at a time. A line past the bound fails the machine whether or not its
// end has arrived, so the outcome never depends on how QEMU's bytes were split.
std::optional<Event> Client::next_event() {
    while (!failed()) {
        const auto in = input_.view();
        const auto end = std::find(in.begin() + static_cast<std::ptrdiff_t>(scanned_), in.end(), '\n');
        const auto length = static_cast<std::size_t>(end - in.begin());
        if (length > max_line_size)
            return fail("QEMU sent a QMP message longer than " + std::to_string(max_line_size) + " bytes");
        if (end == in.end()) {
            scanned_ = length;
            return std::nullopt;
        }
        const std::string line(in.begin(), end);
        input_.consume(length + 1);
        scanned_ = 0;
        if (auto event = handle_line(line)) return event;
    }
    return std::nullopt;
}

std::vector<std::uint8_t> Client::take_output() { return std::exchange(output_, {}); }

CommandId Client::command(std::string_view name, nlohmann::json arguments) {
    if (!ready()) throw std::logic_error("QMP command before the capabilities negotiation finished");
    return send(name, std::move(arguments));
}

std::optional<Event> Client::handle_line(std::string_view raw) {
    const std::string_view line = trim(raw);
    if (line.empty()) return std::nullopt;
    nlohmann::json message;
    try {
        message = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {  // parse errors, numbers out of range
        return fail("malformed JSON from QEMU (" + printable(e.what(), max_parser_message_size) + ") in '" + printable(line) +
                    "'; QMP sends one JSON object per line (use -qmp, not -qmp-pretty)");
    }
    if (!message.is_object()) return fail("a QMP message must be a JSON object, got '" + printable(line) + "'");
    if (state_ == State::greeting) return handle_greeting(message, line);
    if (const auto event = message.find("event"); event != message.end()) {
        note_async_event(*event);
        return std::nullopt;
    }
    if (message.contains("return") || message.contains("error")) return handle_reply(message, line);
    return fail("not a QMP reply or event: '" + printable(line) + "'");
}

std::optional<Event> Client::handle_greeting(const nlohmann::json& message, std::string_view line) {
    const auto* greeting = find_object(message, "QMP");
    if (!greeting) return fail("expected QEMU's QMP greeting {\"QMP\": {...}}, got '" + printable(line) + "'");
    qemu_version_ = version_text(*greeting);
    capabilities_id_ = send("qmp_capabilities", nlohmann::json::object());
    state_ = State::negotiating;
    return std::nullopt;
}

std::optional<Event> Client::handle_reply(nlohmann::json& message, std::string_view line) {
    const auto id_it = message.find("id");
    if (id_it == message.end() || !id_it->is_number_unsigned() || !pending_.contains(id_it->get<CommandId>()))
        return fail("QEMU answered a command vmgate did not send: '" + printable(line) + "'");
    const CommandId id = id_it->get<CommandId>();
    pending_.erase(id);
    Reply reply{id, nlohmann::json()};
    if (const auto error = message.find("error"); error != message.end()) {
        auto refusal = command_error(*error);
        if (!refusal) return fail("malformed QMP error: '" + printable(line) + "'");
        reply.outcome = std::move(*refusal);
    } else {
        reply.outcome = std::move(message["return"]);  // moved, not copied: the value may be deep
    }
    if (state_ == State::ready) return reply;
    // Negotiating: the only command in flight is qmp_capabilities.
    if (const auto* refused = std::get_if<CommandError>(&reply.outcome))
        return fail("QEMU refused qmp_capabilities: " + refused->desc);
    state_ = State::ready;
    return Ready{qemu_version_};
}

void Client::note_async_event(const nlohmann::json& name) {
    async_events_.push_back(name.is_string() ? printable(name.get<std::string>(), max_event_name_size) : "?");
    if (async_events_.size() > kept_async_events) async_events_.pop_front();
}

CommandId Client::send(std::string_view name, nlohmann::json arguments) {
    const CommandId id = next_id_++;
    const nlohmann::json message = {{"execute", name}, {"arguments", std::move(arguments)}, {"id", id}};
    const std::string text = message.dump() + "\r\n";
    output_.insert(output_.end(), text.begin(), text.end());
    pending_.insert(id);
    return id;
}

Failed Client::fail(std::string detail) {
    state_ = State::failed;
    pending_.clear();
    input_.take_all();
    return Failed{std::move(detail)};
}

}  // namespace vmgate::qmp
