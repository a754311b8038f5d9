#include "vnc/downstream_handshake.hpp"
#include "vnc/vnc_auth.hpp"
#include "vnc_test_util.hpp"

#include <gtest/gtest.h>

namespace vmgate::vnc {
namespace {

using test::ascii;
using test::be32;
using test::Bytes;
using test::cat;
using test::framed;
using test::hex;
using test::to_hex;

const Bytes greeting = ascii("RFB 003.008\n");

VncChallenge sample_challenge() {
    VncChallenge c{};
    for (std::size_t i = 0; i < c.size(); ++i) c[i] = static_cast<std::uint8_t>(i * 17 + 5);
    return c;
}

Bytes challenge_bytes() { return test::to_bytes(sample_challenge()); }

Bytes response_bytes(std::string_view password) { return test::to_bytes(vnc_auth_response(password, sample_challenge())); }

// §8's recommendation for a raw TCP listener: VeNCrypt with X509Plain, X509SASL, X509Vnc.
DownstreamOffer x509_offer() {
    return {{SecurityType::vencrypt},
            {VencryptSubtype::x509_plain, VencryptSubtype::x509_sasl, VencryptSubtype::x509_vnc},
            sample_challenge()};
}

DownstreamOffer offer_of(std::vector<SecurityType> types, std::vector<VencryptSubtype> subtypes = {}) {
    return {std::move(types), std::move(subtypes), sample_challenge()};
}

std::string describe_data(const std::optional<Bytes>& data) { return data ? "[" + to_hex(*data) + "]" : "null"; }

std::string describe(const DownstreamEvent& event) {
    return std::visit(
        test::Overloaded{
            [](const StartTls& e) { return std::string("start_tls ") + (e.kind == TlsKind::x509 ? "x509" : "anonymous"); },
            [](const NoneChosen&) { return std::string("none"); },
            [](const VncResponseReceived& e) { return "vnc_response " + to_hex(e.response); },
            [](const CredentialsReceived& e) { return "credentials " + e.username + "/" + e.password; },
            [](const SaslMechlistNeeded&) { return std::string("sasl_mechlist"); },
            [](const SaslStart& e) { return "sasl_start " + e.mechanism + " " + describe_data(e.client_data); },
            [](const SaslStep& e) { return "sasl_step " + describe_data(e.client_data); },
            [](const ClientInitReceived& e) { return std::string("client_init ") + (e.shared ? "shared" : "exclusive"); },
            [](const Failed& e) { return "failed: " + e.detail; },
        },
        event);
}

// A scripted gateway: runs TLS as a pass-through, answers SASL with `challenges` in order, and
// accepts unless told to deny (or the VNC password does not match).
struct Gateway {
    DownstreamOffer offer = x509_offer();
    std::string mechlist = "SCRAM-SHA-256,PLAIN";
    std::vector<std::optional<Bytes>> challenges;
    std::optional<Bytes> sasl_final;
    bool sasl_ok = true;
    std::string vnc_password = "password";
    std::optional<std::string> deny;
};

struct Outcome {
    std::vector<std::string> events;
    Bytes output;
    std::optional<std::size_t> tls_at;  // how much output went out in clear before TLS
    Bytes excess;
    bool closed = false;
    bool done = false;
    bool operator==(const Outcome&) const = default;
};

void append(Bytes& to, const Bytes& bytes) { to.insert(to.end(), bytes.begin(), bytes.end()); }

class Driver {
public:
    explicit Driver(const Gateway& gw) : gw_(gw), hs_(gw.offer) {}

    Outcome run(const std::vector<Bytes>& chunks) {
        for (const Bytes& chunk : chunks) {
            hs_.feed(chunk);
            while (auto event = hs_.next_event()) {
                out_.events.push_back(describe(*event));
                std::visit([this](const auto& e) { answer(e); }, *event);
            }
        }
        append(out_.output, hs_.take_output());
        out_.excess = hs_.take_excess();
        out_.closed = hs_.closed();
        out_.done = hs_.done();
        return out_;
    }

private:
    void answer(const StartTls&) {
        append(out_.output, hs_.take_output());
        out_.tls_at = out_.output.size();
        const Bytes client_tls = hs_.take_excess();  // pass-through "TLS": these are the plaintext
        hs_.tls_established();
        hs_.feed(client_tls);
    }
    void answer(const NoneChosen&) { decide(true); }
    void answer(const VncResponseReceived& e) {
        decide(vnc_auth_response_matches(gw_.vnc_password, gw_.offer.vnc_challenge, e.response));
    }
    void answer(const CredentialsReceived&) { decide(true); }
    void answer(const SaslMechlistNeeded&) { hs_.sasl_offer(gw_.mechlist); }
    void answer(const SaslStart&) { answer_sasl(); }
    void answer(const SaslStep&) { answer_sasl(); }
    void answer(const ClientInitReceived&) {}
    void answer(const Failed&) {}

