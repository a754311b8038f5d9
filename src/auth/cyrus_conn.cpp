#include "auth/cyrus_conn.hpp"

#include <sasl/sasl.h>

namespace vmgate::auth {

namespace {

const char* or_null(const std::string& text) { return text.empty() ? nullptr : text.c_str(); }

// Success data lets SCRAM's server-final travel with the SASL_OK reply, the way spice-server
// frames it ("complete = 1" plus data), instead of costing an extra empty client step.
constexpr unsigned kServerFlags = SASL_SUCCESS_DATA;

// spice-server's value; irrelevant while no security layer can be negotiated.
constexpr unsigned kMaxBufferSize = 8192;

}  // namespace

void CyrusConnDeleter::operator()(sasl_conn* conn) const noexcept { sasl_dispose(&conn); }

CyrusConn new_server_conn(const std::string& service, const std::string& realm,
                          const std::string& local_ip_port, const std::string& remote_ip_port,
                          std::string& error) {
    sasl_conn_t* raw = nullptr;
    const int rc = sasl_server_new(service.c_str(), nullptr, or_null(realm), or_null(local_ip_port),
                                   or_null(remote_ip_port), nullptr, kServerFlags, &raw);
    CyrusConn conn(raw);
    if (rc != SASL_OK) {
        error = std::string("sasl_server_new: ") + sasl_errstring(rc, nullptr, nullptr);
        return nullptr;
    }
    return conn;
}

bool apply_tls_properties(sasl_conn* conn, unsigned external_ssf, std::string& error) {
    const sasl_ssf_t ssf = external_ssf;
    sasl_security_properties_t props{};
    props.min_ssf = 0;
    props.max_ssf = 0;
    props.maxbufsize = kMaxBufferSize;
    props.security_flags = 0;
    if (sasl_setprop(conn, SASL_SSF_EXTERNAL, &ssf) != SASL_OK ||
        sasl_setprop(conn, SASL_SEC_PROPS, &props) != SASL_OK) {
        error = "sasl_setprop: " + error_detail(conn);
        return false;
    }
    return true;
}

std::string error_detail(sasl_conn* conn) {
    const char* detail = conn != nullptr ? sasl_errdetail(conn) : nullptr;
    return detail != nullptr ? detail : "";
}

}  // namespace vmgate::auth
