// vmgate's own SASL back ends: which sasldb and PAM services its [sasl] section needs.
#pragma once

#include "core/config.hpp"
#include "doctor/finding.hpp"

#include <functional>
#include <string>
#include <vector>

namespace vmgate::doctor {

inline constexpr const char* cyrus_default_sasldb = "/etc/sasldb2";

// The sasldb vmgate reads: [sasl] sasldb, or Cyrus' default. "" when no listener checks
// passwords, or when they live behind saslauthd.
std::string sasldb_in_use(const core::Config& config);

// The SASL service names saslauthd passes to PAM as the PAM service ([sasl] service_spice for
// SPICE listeners that offer SASL, service_vnc for VNC listeners that offer SASL or passwords).
// Empty unless pwcheck_method = "saslauthd".
std::vector<std::string> pam_services_needed(const core::Config& config);

// Each needed service without a file in `pam_dir` (as `exists` says) is an error: PAM falls
// back to its "other" service, which denies everyone on Debian.
Findings check_pam_services(const core::Config& config, const std::string& pam_dir,
                            const std::function<bool(const std::string& path)>& exists);

}  // namespace vmgate::doctor
