#include "vnc/downstream_handshake.hpp"

#include <algorithm>
#include <stdexcept>
#include <utility>

namespace vmgate::vnc {
namespace {

constexpr std::size_t u32_size = sizeof(std::uint32_t);
constexpr std::size_t vencrypt_version_size = 2;
constexpr std::size_t plain_header_size = 2 * u32_size;  // §3.3 username and password lengths
constexpr std::uint8_t sasl_nul = 0;
// §4.2 the "complete" byte after server data.
constexpr std::uint8_t sasl_continues = 0;
constexpr std::uint8_t sasl_completed = 1;
constexpr char mech_separator = ',';
constexpr std::string_view empty_mech_name = ",,";
constexpr std::uint8_t utf8_continuation_mask = 0xC0;  // 10xxxxxx: inside a multi-byte character
constexpr std::uint8_t utf8_continuation_bits = 0x80;
constexpr unsigned supported_major = 3;
constexpr unsigned minor_with_type_list = 7;    // §1.2: 3.7 and later negotiate from a list
constexpr unsigned minor_with_reasons = 8;      // §1.3: 3.8 and later explain failures

template <typename T>
bool has_duplicates(std::vector<T> values) {
    std::ranges::sort(values);
    return std::ranges::adjacent_find(values) != values.end();
}

// "A,B,C": the names between separators; a name can only be accepted if it is one of them.
bool mechlist_offers(std::string_view mechlist, std::string_view name) {
    std::size_t pos = 0;
    while (pos <= mechlist.size()) {
        const std::size_t end = std::min(mechlist.find(mech_separator, pos), mechlist.size());
        if (mechlist.substr(pos, end - pos) == name) return true;
        pos = end + 1;
    }
    return false;
}

bool valid_mechlist(std::string_view mechlist) {
    const bool empty_name = mechlist.empty() || mechlist.front() == mech_separator ||
                            mechlist.back() == mech_separator ||
                            mechlist.find(empty_mech_name) != std::string_view::npos;
    return !empty_name && mechlist.size() <= max_sasl_mechlist_len;
}

// At most max_reason_len bytes, never ending inside a UTF-8 sequence.
std::string_view clip_reason(std::string_view reason) {
    constexpr auto is_continuation = [](char c) {
        return (static_cast<std::uint8_t>(c) & utf8_continuation_mask) == utf8_continuation_bits;
    };
    if (reason.size() <= max_reason_len) return reason;
    std::size_t end = max_reason_len;
    while (end > 0 && is_continuation(reason[end])) --end;
    return reason.substr(0, end);
}

void put_reason(std::vector<std::uint8_t>& out, std::string_view reason) {
    const std::string_view clipped = clip_reason(reason);
    wire::put_u32(out, static_cast<std::uint32_t>(clipped.size()));
    wire::put_text(out, clipped);
}

// §4.2: length 0 = no data; otherwise the data plus one NUL counted in the length.
void put_sasl_server_data(std::vector<std::uint8_t>& out, const std::optional<std::vector<std::uint8_t>>& data,
                          std::uint8_t complete) {
    if (data) {
        wire::put_u32(out, static_cast<std::uint32_t>(data->size() + sizeof sasl_nul));
        wire::put_bytes(out, *data);
        wire::put_u8(out, sasl_nul);
    } else {
        wire::put_u32(out, 0);
    }
    wire::put_u8(out, complete);
}

std::string version_text(const ProtocolVersion& version) {
    return std::to_string(version.major) + "." + std::to_string(version.minor);
}

// The authentication that runs after the type/subtype choice (and TLS, if any).
enum class InnerAuth { none, vnc_auth, plain, sasl };

// What a VeNCrypt subtype runs (§3.2): its TLS, if any, then its inner authentication.
struct SubtypeRoute {
    std::optional<TlsKind> tls;
    InnerAuth inner = InnerAuth::none;
};

// nullopt for a number that is no VencryptSubtype.
std::optional<SubtypeRoute> route_of(VencryptSubtype subtype) {
    switch (subtype) {
    case VencryptSubtype::none: return SubtypeRoute{std::nullopt, InnerAuth::none};
    case VencryptSubtype::vnc_auth: return SubtypeRoute{std::nullopt, InnerAuth::vnc_auth};
    case VencryptSubtype::plain: return SubtypeRoute{std::nullopt, InnerAuth::plain};
    case VencryptSubtype::tls_none: return SubtypeRoute{TlsKind::anonymous, InnerAuth::none};
    case VencryptSubtype::tls_vnc: return SubtypeRoute{TlsKind::anonymous, InnerAuth::vnc_auth};
    case VencryptSubtype::tls_plain: return SubtypeRoute{TlsKind::anonymous, InnerAuth::plain};
    case VencryptSubtype::tls_sasl: return SubtypeRoute{TlsKind::anonymous, InnerAuth::sasl};
    case VencryptSubtype::x509_none: return SubtypeRoute{TlsKind::x509, InnerAuth::none};
    case VencryptSubtype::x509_vnc: return SubtypeRoute{TlsKind::x509, InnerAuth::vnc_auth};
    case VencryptSubtype::x509_plain: return SubtypeRoute{TlsKind::x509, InnerAuth::plain};
    case VencryptSubtype::x509_sasl: return SubtypeRoute{TlsKind::x509, InnerAuth::sasl};
    }
    return std::nullopt;
}

void validate(const DownstreamOffer& offer) {
    const auto& types = offer.security_types;
    const auto& subtypes = offer.vencrypt_subtypes;
    const auto speakable = [](SecurityType t) {
        return t == SecurityType::none || t == SecurityType::vnc_auth || t == SecurityType::vencrypt;
    };
    if (types.empty() || has_duplicates(types) || !std::ranges::all_of(types, speakable)) {
        throw std::invalid_argument("RFB offer: security types must be distinct values of none, vnc_auth, vencrypt");
    }
    const bool vencrypt = std::ranges::find(types, SecurityType::vencrypt) != types.end();
    const auto known = [](VencryptSubtype s) { return route_of(s).has_value(); };
    if (vencrypt == subtypes.empty() || has_duplicates(subtypes) || !std::ranges::all_of(subtypes, known)) {
        throw std::invalid_argument("RFB offer: VeNCrypt needs distinct known subtypes, and subtypes need VeNCrypt");
    }
}

}  // namespace

DownstreamHandshake::DownstreamHandshake(DownstreamOffer offer) : offer_(std::move(offer)) {
    validate(offer_);
    wire::put_text(output_, protocol_version_3_8);  // §1.1: the server speaks first
}

void DownstreamHandshake::feed(std::span<const std::uint8_t> bytes) {
    if (closed()) return;
    input_.append(bytes);
    pump();
}

std::optional<DownstreamEvent> DownstreamHandshake::next_event() {
    if (events_.empty()) return std::nullopt;
    DownstreamEvent event = std::move(events_.front());
    events_.pop_front();
    return event;
}

std::vector<std::uint8_t> DownstreamHandshake::take_output() { return std::exchange(output_, {}); }

std::vector<std::uint8_t> DownstreamHandshake::take_excess() {
    if (!done() && state_ != State::await_tls) return {};
    return input_.take_all();
}

void DownstreamHandshake::tls_established() {
    if (closed()) return;
    require_state(State::await_tls, "tls_established");
    if (!input_.empty()) {
        throw std::logic_error("DownstreamHandshake::tls_established with cleartext bytes not handed to TLS");
    }
    begin_inner_auth(chosen_);
    pump();
}

void DownstreamHandshake::sasl_offer(std::string_view mechlist) {
    if (closed()) return;
    require_state(State::await_mechlist, "sasl_offer");
    if (!valid_mechlist(mechlist)) throw std::invalid_argument("unusable SASL mechanism list");
    mechlist_ = mechlist;
    wire::put_u32(output_, static_cast<std::uint32_t>(mechlist_.size()));
    wire::put_text(output_, mechlist_);
    state_ = State::sasl_mechname;
    pump();
}

void DownstreamHandshake::sasl_continue(std::optional<std::vector<std::uint8_t>> server_data) {
    if (closed()) return;
    require_state(State::await_sasl, "sasl_continue");
    put_sasl_server_data(output_, server_data, sasl_continues);
    state_ = State::sasl_step;
    pump();
}

void DownstreamHandshake::sasl_complete(std::optional<std::vector<std::uint8_t>> server_data) {
    if (closed()) return;
    require_state(State::await_sasl, "sasl_complete");
    put_sasl_server_data(output_, server_data, sasl_completed);
    // §4.2: the client sends nothing more; SecurityResult follows directly.
    state_ = State::await_result;
    pump();
}

void DownstreamHandshake::accept() {
    if (closed()) return;
    require_state(State::await_result, "accept");
    wire::put_u32(output_, static_cast<std::uint32_t>(SecurityResult::ok));
    state_ = State::client_init;
    pump();
}

void DownstreamHandshake::deny(std::string_view reason) {
    if (closed()) return;
    require_state(State::await_result, "deny");
    put_security_failure(reason);
    state_ = State::closed;
}

void DownstreamHandshake::pump() {
    while (step()) {
    }
    // Bytes that pile up while the machine waits for the gateway are not yet interpretable;
    // bound them rather than trust the client (design.md, security invariant 3).
    if (!done() && !closed() && input_.size() > max_handshake_buffer) {
        fail("client sent more than " + std::to_string(max_handshake_buffer) +
             " unparsed bytes during the handshake");
    }
}

bool DownstreamHandshake::step() {
    switch (state_) {
    case State::version: return read_version();
    case State::security_type: return read_security_type();
    case State::vencrypt_version: return read_vencrypt_version();
    case State::vencrypt_subtype: return read_vencrypt_subtype();
    case State::vnc_response: return read_vnc_response();
    case State::plain_credentials: return read_plain_credentials();
    case State::sasl_mechname: return read_sasl_mechname();
    case State::sasl_start:
    case State::sasl_step: return read_sasl_data();
    case State::client_init: return read_client_init();
    case State::await_tls:
    case State::await_mechlist:
    case State::await_sasl:
    case State::await_result:
    case State::done:
    case State::closed: return false;
    }
    return false;
}

bool DownstreamHandshake::read_version() {
    const auto in = input_.view();
    const auto head = in.first(std::min(in.size(), protocol_version_size));
    const std::size_t matched = protocol_version_match_length(head);
    if (matched < head.size()) {  // refused at the first byte that cannot be RFB (§1.1)
        fail("client did not send an RFB version: '" + printable(head.first(matched + 1)) + "'");
        return false;
    }
    if (head.size() < protocol_version_size) return false;
    const ProtocolVersion version = *parse_protocol_version(head);
    input_.consume(protocol_version_size);
    if (version.major != supported_major || version.minor < minor_with_reasons) {
        refuse_version(version);
        return false;
    }
    // §1.2: the offer in the caller's order.
    wire::put_u8(output_, static_cast<std::uint8_t>(offer_.security_types.size()));
    for (SecurityType type : offer_.security_types) wire::put_u8(output_, static_cast<std::uint8_t>(type));
    state_ = State::security_type;
    return true;
}

// §1.2, §1.3: each version reads its failure differently. 3.3 reads a u32 security type, 3.7 a
// type list; both take 0 + reason. Another major version (or 0.0, UltraVNC's repeater) has no
// known failure form and gets none.
void DownstreamHandshake::refuse_version(const ProtocolVersion& version) {
    const std::string reason = "client speaks RFB " + version_text(version) + "; vmgate needs RFB 3.8";
    if (version.major == supported_major && version.minor >= minor_with_type_list) {
        wire::put_u8(output_, static_cast<std::uint8_t>(SecurityType::invalid));
        put_reason(output_, reason);
    } else if (version.major == supported_major) {
        wire::put_u32(output_, static_cast<std::uint32_t>(SecurityType::invalid));
        put_reason(output_, reason);
    }
    close_failed(reason);
}

bool DownstreamHandshake::read_security_type() {
    if (input_.empty()) return false;
    const std::uint8_t chosen = input_.view()[0];
    input_.consume(1);
    const auto& offered = offer_.security_types;
    if (std::ranges::find(offered, static_cast<SecurityType>(chosen)) == offered.end()) {
        fail("client chose security type " + std::to_string(chosen) + ", which was not offered");
        return false;
    }
    switch (static_cast<SecurityType>(chosen)) {
    // §3.1: the ordinary types have the same numbers as the subtypes that stand for them.
    case SecurityType::none: begin_inner_auth(VencryptSubtype::none); break;
    case SecurityType::vnc_auth: begin_inner_auth(VencryptSubtype::vnc_auth); break;
    default:  // vencrypt, the only other type an offer can hold
        wire::put_u8(output_, vencrypt_major);
        wire::put_u8(output_, vencrypt_minor);
        state_ = State::vencrypt_version;
    }
    return true;
}

bool DownstreamHandshake::read_vencrypt_version() {
    if (input_.size() < vencrypt_version_size) return false;
    const std::uint8_t major = input_.view()[0];
    const std::uint8_t minor = input_.view()[1];
    input_.consume(vencrypt_version_size);
    // §3.1: everybody speaks 0.2; 0.1 is obsolete, and TigerVNC sends 0.0 to give up.
    if (major != vencrypt_major || minor != vencrypt_minor) {
        fail("client chose VeNCrypt " + std::to_string(major) + "." + std::to_string(minor) +
             "; vmgate speaks 0.2");
        return false;
    }
    wire::put_u8(output_, vencrypt_version_ok);
    wire::put_u8(output_, static_cast<std::uint8_t>(offer_.vencrypt_subtypes.size()));
    for (VencryptSubtype s : offer_.vencrypt_subtypes) wire::put_u32(output_, static_cast<std::uint32_t>(s));
    state_ = State::vencrypt_subtype;
    return true;
}

bool DownstreamHandshake::read_vencrypt_subtype() {
    if (input_.size() < u32_size) return false;
    const std::uint32_t number = wire::get_u32(input_.view(), 0);
    input_.consume(u32_size);
    const auto chosen = static_cast<VencryptSubtype>(number);
    const auto& offered = offer_.vencrypt_subtypes;
    if (std::ranges::find(offered, chosen) == offered.end()) {
        fail("client chose VeNCrypt subtype " + std::to_string(number) + ", which was not offered");
        return false;
    }
    const auto tls = route_of(chosen)->tls;
    if (!tls) {
        begin_inner_auth(chosen);  // §3.1: no ack byte without TLS
        return true;
    }
    wire::put_u8(output_, vencrypt_subtype_ack);
    chosen_ = chosen;
    events_.push_back(StartTls{*tls});
    state_ = State::await_tls;
    return false;  // what follows is TLS, not RFB
}

void DownstreamHandshake::begin_inner_auth(VencryptSubtype chosen) {
    switch (route_of(chosen)->inner) {
    case InnerAuth::none:
        events_.push_back(NoneChosen{});
        state_ = State::await_result;
        break;
    case InnerAuth::vnc_auth:
        wire::put_bytes(output_, offer_.vnc_challenge);
        state_ = State::vnc_response;
        break;
    case InnerAuth::plain: state_ = State::plain_credentials; break;
    case InnerAuth::sasl:
        events_.push_back(SaslMechlistNeeded{});
        state_ = State::await_mechlist;
        break;
    }
}

bool DownstreamHandshake::read_vnc_response() {
    if (input_.size() < vnc_auth_size) return false;
    VncResponseReceived received;
    std::ranges::copy(input_.view().first(vnc_auth_size), received.response.begin());
    input_.consume(vnc_auth_size);
    events_.push_back(received);
    state_ = State::await_result;
    return true;
}

bool DownstreamHandshake::read_plain_credentials() {
    if (input_.size() < plain_header_size) return false;
    const std::uint32_t username_len = wire::get_u32(input_.view(), 0);
    const std::uint32_t password_len = wire::get_u32(input_.view(), u32_size);
    // Refused as soon as the lengths arrive, before waiting for (or holding) the bytes.
    if (username_len > max_plain_username_len || password_len > max_plain_password_len) {
        fail("Plain username/password lengths " + std::to_string(username_len) + "/" +
             std::to_string(password_len) + " exceed " + std::to_string(max_plain_username_len) + "/" +
             std::to_string(max_plain_password_len));
        return false;
    }
    if (input_.size() < plain_header_size + username_len + password_len) return false;
    const auto username = input_.view().subspan(plain_header_size, username_len);
    const auto password = input_.view().subspan(plain_header_size + username_len, password_len);
    CredentialsReceived credentials{std::string(username.begin(), username.end()),
                                    std::string(password.begin(), password.end())};
    input_.consume(plain_header_size + username_len + password_len);
    events_.push_back(std::move(credentials));
    state_ = State::await_result;
    return true;
}

bool DownstreamHandshake::read_sasl_mechname() {
    if (input_.size() < u32_size) return false;
    const std::uint32_t length = wire::get_u32(input_.view(), 0);
    if (length == 0 || length > max_sasl_mechname_len) {
        fail("SASL mechanism name length " + std::to_string(length) + " outside 1.." +
             std::to_string(max_sasl_mechname_len));
        return false;
    }
    if (input_.size() < u32_size + length) return false;
    const auto name_bytes = input_.view().subspan(u32_size, length);
    std::string name(name_bytes.begin(), name_bytes.end());
    const std::string shown = printable(name_bytes);
    input_.consume(u32_size + length);  // name_bytes is invalid from here on
    if (!mechlist_offers(mechlist_, name)) {
        fail("SASL mechanism '" + shown + "' not offered");
        return false;
    }
    mechanism_ = std::move(name);
    state_ = State::sasl_start;
    return true;
}

// §4.2: length 0 = no data; length N = N-1 data bytes and the client's padding NUL, which newer
// QEMU requires too.
bool DownstreamHandshake::read_sasl_data() {
    if (input_.size() < u32_size) return false;
    const std::uint32_t length = wire::get_u32(input_.view(), 0);
    if (length > max_sasl_data_len) {
        fail("SASL data length " + std::to_string(length) + " exceeds " + std::to_string(max_sasl_data_len));
        return false;
    }
    if (input_.size() < u32_size + length) return false;
    std::optional<std::vector<std::uint8_t>> data;
    if (length > 0) {
        const auto padded = input_.view().subspan(u32_size, length);
        if (padded.back() != sasl_nul) {
            fail("SASL data lacks its NUL padding byte");
            return false;
        }
        data.emplace(padded.begin(), padded.end() - 1);
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

bool DownstreamHandshake::read_client_init() {
    if (input_.empty()) return false;
    const bool shared = input_.view()[0] != 0;
    input_.consume(1);
    events_.push_back(ClientInitReceived{shared});
    // Whatever follows is data-phase traffic: it stays in input_ for take_excess().
    state_ = State::done;
    return false;
}

// §1.3 (3.8): status failed, then the reason.
void DownstreamHandshake::put_security_failure(std::string_view reason) {
    wire::put_u32(output_, static_cast<std::uint32_t>(SecurityResult::failed));
    put_reason(output_, reason);
}

// A violation is told in the form the client reads next in this state, where one exists.
void DownstreamHandshake::fail(std::string detail) {
    switch (state_) {
    case State::vencrypt_version:
        // §3.1 row 3: a non-zero status refuses; there is no room for a reason.
        wire::put_u8(output_, vencrypt_version_refused);
        break;
    // §1.3: after its choice the client reads a SecurityResult (QEMU answers a type it did not
    // offer with one). A client that expects the subtype ack reads the first byte, 0: refused,
    // which is QEMU's answer to a subtype it did not offer (§3.1 row 7).
    case State::security_type:
    case State::vencrypt_subtype:
    case State::vnc_response:
    case State::plain_credentials:
    case State::await_result: put_security_failure(detail); break;
    case State::sasl_mechname:
    case State::sasl_start:
    case State::sasl_step:
    case State::await_sasl:
        // §4.2: the client waits for server data; "complete" then SecurityResult is the
        // failure clients read (QEMU's bare close is also accepted, but says nothing).
        put_sasl_server_data(output_, std::nullopt, sasl_completed);
        put_security_failure(detail);
        break;
    case State::version:         // not an RFB peer
    case State::await_tls:       // the stream belongs to TLS now
    case State::await_mechlist:  // no failure form before the mechanism list
    case State::client_init:
    case State::done:
    case State::closed: break;
    }
    close_failed(std::move(detail));
}

void DownstreamHandshake::close_failed(std::string detail) {
    events_.push_back(Failed{std::move(detail)});
    state_ = State::closed;
}

void DownstreamHandshake::require_state(State expected, const char* call) const {
    if (state_ != expected) {
        throw std::logic_error(std::string("DownstreamHandshake::") + call + " called in the wrong handshake state");
    }
}

}  // namespace vmgate::vnc
