#include "doctor/cert_checks.hpp"


#include "core/cidr.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <memory>
#include <optional>

namespace vmgate::doctor {
namespace {

struct X509Free {
    void operator()(X509* x) const { X509_free(x); }
};
struct NamesFree {
    void operator()(GENERAL_NAMES* n) const { GENERAL_NAMES_free(n); }
};

std::string lower(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

std::string asn1_text(const ASN1_STRING* s) {
    return {reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)), static_cast<std::size_t>(ASN1_STRING_length(s))};
}

std::chrono::system_clock::time_point time_of(const ASN1_TIME* t) {
    std::tm tm{};
    ASN1_TIME_to_tm(t, &tm);
    return std::chrono::system_clock::from_time_t(timegm(&tm));
}

std::string common_name(X509* cert) {
    const X509_NAME* subject = X509_get_subject_name(cert);
    const int index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    if (index < 0) return "";
    return asn1_text(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index)));
}

void read_alt_names(X509* cert, CertificateFacts& facts) {
    std::unique_ptr<GENERAL_NAMES, NamesFree> names(
        static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
    if (!names) return;
    for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
        const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
        if (name->type == GEN_DNS) {
            facts.dns_names.push_back(asn1_text(name->d.dNSName));
        } else if (name->type == GEN_IPADD) {
            const std::string bytes = asn1_text(name->d.iPAddress);
            core::IpAddress ip;
            if (bytes.size() == 4) {
                ip.bytes[10] = ip.bytes[11] = 0xff;  // IPv4 held as ::ffff:a.b.c.d
                std::copy(bytes.begin(), bytes.end(), ip.bytes.begin() + 12);
            } else if (bytes.size() == 16) {
                std::copy(bytes.begin(), bytes.end(), ip.bytes.begin());
            } else {
                continue;
            }
            facts.ip_addresses.push_back(ip.to_string());
        }
    }
}

// RFC 6125: case-insensitive; "*" only as the whole leftmost label, matching one label.
bool dns_matches(std::string_view pattern_text, std::string_view host_text) {
    const std::string pattern = lower(pattern_text);
    const std::string host = lower(host_text);
    if (!pattern.starts_with("*.")) return pattern == host;
    const std::size_t dot = host.find('.');
    return dot != std::string::npos && dot > 0 && host.substr(dot) == pattern.substr(1);
}

std::string names_text(const CertificateFacts& cert) {
    std::vector<std::string> all;
    for (const auto& n : cert.dns_names) all.push_back("DNS:" + n);
    for (const auto& n : cert.ip_addresses) all.push_back("IP:" + n);
    if (all.empty()) return "no subjectAltName, CN " + (cert.common_name.empty() ? "none" : cert.common_name);
    return fmt::format("{}", fmt::join(all, ", "));
}

bool has_plain_dns_name(const CertificateFacts& cert) {
    return std::any_of(cert.dns_names.begin(), cert.dns_names.end(),
                       [](const std::string& n) { return !n.starts_with("*"); });
}

std::string reissue_fix(const std::string& path, const std::string& names) {
    return fmt::format("issue {} again with subjectAltName {} (keeping its other names), then vmgate reload", path,
                       names);
}

// SNI names are VM.SUFFIX: a wildcard covers them all, also the libvirt inventory's domains,
// which the file does not name.
Findings check_sni_listener(const CertificateFacts& cert, const std::string& path, const core::Config& config,
                            const core::ListenerConfig& l) {
    if (l.sni_suffix.empty()) return {};
    const std::string wildcard = "*" + l.sni_suffix;
    if (std::any_of(cert.dns_names.begin(), cert.dns_names.end(),
                    [&](const std::string& n) { return lower(n) == lower(wildcard); }))
        return {};
    std::vector<std::string> unnamed;
    for (const auto& vm : config.vms)
        if (!certificate_names(cert, vm.name + l.sni_suffix)) unnamed.push_back(vm.name + l.sni_suffix);
    const bool inventory = config.libvirt.inventory != core::LibvirtConfig::Inventory::none;
    if (unnamed.empty() && !inventory) return {};
    const std::string missing = unnamed.empty() ? "the libvirt inventory's domains"
                                                : fmt::format("{}", fmt::join(unnamed, ", "));
    return {{Severity::error, Area::tls, "tls-cert-name", path,
             fmt::format("route = \"sni\" listener {} needs {} in the certificate, which names {}: clients would "
                         "refuse it for {}",
                         l.address, wildcard, names_text(cert), missing),
             reissue_fix(path, "DNS:" + wildcard)}};
}

// Through a CONNECT proxy, spice-gtk checks the certificate against the CONNECT host (VM or
// VM.suffix), not the proxy's address, unless the client pins the certificate's subject as
// vmgate vv --proxy files do. So unnamed VMs are a warning, with both ways out.
Findings check_connect_listener(const CertificateFacts& cert, const std::string& path, const core::Config& config,
                                const core::ListenerConfig& l) {
    const std::string suffix = l.connect_suffix;
    if (!suffix.empty() && std::any_of(cert.dns_names.begin(), cert.dns_names.end(),
                                       [&](const std::string& n) { return lower(n) == lower("*" + suffix); }))
        return {};
    std::vector<std::string> unnamed;
    for (const auto& vm : config.vms)
        if (!certificate_names(cert, vm.name) && (suffix.empty() || !certificate_names(cert, vm.name + suffix)))
            unnamed.push_back(vm.name);
    const bool inventory = config.libvirt.inventory != core::LibvirtConfig::Inventory::none;
    if (unnamed.empty() && !inventory) return {};
    const std::string missing = unnamed.empty() ? "the libvirt inventory's domains"
                                                : fmt::format("{}", fmt::join(unnamed, ", "));
    const std::string names = suffix.empty() ? "each VM's name" : "DNS:*" + suffix;
    return {{Severity::warning, Area::tls, "tls-cert-name", path,
             fmt::format("route = \"connect\" listener {}: clients check the certificate against the CONNECT host "
                         "(the VM{}), and it names none for {} ({}); only clients that pin the certificate's subject "
                         "(host-subject, as vmgate vv --proxy files do) get through",
                         l.address, suffix.empty() ? "" : " or VM" + suffix, missing, names_text(cert)),
             "hand out vmgate vv --proxy files, or " + reissue_fix(path, names)}};
}