    void answer_sasl() {
        if (next_challenge_ < gw_.challenges.size()) return hs_.sasl_continue(gw_.challenges[next_challenge_++]);
        hs_.sasl_complete(gw_.sasl_ok ? gw_.sasl_final : std::nullopt);
        decide(gw_.sasl_ok);
    }

    void decide(bool authenticated) {
        if (!authenticated) return hs_.deny("authentication failed");
        if (gw_.deny) return hs_.deny(*gw_.deny);
        hs_.accept();
    }

    const Gateway& gw_;
    DownstreamHandshake hs_;
    Outcome out_;
    std::size_t next_challenge_ = 0;
};

Outcome run(const Gateway& gw, const std::vector<Bytes>& chunks) { return Driver(gw).run(chunks); }

// Runs the stream whole, cut at every byte boundary, and byte by byte: all must agree.
Outcome run_all_chunkings(const Gateway& gw, const Bytes& stream) {
    const Outcome whole = run(gw, {stream});
    const auto chunkings = test::chunkings(stream);
    for (std::size_t i = 0; i < chunkings.size(); ++i) EXPECT_EQ(run(gw, chunkings[i]), whole) << "chunking #" << i;
    return whole;
}

// The client's side up to its VeNCrypt subtype choice.
Bytes client_vencrypt(std::uint32_t subtype) { return cat({greeting, hex("13"), hex("00 02"), be32(subtype)}); }

// The gateway's side for x509_offer() up to the subtype list.
Bytes x509_prefix() {
    return cat({greeting, hex("01 13"), hex("00 02"), hex("00 03"), be32(262), be32(263), be32(261)});
}

Bytes plain(std::string_view user, std::string_view password) {
    return cat({be32(static_cast<std::uint32_t>(user.size())), be32(static_cast<std::uint32_t>(password.size())),
                ascii(user), ascii(password)});
}

Bytes result_ok() { return be32(0); }

Bytes security_failure(std::string_view reason) { return cat({be32(1), framed(reason)}); }

// §4.2: no data, complete, then the failed SecurityResult.
Bytes sasl_failure(std::string_view reason) { return cat({be32(0), hex("01"), security_failure(reason)}); }

// ---------------------------------------------------------------- happy paths

TEST(VncDownstreamHandshake, X509Plain) {
    const Bytes stream = cat({client_vencrypt(262), plain("alice", "s3cret"), hex("01"), hex("03 00 00 00")});
    const Outcome out = run_all_chunkings(Gateway{}, stream);
    EXPECT_EQ(out.events, (std::vector<std::string>{"start_tls x509", "credentials alice/s3cret", "client_init shared"}));
    EXPECT_EQ(out.output, cat({x509_prefix(), hex("01"), result_ok()}));
    EXPECT_EQ(out.tls_at, x509_prefix().size() + 1);  // the ack is the last byte in clear
    EXPECT_TRUE(out.done);
    EXPECT_FALSE(out.closed);
    EXPECT_EQ(out.excess, hex("03 00 00 00"));  // a data-phase message the client pipelined
}

TEST(VncDownstreamHandshake, X509SaslPlainExampleFromTheSpec) {
    // §4.2 example: PLAIN inside X509 TLS, user alice, password s3cret.
    Gateway gw;
    gw.mechlist = "PLAIN";
    const Bytes stream = cat({client_vencrypt(263), hex("00000005 504c41494e"),
                              hex("0000000e 00 616c696365 00 733363726574 00"), hex("01")});
    const Outcome out = run_all_chunkings(gw, stream);
    EXPECT_EQ(out.events, (std::vector<std::string>{"start_tls x509", "sasl_mechlist",
                                                    "sasl_start PLAIN [00616c69636500733363726574]",
                                                    "client_init shared"}));
    EXPECT_EQ(out.output, cat({x509_prefix(), hex("01"), framed("PLAIN"), hex("00000000 01"), result_ok()}));
    EXPECT_TRUE(out.done);
}

TEST(VncDownstreamHandshake, X509SaslMultiStepWithNulHandling) {
    Gateway gw;
    gw.challenges = {ascii("r=abc"), Bytes{}, std::nullopt};
    gw.sasl_final = ascii("v=xyz");
    const Bytes stream = cat({client_vencrypt(263), framed("SCRAM-SHA-256"),
                              be32(0),                           // start without initial response
                              be32(4), ascii("c=1"), hex("00"),  // step with data
                              be32(1), hex("00"),                // step with empty data
                              be32(0),                           // step with no data
                              hex("00")});                       // ClientInit, exclusive
    const Outcome out = run_all_chunkings(gw, stream);
    EXPECT_EQ(out.events, (std::vector<std::string>{"start_tls x509", "sasl_mechlist", "sasl_start SCRAM-SHA-256 null",
                                                    "sasl_step [633d31]", "sasl_step []", "sasl_step null",
                                                    "client_init exclusive"}));
    EXPECT_EQ(out.output, cat({x509_prefix(), hex("01"), framed("SCRAM-SHA-256,PLAIN"),
                               be32(6), ascii("r=abc"), hex("00 00"),  // continue, data + NUL
                               be32(1), hex("00 00"),                  // continue, empty data
                               be32(0), hex("00"),                     // continue, no data
                               be32(6), ascii("v=xyz"), hex("00 01"),  // complete with data
                               result_ok()}));
    EXPECT_TRUE(out.done);
}

TEST(VncDownstreamHandshake, X509VncAuth) {
    const Bytes stream = cat({client_vencrypt(261), response_bytes("password"), hex("01")});
    const Outcome out = run_all_chunkings(Gateway{}, stream);
    EXPECT_EQ(out.events, (std::vector<std::string>{"start_tls x509", "vnc_response " + to_hex(response_bytes("password")),
                                                    "client_init shared"}));
    EXPECT_EQ(out.output, cat({x509_prefix(), hex("01"), challenge_bytes(), result_ok()}));
    EXPECT_EQ(out.tls_at, x509_prefix().size() + 1);  // the challenge goes inside TLS
    EXPECT_TRUE(out.done);
}

TEST(VncDownstreamHandshake, WrongVncPasswordIsDenied) {
    const Outcome out = run_all_chunkings(Gateway{}, cat({client_vencrypt(261), response_bytes("passwore")}));
    EXPECT_EQ(out.output, cat({x509_prefix(), hex("01"), challenge_bytes(), security_failure("authentication failed")}));
    EXPECT_TRUE(out.closed);
}

TEST(VncDownstreamHandshake, AnonymousTlsNone) {
    Gateway gw;
    gw.offer = offer_of({SecurityType::vencrypt}, {VencryptSubtype::tls_none});
    const Outcome out = run_all_chunkings(gw, cat({client_vencrypt(257), hex("00")}));
    EXPECT_EQ(out.events, (std::vector<std::string>{"start_tls anonymous", "none", "client_init exclusive"}));
    // §3.1: SecurityResult follows the TLS handshake even for *None.
    EXPECT_EQ(out.output, cat({greeting, hex("01 13 00 02 00 01"), be32(257), hex("01"), result_ok()}));
    EXPECT_TRUE(out.done);
}

TEST(VncDownstreamHandshake, TopLevelNone) {
    // §8: a wss:// listener that authenticated the user over HTTP.
    Gateway gw;
    gw.offer = offer_of({SecurityType::none});
    const Outcome out = run_all_chunkings(gw, cat({greeting, hex("01"), hex("01")}));
    EXPECT_EQ(out.events, (std::vector<std::string>{"none", "client_init shared"}));
    EXPECT_EQ(out.output, cat({greeting, hex("01 01"), result_ok()}));  // 3.8 sends the result for None too
    EXPECT_FALSE(out.tls_at);
    EXPECT_TRUE(out.done);
}

TEST(VncDownstreamHandshake, TopLevelVncAuth) {
    Gateway gw;
    gw.offer = offer_of({SecurityType::vnc_auth});
    const Outcome out = run_all_chunkings(gw, cat({greeting, hex("02"), response_bytes("password"), hex("01")}));
    EXPECT_EQ(out.output, cat({greeting, hex("01 02"), challenge_bytes(), result_ok()}));
    EXPECT_TRUE(out.done);
}

TEST(VncDownstreamHandshake, PlainAndVncAuthInsideVencryptGetNoAck) {
    // §8 wss:// offer for noVNC: VeNCrypt with Plain (256) and VNC auth (2), TLS from wss.
    Gateway gw;
    gw.offer = offer_of({SecurityType::vencrypt}, {VencryptSubtype::plain, VencryptSubtype::vnc_auth});
    const Bytes prefix = cat({greeting, hex("01 13 00 02 00 02"), be32(256), be32(2)});

    const Outcome plain_out = run_all_chunkings(gw, cat({client_vencrypt(256), plain("bob", "pw"), hex("01")}));
    EXPECT_EQ(plain_out.events, (std::vector<std::string>{"credentials bob/pw", "client_init shared"}));
    EXPECT_EQ(plain_out.output, cat({prefix, result_ok()}));
    EXPECT_FALSE(plain_out.tls_at);

    const Outcome vnc_out = run_all_chunkings(gw, cat({client_vencrypt(2), response_bytes("password"), hex("01")}));
    EXPECT_EQ(vnc_out.output, cat({prefix, challenge_bytes(), result_ok()}));
    EXPECT_TRUE(vnc_out.done);
}

TEST(VncDownstreamHandshake, OfferIsSentInTheCallersOrder) {
    Gateway gw;
    gw.offer = offer_of({SecurityType::vencrypt, SecurityType::vnc_auth, SecurityType::none},
                        {VencryptSubtype::x509_vnc, VencryptSubtype::tls_plain});
    const Outcome out = run_all_chunkings(gw, cat({greeting, hex("13 00 02")}));
    EXPECT_EQ(out.output, cat({greeting, hex("03 13 02 01"), hex("00 02"), hex("00 02"), be32(261), be32(259)}));
    EXPECT_TRUE(out.events.empty());
}

TEST(VncDownstreamHandshake, LaterMinorVersionsCountAs38) {
    // Apple's clients answer 3.889 (§1.1).
    const Outcome out = run_all_chunkings(Gateway{}, ascii("RFB 003.889\n"));
    EXPECT_EQ(out.output, cat({greeting, hex("01 13")}));
    EXPECT_FALSE(out.closed);
}

// ---------------------------------------------------------------- gateway decisions

TEST(VncDownstreamHandshake, DenyCarriesTheReason) {
    Gateway gw;
    gw.deny = "anne may use vm2 on Wednesdays and Thursdays";
    const Outcome out = run_all_chunkings(gw, cat({client_vencrypt(262), plain("anne", "pw")}));
    EXPECT_EQ(out.output, cat({x509_prefix(), hex("01"), security_failure(*gw.deny)}));
    EXPECT_TRUE(out.closed);
    EXPECT_FALSE(out.done);
}

TEST(VncDownstreamHandshake, FailedSaslIsCompletedThenDenied) {
    Gateway gw;
    gw.sasl_ok = false;
    const Outcome out = run_all_chunkings(gw, cat({client_vencrypt(263), framed("PLAIN"), be32(1), hex("00")}));
    EXPECT_EQ(out.output,
              cat({x509_prefix(), hex("01"), framed("SCRAM-SHA-256,PLAIN"), sasl_failure("authentication failed")}));
    EXPECT_TRUE(out.closed);
}

TEST(VncDownstreamHandshake, LongReasonsAreCutAtACharacterBoundary) {
    const auto denied_with = [](const std::string& reason) {
        Gateway gw;
        gw.offer = offer_of({SecurityType::none});
        gw.deny = reason;
        return run(gw, {cat({greeting, hex("01")})}).output;
    };
    const Bytes before = cat({greeting, hex("01 01")});
    EXPECT_EQ(denied_with(std::string(300, 'x')), cat({before, security_failure(std::string(255, 'x'))}));
    // 254 bytes, then a two-byte character that would end at byte 256: cut before it.
    EXPECT_EQ(denied_with(std::string(254, 'x') + "\xc3\xa4"), cat({before, security_failure(std::string(254, 'x'))}));
    EXPECT_EQ(denied_with(std::string(253, 'x') + "\xc3\xa4"),
              cat({before, security_failure(std::string(253, 'x') + "\xc3\xa4")}));
}

TEST(VncDownstreamHandshake, TlsEstablishedRefusesUnhandedCleartext) {
    DownstreamHandshake hs(x509_offer());
    hs.feed(cat({client_vencrypt(262), hex("16 03 01")}));
    auto event = hs.next_event();
    ASSERT_TRUE(event && std::holds_alternative<StartTls>(*event));
    EXPECT_THROW(hs.tls_established(), std::logic_error);
    EXPECT_EQ(hs.take_excess(), hex("16 03 01"));
    hs.tls_established();
    hs.feed(plain("a", "b"));
    event = hs.next_event();
    ASSERT_TRUE(event && std::holds_alternative<CredentialsReceived>(*event));
}

TEST(VncDownstreamHandshake, ExcessOnlyWhenDoneOrAwaitingTls) {
    DownstreamHandshake hs(offer_of({SecurityType::none}));
    hs.feed(cat({greeting, hex("01 01 02")}));
    ASSERT_TRUE(hs.next_event());
    EXPECT_TRUE(hs.take_excess().empty());  // awaiting the decision: not handed out
    hs.accept();
    auto event = hs.next_event();
    ASSERT_TRUE(event && std::holds_alternative<ClientInitReceived>(*event));
    hs.feed(ascii("ab"));
    EXPECT_EQ(hs.take_excess(), cat({hex("02"), ascii("ab")}));
    EXPECT_TRUE(hs.take_excess().empty());
}

TEST(VncDownstreamHandshake, CallsInTheWrongStateThrow) {
    DownstreamHandshake hs(x509_offer());
    EXPECT_THROW(hs.accept(), std::logic_error);
    EXPECT_THROW(hs.deny("no"), std::logic_error);
    EXPECT_THROW(hs.tls_established(), std::logic_error);
    EXPECT_THROW(hs.sasl_offer("PLAIN"), std::logic_error);
    EXPECT_THROW(hs.sasl_continue(std::nullopt), std::logic_error);
    EXPECT_THROW(hs.sasl_complete(std::nullopt), std::logic_error);
    hs.feed(client_vencrypt(262));
    EXPECT_THROW(hs.accept(), std::logic_error);  // TLS first
}

TEST(VncDownstreamHandshake, CallsAfterCloseAreIgnored) {
    DownstreamHandshake hs(x509_offer());
    hs.feed(ascii("GET /"));
    ASSERT_TRUE(hs.closed());
    (void)hs.take_output();
    hs.accept();
    hs.deny("x");
    hs.tls_established();
    hs.sasl_offer("PLAIN");
    hs.sasl_continue(std::nullopt);
    hs.sasl_complete(std::nullopt);
    hs.feed(greeting);
    EXPECT_TRUE(hs.take_output().empty());
    ASSERT_TRUE(hs.next_event());  // the original Failed
    EXPECT_FALSE(hs.next_event());
}

TEST(VncDownstreamHandshake, InvalidOffersThrow) {
    using ST = SecurityType;
    using VS = VencryptSubtype;
    const auto invalid = [](std::vector<ST> types, std::vector<VS> subtypes) {
        EXPECT_THROW(DownstreamHandshake(offer_of(std::move(types), std::move(subtypes))), std::invalid_argument);
    };
    invalid({}, {});
    invalid({ST::none, ST::none}, {});
    invalid({ST::sasl}, {});  // bare SASL would need a security layer (§4.3)
    invalid({ST::invalid}, {});
    invalid({static_cast<ST>(16)}, {});
    invalid({ST::vencrypt}, {});
    invalid({ST::none}, {VS::x509_plain});
    invalid({ST::vencrypt}, {VS::x509_plain, VS::x509_plain});
    invalid({ST::vencrypt}, {static_cast<VS>(265)});
    invalid({ST::vencrypt}, {static_cast<VS>(19)});
    EXPECT_NO_THROW(DownstreamHandshake(offer_of({ST::vencrypt, ST::vnc_auth, ST::none},
                                                 {VS::none, VS::vnc_auth, VS::plain, VS::tls_none, VS::tls_vnc,
                                                  VS::tls_plain, VS::x509_none, VS::x509_vnc, VS::x509_plain,
                                                  VS::x509_sasl, VS::tls_sasl})));
}

TEST(VncDownstreamHandshake, SaslOfferNeedsAUsableMechlist) {
    for (const std::string& bad : {std::string(), std::string(",PLAIN"), std::string("PLAIN,"),
                                   std::string("PLAIN,,SCRAM-SHA-1"), std::string(301, 'M')}) {
        DownstreamHandshake hs(x509_offer());
        hs.feed(client_vencrypt(263));
        (void)hs.take_output();
        hs.tls_established();
        EXPECT_THROW(hs.sasl_offer(bad), std::invalid_argument) << bad;
        EXPECT_TRUE(hs.take_output().empty());
        EXPECT_NO_THROW(hs.sasl_offer(std::string(300, 'M')));
    }
}

// ---------------------------------------------------------------- malformed input

// Feeds `stream` and expects a Failed with `detail` as the last event, exactly `output` sent,
// and closed().
void expect_failure(const Bytes& stream, const std::string& detail, const Bytes& output, const Gateway& gw = {}) {
    const Outcome out = run_all_chunkings(gw, stream);
    ASSERT_FALSE(out.events.empty());
    EXPECT_EQ(out.events.back(), "failed: " + detail);
    EXPECT_EQ(out.output, output);
    EXPECT_TRUE(out.closed);
    EXPECT_FALSE(out.done);
}

TEST(VncDownstreamHandshake, NonRfbPeersAreRefusedAtTheFirstWrongByte) {
    expect_failure(ascii("GET / HTTP/1.1\r\n\r\n"), "client did not send an RFB version: 'G'", greeting);
    expect_failure(hex("16 03 01 02 00 01"), "client did not send an RFB version: '?'", greeting);  // TLS
    expect_failure(ascii("RFB 003.00x\n"), "client did not send an RFB version: 'RFB 003.00x'", greeting);
    expect_failure(ascii("RFB 003.008\r\n"), "client did not send an RFB version: 'RFB 003.008?'", greeting);
}

TEST(VncDownstreamHandshake, OldVersionsGetTheirOwnFailureForm) {
    // §1.2: 3.3 reads a u32 security type, 3.7 a type list; 0 = failure, a reason follows.
    const std::string r33 = "client speaks RFB 3.3; vmgate needs RFB 3.8";
    expect_failure(ascii("RFB 003.003\n"), r33, cat({greeting, be32(0), framed(r33)}));
    const std::string r35 = "client speaks RFB 3.5; vmgate needs RFB 3.8";  // 3.5 is read as 3.3
    expect_failure(ascii("RFB 003.005\n"), r35, cat({greeting, be32(0), framed(r35)}));
    const std::string r37 = "client speaks RFB 3.7; vmgate needs RFB 3.8";
    expect_failure(ascii("RFB 003.007\n"), r37, cat({greeting, hex("00"), framed(r37)}));
}

TEST(VncDownstreamHandshake, OtherMajorVersionsGetNoBytes) {
    expect_failure(ascii("RFB 004.000\n"), "client speaks RFB 4.0; vmgate needs RFB 3.8", greeting);
    expect_failure(ascii("RFB 000.000\n"), "client speaks RFB 0.0; vmgate needs RFB 3.8", greeting);  // repeater
}

TEST(VncDownstreamHandshake, SecurityTypeNotOffered) {
    for (int type : {0, 1, 2, 5, 16, 20, 255}) {
        const std::string detail = "client chose security type " + std::to_string(type) + ", which was not offered";
        expect_failure(cat({greeting, Bytes{static_cast<std::uint8_t>(type)}}), detail,
                       cat({greeting, hex("01 13"), security_failure(detail)}));
    }
}

TEST(VncDownstreamHandshake, WrongVencryptVersion) {
    // §3.1 row 3: a non-zero status and nothing else.
    expect_failure(cat({greeting, hex("13 00 01")}), "client chose VeNCrypt 0.1; vmgate speaks 0.2",
                   cat({greeting, hex("01 13 00 02 01")}));
    expect_failure(cat({greeting, hex("13 00 00")}), "client chose VeNCrypt 0.0; vmgate speaks 0.2",
                   cat({greeting, hex("01 13 00 02 01")}));
    expect_failure(cat({greeting, hex("13 01 02")}), "client chose VeNCrypt 1.2; vmgate speaks 0.2",
                   cat({greeting, hex("01 13 00 02 01")}));
}

TEST(VncDownstreamHandshake, VencryptSubtypeNotOffered) {
    for (std::uint32_t subtype : {0u, 1u, 2u, 256u, 257u, 260u, 264u, 0xFFFFFFFFu}) {
        const std::string detail = "client chose VeNCrypt subtype " + std::to_string(subtype) + ", which was not offered";
        expect_failure(client_vencrypt(subtype), detail, cat({x509_prefix(), security_failure(detail)}));
    }
}

TEST(VncDownstreamHandshake, TruncatedInputWaits) {
    const Bytes full = cat({client_vencrypt(262), plain("alice", "s3cret")});
    const std::size_t tls_start = client_vencrypt(262).size();
    for (std::size_t n : {std::size_t{0}, std::size_t{4}, std::size_t{11}, std::size_t{12}, std::size_t{13},
                          std::size_t{14}, tls_start - 1}) {
        const Outcome out = run(Gateway{}, {Bytes(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n))});
        EXPECT_TRUE(out.events.empty()) << n;
        EXPECT_FALSE(out.closed || out.done) << n;
    }
    for (std::size_t n : {tls_start, tls_start + 7, full.size() - 1}) {
        const Outcome out = run(Gateway{}, {Bytes(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n))});
        EXPECT_EQ(out.events, std::vector<std::string>{"start_tls x509"}) << n;
        EXPECT_EQ(out.output, cat({x509_prefix(), hex("01")})) << n;
        EXPECT_FALSE(out.closed || out.done) << n;
    }
}

