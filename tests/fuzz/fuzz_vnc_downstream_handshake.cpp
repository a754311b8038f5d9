// DownstreamHandshake fed arbitrary client bytes, answered by a scripted gateway (TLS as a
// pass-through). Checks: no crash or sanitizer report, the greeting comes first, nothing after a
// Failed, every reported field within its limit, the cleartext part ends with the VeNCrypt ack
// when TLS starts, a completed handshake ends in SecurityResult OK, and identical events, output
// and excess whether the stream arrives whole or in random chunks.
#include "fuzz_util.hpp"
#include "vnc/downstream_handshake.hpp"

#include <algorithm>
#include <string>
#include <variant>

namespace {

using namespace vmgate::vnc;
using vmgate::fuzz::check;

// Behaviour flags (byte 0 of the input): the low two bits pick the offer.
constexpr std::uint8_t offer_mask = 0x03;
constexpr std::uint8_t deny = 1 << 2;
constexpr std::uint8_t sasl_fails = 1 << 3;
constexpr std::uint8_t long_sasl = 1 << 4;  // three SASL round trips instead of one
constexpr unsigned short_sasl_steps = 1;
constexpr unsigned long_sasl_steps = 3;
constexpr std::string_view mechlist = "SCRAM-SHA-256,PLAIN";

DownstreamOffer offer_for(std::uint8_t flags) {
    using ST = SecurityType;
    using VS = VencryptSubtype;
    VncChallenge challenge{};
    challenge.fill(0x5A);
    switch (flags & offer_mask) {
    case 0: return {{ST::vencrypt}, {VS::x509_plain, VS::x509_sasl, VS::x509_vnc, VS::x509_none}, challenge};
    case 1: return {{ST::vencrypt}, {VS::tls_none, VS::tls_vnc, VS::tls_plain, VS::tls_sasl}, challenge};
    case 2: return {{ST::vencrypt, ST::vnc_auth, ST::none}, {VS::plain, VS::vnc_auth, VS::none}, challenge};
    default: return {{ST::none, ST::vnc_auth}, {}, challenge};
    }
}

struct Trace {
    std::vector<std::string> events;  // variant index, plus the detail of a Failed
    std::vector<std::uint8_t> output;
    std::vector<std::uint8_t> excess;
    bool closed = false;
    bool done = false;
    bool operator==(const Trace&) const = default;
};

void append(std::vector<std::uint8_t>& to, const std::vector<std::uint8_t>& bytes) {
    to.insert(to.end(), bytes.begin(), bytes.end());
}

void check_limits(const DownstreamEvent& event) {
    if (const auto* credentials = std::get_if<CredentialsReceived>(&event)) {
        check(credentials->username.size() <= max_plain_username_len);
        check(credentials->password.size() <= max_plain_password_len);
    }
    if (const auto* start = std::get_if<SaslStart>(&event)) {
        check(start->mechanism == "SCRAM-SHA-256" || start->mechanism == "PLAIN");
        check(!start->client_data || start->client_data->size() < max_sasl_data_len);
    }
    if (const auto* step = std::get_if<SaslStep>(&event)) {
        check(!step->client_data || step->client_data->size() < max_sasl_data_len);
    }
}

class Gateway {
public:
    Gateway(DownstreamHandshake& hs, Trace& trace, std::uint8_t flags) : hs_(hs), trace_(trace), flags_(flags) {}

    void answer(const DownstreamEvent& event) {
        std::visit([this](const auto& e) { on(e); }, event);
    }

private:
    void on(const StartTls&) {
        append(trace_.output, hs_.take_output());
        check(trace_.output.back() == vencrypt_subtype_ack);
        const auto client_tls = hs_.take_excess();
        hs_.tls_established();
        hs_.feed(client_tls);
    }
    void on(const NoneChosen&) { decide(true); }
    void on(const VncResponseReceived&) { decide(true); }
    void on(const CredentialsReceived&) { decide(true); }
    void on(const SaslMechlistNeeded&) { hs_.sasl_offer(mechlist); }
    void on(const SaslStart& e) { on_sasl(e.client_data); }
    void on(const SaslStep& e) { on_sasl(e.client_data); }
    void on(const ClientInitReceived&) {}
    void on(const Failed&) {}

    void on_sasl(const std::optional<std::vector<std::uint8_t>>& data) {
        const unsigned steps = (flags_ & long_sasl) ? long_sasl_steps : short_sasl_steps;
        if (sasl_rounds_++ < steps) return hs_.sasl_continue(data);  // echo as the challenge
        const bool ok = !(flags_ & sasl_fails);
        hs_.sasl_complete(ok ? data : std::nullopt);
        decide(ok);
    }

    void decide(bool authenticated) {
        if (!authenticated || (flags_ & deny)) return hs_.deny("denied by the fuzzer");
        hs_.accept();
    }

    DownstreamHandshake& hs_;
    Trace& trace_;
    std::uint8_t flags_;
    unsigned sasl_rounds_ = 0;
};

Trace run(const std::vector<std::span<const std::uint8_t>>& chunks, std::uint8_t flags) {
    DownstreamHandshake hs(offer_for(flags));
    Trace trace;
    Gateway gateway(hs, trace, flags);
    bool failed = false;
    for (const auto& chunk : chunks) {
        hs.feed(chunk);
        while (auto event = hs.next_event()) {
            check(!failed);  // a Failed event is always the last one
            failed = std::holds_alternative<Failed>(*event);
            check(!failed || hs.closed());
            check_limits(*event);
            trace.events.push_back(std::to_string(event->index()) + (failed ? std::get<Failed>(*event).detail : ""));
            gateway.answer(*event);
        }
    }
    append(trace.output, hs.take_output());  // also the greeting when no chunk arrived
    trace.excess = hs.take_excess();
    trace.closed = hs.closed();
    trace.done = hs.done();
    return trace;
}

// Every run starts with the greeting; a completed one ends in SecurityResult OK (§1.3) and
// reported ClientInit last.
void check_shape(const Trace& trace) {
    check(trace.output.size() >= protocol_version_size &&
          std::equal(protocol_version_3_8.begin(), protocol_version_3_8.end(), trace.output.begin()));
    check(!trace.closed || trace.excess.empty());
    if (!trace.done) return;
    check(std::all_of(trace.output.end() - 4, trace.output.end(), [](std::uint8_t b) { return b == 0; }));
    check(trace.events.back() == std::to_string(DownstreamEvent(ClientInitReceived{}).index()));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto input = vmgate::fuzz::split_input(data, size);
    const Trace whole = run({input.stream}, input.flags);
    check_shape(whole);
    check(run(vmgate::fuzz::chunk(input.stream, input.seed), input.flags) == whole);
    return 0;
}
