// What a remote-viewer connection file says about the gateway's TLS certificate: the CA that
// clients must trust, the subject they pin, and a DNS name to connect to. Read from the [tls]
// cert file (and --ca), checked the way spice-gtk will check them.
#pragma once

#include <openssl/types.h>

#include <optional>
#include <string>

namespace vmgate::cli {

struct ServerCertificate {
    std::string ca_pem;        // the trusted CA certificate(s), PEM
    std::string host_subject;  // the server certificate's subject in spice-gtk's host-subject form
    std::string dns_name;      // its first DNS subjectAltName that is no wildcard; "" if none
};

// cert_path holds the server certificate, possibly followed by its chain. ca_path holds the CA
// certificate(s) that sign it; "" takes the self-signed root at the end of the chain in
// cert_path, and without one there is nothing to trust (error says to give --ca). The server
// certificate must verify against that CA for TLS server use, as spice-gtk verifies it.
std::optional<ServerCertificate> read_server_certificate(const std::string& cert_path, const std::string& ca_path,
                                                         std::string& error);

// The subject as spice-gtk's host-subject (cert-subject) parser reads it: "KEY=value" for each
// attribute in certificate order, comma-separated, '\' and ',' in values escaped with '\', keys
// by their OpenSSL short names (C, ST, L, O, OU, CN, ...). spice-gtk rebuilds a name from that
// text, one attribute per RDN, and compares it with the certificate's (X509_NAME_cmp), so a
// subject with a multi-valued RDN or an empty value cannot be written and is refused.
std::optional<std::string> spice_host_subject(X509* cert, std::string& error);

}  // namespace vmgate::cli