TEST(VncDownstreamHandshake, OversizedPlainCredentials) {
    // Refused as soon as the 8-byte length header arrives.
    const auto fails = [](std::uint32_t user_len, std::uint32_t password_len) {
        const std::string detail = "Plain username/password lengths " + std::to_string(user_len) + "/" +
                                   std::to_string(password_len) + " exceed 255/1024";
        expect_failure(cat({client_vencrypt(262), be32(user_len), be32(password_len)}), detail,
                       cat({x509_prefix(), hex("01"), security_failure(detail)}));
    };
    fails(256, 0);
    fails(0, 1025);
    fails(0xFFFFFFFF, 0xFFFFFFFF);
}

TEST(VncDownstreamHandshake, LongestPlainCredentialsAreAccepted) {
    const std::string user(max_plain_username_len, 'u');
    const std::string password(max_plain_password_len, 'p');
    const Outcome out = run(Gateway{}, {cat({client_vencrypt(262), plain(user, password), hex("01")})});
    EXPECT_EQ(out.events.at(1), "credentials " + user + "/" + password);
    EXPECT_TRUE(out.done);
}

// The gateway's SASL output before a client violation, and the client's stream up to its mechname.
Bytes sasl_prefix() { return cat({x509_prefix(), hex("01"), framed("SCRAM-SHA-256,PLAIN")}); }

