#include "vnc/upstream_handshake.hpp"

#include "vnc/vnc_auth.hpp"

#include <algorithm>
#include <utility>

namespace vmgate::vnc {
namespace {

constexpr std::size_t u32_size = sizeof(std::uint32_t);
constexpr unsigned supported_major = 3;
constexpr unsigned supported_minor = 8;
constexpr std::uint8_t client_init_shared = 1;
// §5.1 ServerInit field offsets.
constexpr std::size_t width_offset = 0;
constexpr std::size_t height_offset = 2;
constexpr std::size_t pixel_format_offset = 4;
constexpr std::size_t name_length_offset = 20;

std::string security_type_list(std::span<const std::uint8_t> types) {
    std::string text;
    for (std::uint8_t t : types) {
        if (!text.empty()) text += ',';
        text += std::to_string(t);
    }
    return text;
}

}  // namespace

UpstreamHandshake::UpstreamHandshake(std::optional<std::string> password) : password_(std::move(password)) {}

void UpstreamHandshake::feed(std::span<const std::uint8_t> bytes) {
    if (closed()) return;
    input_.append(bytes);
    while (step()) {
    }
}

std::optional<UpstreamEvent> UpstreamHandshake::next_event() {
    if (events_.empty()) return std::nullopt;
    UpstreamEvent event = std::move(events_.front());
    events_.pop_front();
    return event;
}

std::vector<std::uint8_t> UpstreamHandshake::take_output() { return std::exchange(output_, {}); }

std::vector<std::uint8_t> UpstreamHandshake::take_excess() {
    if (!done()) return {};
    return input_.take_all();
}

bool UpstreamHandshake::step() {
    switch (state_) {
    case State::version: return read_version();
    case State::security_types: return read_security_types();
    case State::failure_reason: return read_failure_reason();
    case State::vnc_challenge: return read_vnc_challenge();
    case State::security_result: return read_security_result();
    case State::server_init: return read_server_init();
    case State::done:
    case State::closed: return false;
    }
    return false;
}

// §1.1: QEMU always sends 3.8. A later minor is answered with 3.8 (the client picks the version,
// at most the server's); anything older lacks the failure reasons the gateway relies on.
bool UpstreamHandshake::read_version() {
    const auto in = input_.view();
    const auto head = in.first(std::min(in.size(), protocol_version_size));
    const std::size_t matched = protocol_version_match_length(head);
    if (matched < head.size()) {
        fail("upstream did not send an RFB version: '" + printable(head.first(matched + 1)) + "'");
        return false;
    }
    if (head.size() < protocol_version_size) return false;
    const ProtocolVersion version = *parse_protocol_version(head);
    input_.consume(protocol_version_size);
    if (version.major != supported_major || version.minor < supported_minor) {
        fail("upstream speaks RFB " + std::to_string(version.major) + "." + std::to_string(version.minor) +
             "; vmgate needs RFB 3.8");
        return false;
    }
    wire::put_text(output_, protocol_version_3_8);
    state_ = State::security_types;
    return true;
}

bool UpstreamHandshake::read_security_types() {
    if (input_.empty()) return false;
    const std::size_t count = input_.view()[0];
    if (count == 0) {  // §1.2: no types, a reason follows
        input_.consume(1);
        refusal_ = "connection";
        state_ = State::failure_reason;
        return true;
    }
    if (input_.size() < 1 + count) return false;
    const auto types = input_.view().subspan(1, count);
    const auto offers = [&](SecurityType t) {
        return std::ranges::find(types, static_cast<std::uint8_t>(t)) != types.end();
    };
    const bool none = offers(SecurityType::none);
    const bool vnc_auth = offers(SecurityType::vnc_auth) && password_.has_value();
    const std::string offered = security_type_list(types);
    input_.consume(1 + count);  // types is invalid from here on
    if (none) {
        choose(SecurityType::none);
    } else if (vnc_auth) {
        choose(SecurityType::vnc_auth);
    } else {
        // §5.2 step 4: 19/20 mean QEMU has TLS or SASL configured, which vmgate does not speak
        // upstream; 2 without a password is a configuration mismatch too.
        fail("upstream offers security types " + offered + "; vmgate needs None (1), or VNC auth (2) "
             "with a configured password");
        return false;
    }
    return true;
}

void UpstreamHandshake::choose(SecurityType type) {
    wire::put_u8(output_, static_cast<std::uint8_t>(type));
    state_ = type == SecurityType::vnc_auth ? State::vnc_challenge : State::security_result;
}

bool UpstreamHandshake::read_failure_reason() {
    if (input_.size() < u32_size) return false;
    const std::uint32_t length = wire::get_u32(input_.view(), 0);
    if (length > max_reason_len) {
        fail("upstream refused the " + refusal_ + " with a reason of " + std::to_string(length) + " bytes");
        return false;
    }
    if (input_.size() < u32_size + length) return false;
    auto reason = input_.view().subspan(u32_size, length);
    // §1.3: QEMU counts a trailing NUL in the length.
    while (!reason.empty() && reason.back() == 0) reason = reason.first(reason.size() - 1);
    fail("upstream refused the " + refusal_ + ": " + printable(reason));
    return false;
}

bool UpstreamHandshake::read_vnc_challenge() {
    if (input_.size() < vnc_auth_size) return false;
    VncChallenge challenge{};
    std::ranges::copy(input_.view().first(vnc_auth_size), challenge.begin());
    input_.consume(vnc_auth_size);
    wire::put_bytes(output_, vnc_auth_response(*password_, challenge));
    state_ = State::security_result;
    return true;
}

bool UpstreamHandshake::read_security_result() {
    if (input_.size() < u32_size) return false;
    const std::uint32_t status = wire::get_u32(input_.view(), 0);
    input_.consume(u32_size);
    if (status != static_cast<std::uint32_t>(SecurityResult::ok)) {  // §1.3: 3.8 explains every failure
        refusal_ = "authentication";
        state_ = State::failure_reason;
        return true;
    }
    wire::put_u8(output_, client_init_shared);
    state_ = State::server_init;
    return true;
}

bool UpstreamHandshake::read_server_init() {
    if (input_.size() < server_init_header_size) return false;
    const auto in = input_.view();
    const std::uint32_t name_length = wire::get_u32(in, name_length_offset);
    if (name_length > max_desktop_name_len) {
        fail("upstream desktop name length " + std::to_string(name_length) + " exceeds " +
             std::to_string(max_desktop_name_len));
        return false;
    }
    const std::size_t size = server_init_header_size + name_length;
    if (in.size() < size) return false;
    ServerInit init;
    init.width = wire::get_u16(in, width_offset);
    init.height = wire::get_u16(in, height_offset);
    std::ranges::copy(in.subspan(pixel_format_offset, pixel_format_size), init.pixel_format.begin());
    const auto name = in.subspan(server_init_header_size, name_length);
    init.name.assign(name.begin(), name.end());
    init.bytes.assign(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(size));
    input_.consume(size);
    events_.push_back(ServerInitReceived{std::move(init)});
    // §5.1: QEMU sends nothing more until asked; anything that did follow stays for take_excess().
    state_ = State::done;
    return false;
}

void UpstreamHandshake::fail(std::string detail) {
    events_.push_back(Failed{std::move(detail)});
    state_ = State::closed;
}

}  // namespace vmgate::vnc
