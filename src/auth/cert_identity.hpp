// Who a verified TLS client certificate names, by the field [tls] client_identity chooses. The
// certificate must already have been verified against the client CA (net::TlsStream does that);
// this only reads it, and refuses a field that could name a user ambiguously or deceptively.
#pragma once

#include "core/config.hpp"
#include "core/identity.hpp"

#include <openssl/types.h>

#include <string>
#include <string_view>
#include <variant>

namespace vmgate::auth {

// Identity::mechanism of every identity taken from a certificate.
inline constexpr std::string_view certificate_mechanism = "certificate";

// The identity CERT names, or why it names none, in words for the audit log. cn: the user is
// the subject's only CN, in default_realm. email and upn: the first such subjectAltName, split
// at its last '@' into user and realm (a value without '@' is in default_realm). Refused: a
// missing field, more than one CN, a NUL byte, a control character or space, an empty user or
// realm, an '@' in a CN.
std::variant<core::Identity, std::string> identity_from_certificate(X509* cert, core::CertIdentityField field,
                                                                    const std::string& default_realm);

// The subject as one line in RFC 2253 form ("CN=anne,O=Example"), UTF-8 with control characters
// escaped, for audit records.
std::string certificate_subject_text(X509* cert);

}  // namespace vmgate::auth
