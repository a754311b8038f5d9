// The remote-viewer connection file `vmgate vv` writes (virt-viewer's [virt-viewer] GKeyFile
// group, type=spice) and the choices behind it: which listener of the configuration a client
// should connect to for a VM, and under which host name. Pure: no files, no daemon.
#pragma once

#include "core/config.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vmgate::cli {

struct VvFile {
    std::string host;
    std::uint16_t tls_port = 0;
    std::string ca_pem;        // written with its newlines as "\n", as GKeyFile escapes them
    std::string host_subject;  // spice-gtk's cert-subject form (server_certificate.hpp)
    std::string title;
    std::string username;  // "" = not written (the user types it)
    std::string password;  // a one-time ticket; "" = none. A file with one deletes itself.
    // "http://GATEWAY:PORT" of a route = "connect" listener; host is then the VM, sent as the
    // CONNECT host; "" = connect to host directly.
    std::string proxy;
};

// The file's text: [virt-viewer] with type, host, tls-port, ca, host-subject, title,
// secure-channels=all (no channel ever in clear), then proxy, username, password and
// delete-this-file=1 when they apply.
std::string render_vv(const VvFile& file);

// value as a GKeyFile string: backslash, newline, tab and carriage return escaped, a leading
// space written as "\s" (GKeyFile strips leading spaces otherwise).
std::string keyfile_string(std::string_view value);

// The SPICE TLS listener a client of vm uses: routed to vm (route fixed with vm = VM, preferred),
// by server name (route sni) or by CONNECT host (route connect, last: the client needs its proxy
// setting). proxy: a route connect listener only. ticket: one that offers tickets alone, since
// spice-gtk always chooses SASL when a server offers it; otherwise one that offers SASL. nullptr
// with error in words when the configuration has none.
const core::ListenerConfig* choose_listener(const core::Config& config, std::string_view vm, bool ticket, bool proxy,
                                            std::string& error);

// The host name clients connect to on listener for vm (route connect: the proxy's host). route
// sni: vm + sni_suffix, the name that routes there (host_override must then be empty). Otherwise:
// host_override, else the listener's address, else (address 0.0.0.0 or [::])
// certificate_dns_name; nullopt with error when nothing names a host.
std::optional<std::string> client_host(const core::ListenerConfig& listener, std::string_view vm,
                                       std::string_view host_override, std::string_view certificate_dns_name,
                                       std::string& error);

// The proxy= value for a route connect listener reached at host: "http://HOST:PORT", an IPv6
// address in brackets.
std::string proxy_url(std::string_view host, std::uint16_t port);

// Whether vm can be the host of a CONNECT request (spice-gtk sends the file's host there): a
// host name's letters, digits, '-', '.' and '_'.
bool usable_as_connect_host(std::string_view vm);

}  // namespace vmgate::cli
