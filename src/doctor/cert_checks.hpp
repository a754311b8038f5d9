// The server certificate's dates and names against the listeners that present it.
#pragma once

#include "core/config.hpp"
#include "doctor/finding.hpp"

#include <chrono>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace vmgate::doctor {

struct CertificateFacts {
    std::string common_name;                // the subject's CN ("" when none)
    std::vector<std::string> dns_names;     // subjectAltName DNS entries, as written
    std::vector<std::string> ip_addresses;  // subjectAltName IP entries, as text
    std::chrono::system_clock::time_point not_before;
    std::chrono::system_clock::time_point not_after;
};

// The first certificate of a PEM text (OpenSSL), or why there is none.
std::variant<CertificateFacts, std::string> read_certificate(std::string_view pem);

inline constexpr auto expiry_warning_time = std::chrono::days{30};

// Expired or not yet valid: error; expiring within expiry_warning_time: warning.
Findings check_certificate_dates(const CertificateFacts& cert, const std::string& path,
                                 std::chrono::system_clock::time_point now);

// Whether the certificate names `host` the way TLS clients check it: a DNS name against the
// DNS subjectAltNames (a leading "*." label matches exactly one label), or the CN when there
// are none; an IP address against the IP subjectAltNames.
bool certificate_names(const CertificateFacts& cert, std::string_view host);

// Every TLS listener of `config` against the names: a listener on a host name must be named
// (error), one on an IP address should be (warning: only clients that pin host-subject get
// through), one on every address needs a DNS name for clients to use (warning), and a
// route = "sni" listener needs *.SUFFIX or VM.SUFFIX for every VM (error).
Findings check_certificate_names(const CertificateFacts& cert, const std::string& path, const core::Config& config);

}  // namespace vmgate::doctor