void expect_sasl_failure(const Bytes& rest, const std::string& detail, const Gateway& gw = {}, const Bytes& between = {}) {
    expect_failure(cat({client_vencrypt(263), rest}), detail, cat({sasl_prefix(), between, sasl_failure(detail)}), gw);
}

TEST(VncDownstreamHandshake, BadSaslMechanismNames) {
    expect_sasl_failure(be32(0), "SASL mechanism name length 0 outside 1..100");
    expect_sasl_failure(be32(101), "SASL mechanism name length 101 outside 1..100");  // before the name arrives
    expect_sasl_failure(framed("DIGEST-MD5"), "SASL mechanism 'DIGEST-MD5' not offered");
    expect_sasl_failure(framed("PLAI"), "SASL mechanism 'PLAI' not offered");
    expect_sasl_failure(framed("SCRAM-SHA-256,PLAIN"), "SASL mechanism 'SCRAM-SHA-256,PLAIN' not offered");
    expect_sasl_failure(cat({be32(6), ascii("PLAIN"), hex("00")}), "SASL mechanism 'PLAIN?' not offered");
}

TEST(VncDownstreamHandshake, LongestSaslMechanismNameIsAccepted) {
    Gateway gw;
    gw.mechlist = std::string(max_sasl_mechname_len, 'M');
    const Outcome out = run(gw, {cat({client_vencrypt(263), framed(gw.mechlist), be32(0)})});
    EXPECT_EQ(out.events.back(), "sasl_start " + gw.mechlist + " null");
}