std::optional<Finding> check_fixed_listener(const CertificateFacts& cert, const std::string& path,
                                            const core::ListenerConfig& l) {
    const std::string host(core::unbracketed(l.host));
    if (core::is_unspecified_host(host)) return std::nullopt;  // judged once for all of them, below
    if (certificate_names(cert, host)) return std::nullopt;
    if (core::IpAddress::parse(host))
        return Finding{Severity::warning, Area::tls, "tls-cert-name", path,
                       fmt::format("listener {} is on {}, which the certificate does not name ({}): clients that "
                                   "connect to that address fail the host name check unless they pin the "
                                   "certificate's subject (host-subject, as vmgate vv files do)",
                                   l.address, host, names_text(cert)),
                       reissue_fix(path, "IP:" + host)};
    return Finding{Severity::error, Area::tls, "tls-cert-name", path,
                   fmt::format("listener {} is on host name {}, which the certificate does not name ({}): clients "
                               "would refuse it",
                               l.address, host, names_text(cert)),
                   reissue_fix(path, "DNS:" + host)};
}

}  // namespace

std::variant<CertificateFacts, std::string> read_certificate(std::string_view pem) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
    std::unique_ptr<X509, X509Free> cert(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
    if (!cert) return std::string("no PEM certificate in it");
    CertificateFacts facts;
    facts.common_name = common_name(cert.get());
    read_alt_names(cert.get(), facts);
    facts.not_before = time_of(X509_get0_notBefore(cert.get()));
    facts.not_after = time_of(X509_get0_notAfter(cert.get()));
    return facts;
}

Findings check_certificate_dates(const CertificateFacts& cert, const std::string& path,
                                 std::chrono::system_clock::time_point now) {
    const auto date = [](std::chrono::system_clock::time_point t) {
        const std::time_t seconds = std::chrono::system_clock::to_time_t(t);
        std::tm tm{};
        gmtime_r(&seconds, &tm);
        return fmt::format("{:04}-{:02}-{:02} {:02}:{:02} UTC", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                           tm.tm_hour, tm.tm_min);
    };
    const std::string fix = fmt::format("renew the certificate into {} (same names, same key or a new one in [tls] "
                                        "key), then vmgate reload",
                                        path);
    if (now >= cert.not_after)
        return {{Severity::error, Area::tls, "tls-cert-expiry", path,
                 "the certificate expired on " + date(cert.not_after) + ": every client refuses it", fix}};
    if (now < cert.not_before)
        return {{Severity::error, Area::tls, "tls-cert-expiry", path,
                 "the certificate is not valid before " + date(cert.not_before) + ": clients refuse it until then",
                 fix}};
    if (cert.not_after - now < expiry_warning_time) {
        const auto days = std::chrono::duration_cast<std::chrono::days>(cert.not_after - now).count();
        return {{Severity::warning, Area::tls, "tls-cert-expiry", path,
                 fmt::format("the certificate expires on {}, in {} day(s)", date(cert.not_after), days), fix}};
    }
    return {};
}

bool certificate_names(const CertificateFacts& cert, std::string_view host_text) {
    const std::string host(core::unbracketed(host_text));
    if (const auto ip = core::IpAddress::parse(host)) {
        return std::any_of(cert.ip_addresses.begin(), cert.ip_addresses.end(),
                           [&](const std::string& n) { return core::IpAddress::parse(n) == ip; });
    }
    if (cert.dns_names.empty()) return !cert.common_name.empty() && dns_matches(cert.common_name, host);
    return std::any_of(cert.dns_names.begin(), cert.dns_names.end(),
                       [&](const std::string& n) { return dns_matches(n, host); });
}

Findings check_certificate_names(const CertificateFacts& cert, const std::string& path, const core::Config& config) {
    Findings out;
    bool on_every_address = false;
    for (const auto& l : config.listeners) {
        if (!l.tls) continue;
        if (l.route == core::Route::sni || l.route == core::Route::connect) {
            auto found = l.route == core::Route::sni ? check_sni_listener(cert, path, config, l)
                                                     : check_connect_listener(cert, path, config, l);
            out.insert(out.end(), found.begin(), found.end());
        } else if (auto found = check_fixed_listener(cert, path, l)) {
            out.push_back(std::move(*found));
        } else if (core::is_unspecified_host(l.host)) {
            on_every_address = true;
        }
    }
    if (on_every_address && !has_plain_dns_name(cert))
        out.push_back({Severity::warning, Area::tls, "tls-cert-name", path,
                       fmt::format("listeners on every address, and the certificate names no DNS host name for "
                                   "clients to connect to ({}); vmgate vv has no host name to write",
                                   names_text(cert)),
                       reissue_fix(path, "DNS:gateway.example.com (the name clients use)")});
    return out;
}

}  // namespace vmgate::doctor
