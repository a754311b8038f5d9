#include "auth/sasl_server.hpp"

#include <algorithm>

#include <sasl/sasl.h>

#include <limits>

namespace vmgate::auth {

namespace {

// PLAIN (RFC 4616): [authzid] NUL authcid NUL passwd.
std::string plain_authcid(std::span<const uint8_t> in) {
    const auto first = std::find(in.begin(), in.end(), uint8_t{0});
    if (first == in.end()) return "";
    const auto second = std::find(first + 1, in.end(), uint8_t{0});
    return std::string(first + 1, second);
}

// SCRAM client-first (RFC 5802): gs2-header "n,," then "n=NAME,r=...", with "=2C" and "=3D"
// standing for ',' and '='.
std::string scram_username(std::span<const uint8_t> in) {
    const std::string text(in.begin(), in.end());
    const auto header_end = text.find(',', text.find(',') + 1);
    if (header_end == std::string::npos || text.compare(header_end + 1, 2, "n=") != 0) return "";
    const std::string raw = text.substr(header_end + 3, text.find(',', header_end + 3) - header_end - 3);
    std::string name;
    for (std::size_t i = 0; i < raw.size(); ++i) {
        if (raw.compare(i, 3, "=2C") == 0) { name += ','; i += 2; }
        else if (raw.compare(i, 3, "=3D") == 0) { name += '='; i += 2; }
        else name += raw[i];
    }
    return name;
}

std::string claimed_user_name(std::string_view mechanism, std::span<const uint8_t> in) {
    if (mechanism == "PLAIN") return plain_authcid(in);
    if (mechanism.starts_with("SCRAM-")) return scram_username(in);
    return "";
}


constexpr const char* kRefusal = "authentication failed";
// VeNCrypt Plain carries 32-bit lengths; the handshake machine bounds them, and so does this.
constexpr std::size_t max_password_check_len = 1024;

// Cyrus tells "no data" (NULL) from "empty data" ("" with length 0); so do SPICE and SCRAM.
const char* token_data(const std::optional<std::span<const uint8_t>>& token) {
    if (!token) return nullptr;
    return token->empty() ? "" : reinterpret_cast<const char*>(token->data());
}

unsigned token_size(const std::optional<std::span<const uint8_t>>& token) {
    return token ? static_cast<unsigned>(token->size()) : 0;
}

bool token_fits(const std::optional<std::span<const uint8_t>>& token) {
    return !token || token->size() <= std::numeric_limits<unsigned>::max();
}

std::optional<std::vector<uint8_t>> copy_out(const char* out, unsigned out_len) {
    if (out == nullptr) return std::nullopt;
    const auto* bytes = reinterpret_cast<const uint8_t*>(out);
    return std::vector<uint8_t>(bytes, bytes + out_len);
}

// SASL_USERNAME is "user@realm" when Cyrus qualified it (a configured realm, or one the user
// typed); a bare name belongs to the default realm, the one sasldb looked it up in.
core::Identity split_username(std::string_view username, const std::string& default_realm,
                              std::string mechanism) {
    core::Identity who = core::Identity::parse(username, std::move(mechanism));
    if (who.realm.empty()) who.realm = default_realm;
    return who;
}

}  // namespace

SaslServerSession::SaslServerSession(std::shared_ptr<SaslServerContext> context,
                                     std::string service, std::string local_ip_port,
                                     std::string remote_ip_port, unsigned external_ssf)
    : context_(std::move(context)) {
    if (external_ssf == 0 || !context_) {
        setup_error_ = context_ ? "SASL is only offered inside TLS" : "SASL is not configured";
        return;
    }
    conn_ = new_server_conn(service, context_->configured_realm(), local_ip_port, remote_ip_port,
                            setup_error_);
    if (conn_ && !apply_tls_properties(conn_.get(), external_ssf, setup_error_)) conn_.reset();
}

std::string SaslServerSession::mechanisms() const {
    const char* listed = nullptr;
    if (!conn_ ||
        sasl_listmech(conn_.get(), nullptr, "", ",", "", &listed, nullptr, nullptr) != SASL_OK)
        return "";
    return listed;
}

StepResult SaslServerSession::start(std::string_view mechanism,
                                    std::optional<std::span<const uint8_t>> client_in) {
    if (!conn_) return refuse(setup_error_);
    if (phase_ != Phase::ready) return refuse("SASL exchange already started");
    if (!token_fits(client_in)) return refuse("client data too large");
    phase_ = Phase::started;
    if (client_in) claimed_user_ = claimed_user_name(mechanism, *client_in);
    const std::string mech(mechanism);  // Cyrus wants it NUL-terminated
    const char* out = nullptr;
    unsigned out_len = 0;
    const int rc = sasl_server_start(conn_.get(), mech.c_str(), token_data(client_in),
                                     token_size(client_in), &out, &out_len);
    return conclude(rc, out, out_len);
}

StepResult SaslServerSession::step(std::optional<std::span<const uint8_t>> client_in) {
    if (phase_ != Phase::started) return refuse("no SASL exchange in progress");
    if (!token_fits(client_in)) return refuse("client data too large");
    const char* out = nullptr;
    unsigned out_len = 0;
    const int rc =
        sasl_server_step(conn_.get(), token_data(client_in), token_size(client_in), &out, &out_len);
    return conclude(rc, out, out_len);
}

StepResult SaslServerSession::check_password(std::string_view user, std::string_view password,
                                             std::string label) {
    if (!conn_) return refuse(setup_error_);
    if (phase_ != Phase::ready) return refuse("SASL exchange already started");
    if (user.size() > max_password_check_len || password.size() > max_password_check_len)
        return refuse("user name or password too long");
    phase_ = Phase::started;
    claimed_user_ = std::string(user);
    const int rc = sasl_checkpass(conn_.get(), user.data(), static_cast<unsigned>(user.size()),
                                  password.data(), static_cast<unsigned>(password.size()));
    return conclude(rc, nullptr, 0, std::move(label));
}

// `label`: the identity's mechanism when no SASL mechanism ran (a password check).
StepResult SaslServerSession::conclude(int rc, const char* out, unsigned out_len, std::string label) {
    if (rc == SASL_CONTINUE) return {StepResult::Status::more, copy_out(out, out_len), "", ""};
    if (rc != SASL_OK) return refuse(error_detail(conn_.get()));
    std::string detail;
    if (!take_identity(detail, std::move(label))) return refuse(detail);
    phase_ = Phase::done;
    return {StepResult::Status::ok, copy_out(out, out_len), "", ""};
}

StepResult SaslServerSession::refuse(std::string detail) {
    phase_ = Phase::failed;
    identity_ = {};
    return {StepResult::Status::failed, std::nullopt, kRefusal, std::move(detail)};
}

bool SaslServerSession::take_identity(std::string& detail, std::string label) {
    const void* ssf = nullptr;
    const void* username = nullptr;
    const void* mechanism = label.empty() ? nullptr : label.c_str();
    if (sasl_getprop(conn_.get(), SASL_SSF, &ssf) != SASL_OK ||
        sasl_getprop(conn_.get(), SASL_USERNAME, &username) != SASL_OK ||
        (label.empty() && sasl_getprop(conn_.get(), SASL_MECHNAME, &mechanism) != SASL_OK) ||
        username == nullptr || mechanism == nullptr) {
        detail = "Cyrus SASL gave no user name: " + error_detail(conn_.get());
        return false;
    }
    // max_ssf 0 should rule a security layer out; the relay depends on it, so make sure.
    if (*static_cast<const sasl_ssf_t*>(ssf) != 0) {
        detail = "a SASL security layer was negotiated";
        return false;
    }
    identity_ = split_username(static_cast<const char*>(username), context_->default_realm(),
                               static_cast<const char*>(mechanism));
    // saslauthd verified the password of the local account "bob" whatever realm was typed:
    // "bob@partner.org" must not become a principal a rule for partner.org would admit.
    if (!context_->backend_checks_realm() && identity_.realm != context_->default_realm()) {
        detail = "realm \"" + identity_.realm + "\" refused: saslauthd checks local accounts only (realm \"" +
                 context_->default_realm() + "\")";
        identity_ = {};
        return false;
    }
    return true;
}

}  // namespace vmgate::auth