TEST(VncDownstreamHandshake, OversizedSaslData) {
    expect_sasl_failure(cat({framed("PLAIN"), be32(max_sasl_data_len + 1)}), "SASL data length 65537 exceeds 65536");
    Gateway stepping;
    stepping.challenges = {std::nullopt};
    expect_sasl_failure(cat({framed("PLAIN"), be32(0), be32(0xFFFFFFFF)}), "SASL data length 4294967295 exceeds 65536",
                        stepping, hex("00000000 00"));
}

TEST(VncDownstreamHandshake, SaslDataWithoutItsNul) {
    // §4.2: newer QEMU refuses a missing padding byte too.
    expect_sasl_failure(cat({framed("PLAIN"), be32(3), ascii("abc")}), "SASL data lacks its NUL padding byte");
    Gateway stepping;
    stepping.challenges = {std::nullopt};
    expect_sasl_failure(cat({framed("PLAIN"), be32(0), be32(1), ascii("x")}), "SASL data lacks its NUL padding byte",
                        stepping, hex("00000000 00"));
}

TEST(VncDownstreamHandshake, LargestSaslDataIsAccepted) {
    Bytes data(max_sasl_data_len, 'x');
    data.back() = 0;
    const Outcome out = run(Gateway{}, {cat({client_vencrypt(263), framed("PLAIN"), be32(max_sasl_data_len), data})});
    ASSERT_EQ(out.events.size(), 3u);
    EXPECT_EQ(out.events.back().substr(0, 18), "sasl_start PLAIN [");
    EXPECT_FALSE(out.closed);
}

