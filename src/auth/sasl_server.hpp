// One Cyrus SASL server exchange: the authentication of one downstream SPICE (or VNC) channel.
//
// Transport-neutral: the SPICE codec frames the bytes (trailing NULs, length 0 = NULL, the
// "complete" byte); this class only sees client and server tokens. A session is used by one
// thread at a time, like the connection that owns it.
#pragma once

#include "auth/cyrus_conn.hpp"
#include "auth/sasl_context.hpp"
#include "core/identity.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace vmgate::auth {

struct StepResult {
    enum class Status { ok, more, failed };
    Status status = Status::failed;
    std::optional<std::vector<uint8_t>> server_out;  // nullopt: no data (not even empty)
    // "authentication failed" for every refusal: the text never says whether the user exists.
    // (SCRAM's exchange itself still differs: Cyrus ends it at once for an unknown user.)
    std::string error;
    std::string detail;  // Cyrus' own explanation (sasl_errdetail), for the audit log only
};

class SaslServerSession {
public:
    // service: "spice" (the name saslauthd/PAM sees). Addresses as Cyrus wants them,
    // "127.0.0.1;5900". external_ssf: the TLS cipher bits; 0 means no TLS, and then nothing is
    // offered, because credentials never cross a connection without TLS.
    SaslServerSession(std::shared_ptr<SaslServerContext> context, std::string service,
                      std::string local_ip_port, std::string remote_ip_port, unsigned external_ssf);

    // "SCRAM-SHA-256,PLAIN": what Cyrus offers from [sasl] mech_list; "" without TLS.
    std::string mechanisms() const;

    // client_in: nullopt = no initial response; an empty span = an empty one.
    StepResult start(std::string_view mechanism, std::optional<std::span<const uint8_t>> client_in);
    StepResult step(std::optional<std::span<const uint8_t>> client_in);

    // A user name and password received whole (VNC's VeNCrypt Plain): checked by the configured
    // password backend (sasldb through auxprop, or saslauthd) with no mechanism exchange, so it
    // works whatever mech_list says. Only inside TLS, like everything here. The identity's
    // mechanism is `label`.
    StepResult check_password(std::string_view user, std::string_view password, std::string label);

    // After a step returned ok: who authenticated. Empty before.
    const core::Identity& identity() const { return identity_; }
    // The user name the client's first message claimed (PLAIN authcid, SCRAM n=), so that the
    // audit record of a failed attempt says whose password was tried. Not authenticated.
    const std::string& claimed_user() const { return claimed_user_; }

private:
    enum class Phase { ready, started, done, failed };

    StepResult conclude(int rc, const char* out, unsigned out_len, std::string label = "");
    StepResult refuse(std::string detail);
    bool take_identity(std::string& detail, std::string label);

    std::shared_ptr<SaslServerContext> context_;
    CyrusConn conn_;           // null without TLS or when Cyrus could not open a connection
    std::string setup_error_;  // why conn_ is null
    Phase phase_ = Phase::ready;
    core::Identity identity_;
    std::string claimed_user_;
};

}  // namespace vmgate::auth
