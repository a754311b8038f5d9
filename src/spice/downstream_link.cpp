#include "spice/downstream_link.hpp"

#include "spice/sasl_codec.hpp"

#include <algorithm>
#include <stdexcept>
#include <utility>

namespace vmgate::spice {
namespace {

constexpr std::size_t u32_size = sizeof(std::uint32_t);

// Client-controlled text goes into log details: keep it printable ASCII.
std::string printable(std::string_view bytes) {
    constexpr std::uint8_t first_printable = 0x20;
    constexpr std::uint8_t last_printable = 0x7e;
    std::string text;
    for (std::uint8_t b : bytes) {
        text.push_back(b >= first_printable && b <= last_printable ? static_cast<char>(b) : '?');
    }
    return text;
}

}  // namespace

void DownstreamLink::feed(std::span<const std::uint8_t> bytes) {
    if (closed()) return;
    input_.append(bytes);
    pump();
}

std::optional<DownstreamEvent> DownstreamLink::next_event() {
    if (events_.empty()) return std::nullopt;
    DownstreamEvent event = std::move(events_.front());
    events_.pop_front();
    return event;
}

std::vector<std::uint8_t> DownstreamLink::take_output() { return std::exchange(output_, {}); }

std::vector<std::uint8_t> DownstreamLink::take_excess() {
    if (!done()) return {};
    return input_.take_all();
}

void DownstreamLink::accept_link(const LinkReply& reply, std::string_view sasl_mech_list) {
    if (closed()) return;
    require_state(State::await_accept, "accept_link");
    mechlist_.clear();  // empty exactly when SASL is not offered
    if (reply.common_caps.has(CommonCap::auth_sasl)) {
        auto framed = format_sasl_mechlist(sasl_mech_list);
        if (!framed) throw std::invalid_argument("AUTH_SASL advertised with an unusable SASL mechanism list");
        mechlist_ = std::move(*framed);
    }
    offers_ticket_ = reply.common_caps.has(CommonCap::auth_spice);
    wire::put_bytes(output_, encode_link_reply(reply));
    if (reply.error != LinkError::ok) {
        state_ = State::closed;
        return;
    }
    choose_auth(reply);
    pump();
}

void DownstreamLink::refuse_link(LinkError error) {
    if (closed()) return;
    if (done()) throw std::logic_error("refuse_link called after the handshake completed");
    if (error == LinkError::ok) throw std::invalid_argument("refuse_link needs a non-ok error");
    wire::put_bytes(output_, encode_link_error(error));
    state_ = State::closed;
}

void DownstreamLink::sasl_continue(std::optional<std::vector<std::uint8_t>> server_data) {
    if (closed()) return;
    require_state(State::await_sasl, "sasl_continue");
    put_sasl_server_data(output_, server_data, false);
    state_ = State::sasl_step;
    pump();
}

void DownstreamLink::sasl_success(std::optional<std::vector<std::uint8_t>> server_data) {
    if (closed()) return;
    require_state(State::await_sasl, "sasl_success");
    put_sasl_server_data(output_, server_data, true);
    // §5.1: the SASL layer's own OK, read by the client before the link result.
    wire::put_u32(output_, static_cast<std::uint32_t>(LinkError::ok));
    state_ = State::await_finish;
    pump();
}

void DownstreamLink::sasl_failure() {
    if (closed()) return;
    require_state(State::await_sasl, "sasl_failure");
    state_ = State::closed;
}

void DownstreamLink::finish(LinkError result) {
    if (closed()) return;
    require_state(State::await_finish, "finish");
    wire::put_u32(output_, static_cast<std::uint32_t>(result));
    state_ = result == LinkError::ok ? State::done : State::closed;
}

void DownstreamLink::pump() {
    while (step()) {
    }
    // Bytes that pile up while the machine waits for the gateway are not yet interpretable;
    // bound them rather than trust the client (design.md, security invariant 3).
    if (!done() && !closed() && input_.size() > max_handshake_buffer) {
        fail({LinkError::invalid_data, "client sent more than " +
                                           std::to_string(max_handshake_buffer) +
                                           " unparsed bytes during the handshake"});
    }
}

bool DownstreamLink::step() {
    switch (state_) {
    case State::link_header: return read_link_header();
    case State::link_body: return read_link_body();
    case State::auth_mechanism: return read_auth_mechanism();
    case State::ticket: return read_ticket();
    case State::sasl_mechname: return read_sasl_mechname();
    case State::sasl_start:
    case State::sasl_step: return read_sasl_data();
    case State::await_accept:
    case State::await_sasl:
    case State::await_finish:
    case State::done:
    case State::closed: return false;
    }
    return false;
}

bool DownstreamLink::read_link_header() {
    const auto in = input_.view();
    // §2.6 step 1: spice-server judges the magic on its own, so garbage (an HTTP request, a TLS
    // ClientHello on the plain port) is refused without waiting for 16 bytes.
    if (in.size() >= link_magic.size() && !is_link_magic(in.first(link_magic.size()))) {
        fail({LinkError::invalid_magic, "link magic is not REDQ"});
        return false;
    }
    if (in.size() < link_header_size) return false;
    const LinkHeader header = decode_link_header(in.first<link_header_size>());
    if (auto failed = check_link_header(header, link_mess_size)) {
        // §2.5: spice-server answers a wrong major version only when it is non-zero.
        if (header.major == 0) {
            events_.push_back(std::move(*failed));
            state_ = State::closed;
        } else {
            fail(std::move(*failed));
        }
        return false;
    }
    body_size_ = header.size;
    input_.consume(link_header_size);
    state_ = State::link_body;
    return true;
}

bool DownstreamLink::read_link_body() {
    if (input_.size() < body_size_) return false;
    Decoded<LinkMess> decoded = decode_link_mess(input_.view().first(body_size_));
    input_.consume(body_size_);
    if (auto* failed = std::get_if<Failed>(&decoded)) {
        fail(std::move(*failed));
        return false;
    }
    LinkMess& link = std::get<LinkMess>(decoded);
    client_selects_auth_ = link.common_caps.has(CommonCap::auth_selection);
    events_.push_back(LinkReceived{std::move(link)});
    state_ = State::await_accept;
    return true;
}

// §3.2: the mechanism word is exchanged only when both sides advertise AUTH_SELECTION; a client
// without it sends the ticket straight away, which only works if ticket auth is offered.
void DownstreamLink::choose_auth(const LinkReply& reply) {
    if (client_selects_auth_ && reply.common_caps.has(CommonCap::auth_selection)) {
        state_ = State::auth_mechanism;
    } else if (offers_ticket_) {
        state_ = State::ticket;
    } else {
        fail({LinkError::version_mismatch,
              "client cannot select an auth mechanism and ticket auth is not offered"});
    }
}

bool DownstreamLink::read_auth_mechanism() {
    if (input_.size() < u32_size) return false;
    const std::uint32_t word = wire::get_u32(input_.view(), 0);
    input_.consume(u32_size);
    if (word == static_cast<std::uint32_t>(AuthMechanism::spice) && offers_ticket_) {
        state_ = State::ticket;
        return true;
    }
    if (word == static_cast<std::uint32_t>(AuthMechanism::sasl) && !mechlist_.empty()) {
        begin_sasl();
        return true;
    }
    fail({LinkError::invalid_data, "auth mechanism " + std::to_string(word) + " not offered"});
    return false;
}

bool DownstreamLink::read_ticket() {
    if (input_.size() < ticket_ciphertext_size) return false;
    TicketReceived ticket;
    std::ranges::copy(input_.view().first<ticket_ciphertext_size>(), ticket.ciphertext.begin());
    input_.consume(ticket_ciphertext_size);
    events_.push_back(ticket);
    state_ = State::await_finish;
    return true;
}

// §5.1 row 1: the server speaks first, right after reading mechanism 2.
void DownstreamLink::begin_sasl() {
    wire::put_u32(output_, static_cast<std::uint32_t>(mechlist_.size()));
    output_.insert(output_.end(), mechlist_.begin(), mechlist_.end());
    state_ = State::sasl_mechname;
}

bool DownstreamLink::read_sasl_mechname() {
    if (input_.size() < u32_size) return false;
    const std::uint32_t length = wire::get_u32(input_.view(), 0);
    if (length == 0 || length > max_sasl_mechname_len) {
        fail({LinkError::invalid_data, "SASL mechanism name length " + std::to_string(length) +
                                           " outside 1.." + std::to_string(max_sasl_mechname_len)});
        return false;
    }
    if (input_.size() < u32_size + length) return false;
    const auto name_bytes = input_.view().subspan(u32_size, length);
    std::string name(name_bytes.begin(), name_bytes.end());
    input_.consume(u32_size + length);  // name_bytes is invalid from here on
    if (!sasl_mechlist_offers(mechlist_, name)) {
        fail({LinkError::invalid_data, "SASL mechanism '" + printable(name) + "' not offered"});
        return false;
    }
    mechanism_ = std::move(name);
    state_ = State::sasl_start;
    return true;
}

// §5.1 rows 3 and 5: length 0 = no data; length N = N-1 data bytes plus the client's NUL.
bool DownstreamLink::read_sasl_data() {
    if (input_.size() < u32_size) return false;
    const std::uint32_t length = wire::get_u32(input_.view(), 0);
    if (length > max_sasl_data_len) {
        fail({LinkError::invalid_data, "SASL data length " + std::to_string(length) +
                                           " exceeds " + std::to_string(max_sasl_data_len)});
        return false;
    }
    if (input_.size() < u32_size + length) return false;
    std::optional<std::vector<std::uint8_t>> data;
    if (length > 0) {
        const auto payload = input_.view().subspan(u32_size, length - 1);
        data.emplace(payload.begin(), payload.end());
    }
    input_.consume(u32_size + length);
    if (state_ == State::sasl_start) {
        events_.push_back(SaslStart{mechanism_, std::move(data)});
    } else {
        events_.push_back(SaslStep{std::move(data)});
    }
    state_ = State::await_sasl;
    return true;
}

// Every violation gets the full-size error reply spice-server would send (§2.4, §2.6, §3.2,
// §5.1), even after an OK reply already went out.
void DownstreamLink::fail(Failed failure) {
    wire::put_bytes(output_, encode_link_error(failure.code));
    events_.push_back(std::move(failure));
    state_ = State::closed;
}

void DownstreamLink::require_state(State expected, const char* call) const {
    if (state_ != expected) {
        throw std::logic_error(std::string("DownstreamLink::") + call +
                               " called in the wrong handshake state");
    }
}

}  // namespace vmgate::spice