TEST(VncDownstreamHandshake, TruncatedSaslMessagesWait) {
    const Bytes full = cat({client_vencrypt(263), framed("PLAIN"), be32(4), ascii("abc"), hex("00")});
    for (std::size_t cut : {std::size_t{2}, std::size_t{4}, std::size_t{8}, std::size_t{12}, std::size_t{16}}) {
        const Outcome out = run(Gateway{}, {Bytes(full.begin(), full.end() - static_cast<std::ptrdiff_t>(cut))});
        EXPECT_EQ(out.events, (std::vector<std::string>{"start_tls x509", "sasl_mechlist"})) << cut;
        EXPECT_EQ(out.output, sasl_prefix()) << cut;
        EXPECT_FALSE(out.closed) << cut;
    }
}

TEST(VncDownstreamHandshake, FloodWhileAwaitingTheDecisionIsBounded) {
    DownstreamHandshake hs(offer_of({SecurityType::none}));
    hs.feed(cat({greeting, hex("01"), Bytes(max_handshake_buffer, 0)}));
    ASSERT_TRUE(hs.next_event());
    EXPECT_FALSE(hs.closed());
    (void)hs.take_output();
    hs.feed(hex("00"));
    const std::string detail = "client sent more than 131072 unparsed bytes during the handshake";
    const auto event = hs.next_event();
    ASSERT_TRUE(event && std::holds_alternative<Failed>(*event));
    EXPECT_EQ(std::get<Failed>(*event).detail, detail);
    EXPECT_EQ(hs.take_output(), security_failure(detail));
    EXPECT_TRUE(hs.closed());
}

TEST(VncDownstreamHandshake, FloodWhileAwaitingTlsGetsNoCleartextReply) {
    DownstreamHandshake hs(x509_offer());
    hs.feed(cat({client_vencrypt(262), Bytes(max_handshake_buffer + 1, 0x16)}));
    (void)hs.next_event();  // StartTls
    const auto event = hs.next_event();
    ASSERT_TRUE(event && std::holds_alternative<Failed>(*event));
    EXPECT_EQ(hs.take_output(), cat({x509_prefix(), hex("01")}));
    EXPECT_TRUE(hs.closed());
}

}  // namespace
}  // namespace vmgate::vnc
