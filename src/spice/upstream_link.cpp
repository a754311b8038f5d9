#include "spice/upstream_link.hpp"

#include <stdexcept>
#include <utility>

namespace vmgate::spice {
namespace {

constexpr std::size_t u32_size = sizeof(std::uint32_t);

}  // namespace

UpstreamLink::UpstreamLink(const LinkMess& link)
    : output_(encode_link_mess(link)),
      link_selects_auth_(link.common_caps.has(CommonCap::auth_selection)) {}

void UpstreamLink::feed(std::span<const std::uint8_t> bytes) {
    if (closed()) return;
    input_.append(bytes);
    pump();
}

std::optional<UpstreamEvent> UpstreamLink::next_event() {
    if (events_.empty()) return std::nullopt;
    UpstreamEvent event = std::move(events_.front());
    events_.pop_front();
    return event;
}

std::vector<std::uint8_t> UpstreamLink::take_output() { return std::exchange(output_, {}); }

std::vector<std::uint8_t> UpstreamLink::take_excess() {
    if (!done()) return {};
    return input_.take_all();
}

void UpstreamLink::send_ticket(std::span<const std::uint8_t, ticket_ciphertext_size> ciphertext) {
    if (closed()) return;
    if (state_ != State::await_ticket) {
        throw std::logic_error("UpstreamLink::send_ticket called before the link reply or twice");
    }
    const bool send_mechanism = link_selects_auth_ && server_selects_auth_;
    if (send_mechanism && !server_offers_ticket_) {
        fail({LinkError::invalid_data, "upstream does not offer ticket authentication (SASL only?)"});
        return;
    }
    if (send_mechanism) wire::put_u32(output_, static_cast<std::uint32_t>(AuthMechanism::spice));
    wire::put_bytes(output_, ciphertext);
    state_ = State::result;
    pump();
}

void UpstreamLink::pump() {
    while (step()) {
    }
    // spice-server sends nothing between its reply and our ticket; bound what a misbehaving
    // upstream can make us hold (design.md, security invariant 3).
    if (state_ == State::await_ticket && input_.size() > max_handshake_buffer) {
        fail({LinkError::invalid_data, "upstream sent more than " +
                                           std::to_string(max_handshake_buffer) +
                                           " bytes before the ticket"});
    }
}

bool UpstreamLink::step() {
    switch (state_) {
    case State::reply_header: return read_reply_header();
    case State::reply_body: return read_reply_body();
    case State::result: return read_result();
    case State::await_ticket:
    case State::done:
    case State::closed: return false;
    }
    return false;
}

bool UpstreamLink::read_reply_header() {
    const auto in = input_.view();
    if (in.size() >= link_magic.size() && !is_link_magic(in.first(link_magic.size()))) {
        fail({LinkError::invalid_magic, "upstream link magic is not REDQ"});
        return false;
    }
    if (in.size() < link_header_size) return false;
    const LinkHeader header = decode_link_header(in.first<link_header_size>());
    // §2.4: even error replies carry the full 178-byte struct, so a shorter size is malformed.
    if (auto failed = check_link_header(header, link_reply_size)) {
        failed->detail = "upstream " + failed->detail;
        fail(std::move(*failed));
        return false;
    }
    body_size_ = header.size;
    input_.consume(link_header_size);
    state_ = State::reply_body;
    return true;
}

bool UpstreamLink::read_reply_body() {
    if (input_.size() < body_size_) return false;
    Decoded<LinkReply> decoded = decode_link_reply(input_.view().first(body_size_));
    input_.consume(body_size_);
    if (auto* failed = std::get_if<Failed>(&decoded)) {
        failed->detail = "upstream " + failed->detail;
        fail(std::move(*failed));
        return false;
    }
    LinkReply& reply = std::get<LinkReply>(decoded);
    server_selects_auth_ = reply.common_caps.has(CommonCap::auth_selection);
    server_offers_ticket_ = reply.common_caps.has(CommonCap::auth_spice);
    // §2.1: after an error reply the server closes; nothing further is parsed.
    state_ = reply.error == LinkError::ok ? State::await_ticket : State::closed;
    events_.push_back(ReplyReceived{std::move(reply)});
    return true;
}

bool UpstreamLink::read_result() {
    if (input_.size() < u32_size) return false;
    const auto code = static_cast<LinkError>(wire::get_u32(input_.view(), 0));
    input_.consume(u32_size);
    events_.push_back(Result{code});
    // Whatever follows an OK result is data-phase traffic (§12 item 16): it stays in input_
    // for take_excess().
    state_ = code == LinkError::ok ? State::done : State::closed;
    return false;
}

void UpstreamLink::fail(Failed failure) {
    events_.push_back(std::move(failure));
    state_ = State::closed;
}

}  // namespace vmgate::spice
