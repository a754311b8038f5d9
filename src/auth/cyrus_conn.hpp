// Owning handle for a Cyrus SASL connection, shared by the auth/ code that talks to libsasl2.
// Internal to auth/: nothing outside this folder includes <sasl/sasl.h>.
#pragma once

#include <memory>
#include <string>

struct sasl_conn;  // Cyrus' opaque sasl_conn_t

namespace vmgate::auth {

struct CyrusConnDeleter {
    void operator()(sasl_conn* conn) const noexcept;
};
using CyrusConn = std::unique_ptr<sasl_conn, CyrusConnDeleter>;

// sasl_server_new. realm "" lets Cyrus qualify bare user names with its own default (the host
// name); "" addresses mean unknown. Returns nullptr and sets error on failure.
CyrusConn new_server_conn(const std::string& service, const std::string& realm,
                          const std::string& local_ip_port, const std::string& remote_ip_port,
                          std::string& error);

// Security properties of spice-server over TLS (spice-protocol.md §5.3): the TLS cipher strength
// is the external SSF and max_ssf 0 forbids a SASL security layer, so the bytes after the
// handshake stay plain SPICE that the relay can forward untouched.
bool apply_tls_properties(sasl_conn* conn, unsigned external_ssf, std::string& error);

// Cyrus' description of the last error on conn (sasl_errdetail), for logs only.
std::string error_detail(sasl_conn* conn);

}  // namespace vmgate::auth
