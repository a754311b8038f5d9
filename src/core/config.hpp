// The configuration model: TOML (design.md §Configuration) parsed into plain, validated structs.
// Nothing outside core/config.cpp knows about TOML.
#pragma once

#include "core/cidr.hpp"
#include "core/civil_time.hpp"

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vmgate::core {

enum class Protocol { spice, vnc };
enum class Route { fixed, sni, connect };
enum class ClientCertMode { none, optional, required };
// The client certificate field that names the user: the subject CN, the first rfc822Name
// subjectAltName (an email address), or the first Microsoft UPN otherName subjectAltName.
enum class CertIdentityField { cn, email, upn };
enum class SeatPolicy { takeover, deny, same_user };
// How a downstream client may authenticate on a listener. spice-gtk built with SASL always picks
// SASL when it is offered, so ticket users need a listener that offers tickets alone.
// VNC only: `password` (VeNCrypt X509Plain, checked by Cyrus SASL) and `certificate` (VeNCrypt
// X509None, the identity taken from the TLS client certificate).
enum class AuthMethod { sasl, ticket, password, certificate };

// Where a value was written, for error messages and audit reasons ("rule #2, line 41").
struct SourceLocation {
    int line = 0;
    int column = 0;
};

struct ListenerConfig {
    Protocol protocol = Protocol::spice;
    std::string address;  // as written: "HOST:PORT" or "[V6]:PORT"
    std::string host;     // parsed from address
    std::uint16_t port = 0;
    bool tls = true;
    Route route = Route::fixed;
    std::string vm;          // Route::fixed: the VM every connection goes to
    std::string sni_suffix;  // Route::sni: stripped from the SNI name; the first label is the VM
    // Route::connect: the VM is the host of the client's HTTP CONNECT request, with this suffix
    // (if it ends with it) taken off.
    std::string connect_suffix;
    std::vector<AuthMethod> auth{AuthMethod::sasl, AuthMethod::ticket};  // in the order offered
    SourceLocation where;

    bool offers(AuthMethod m) const;
};

struct UpstreamConfig {
    // qmp: vmgate asks QEMU over its QMP monitor for each new display connection (getfd with a
    // socketpair end, then add_client skipauth=true), so QEMU's display needs no password and no
    // listening socket.
    // libvirt: vmgate asks libvirt (virDomainOpenGraphicsFD with SKIPAUTH) for each new display
    // connection of the domain; the same idea, through libvirtd.
    enum class Kind { unix_socket, tcp, qmp, libvirt };
    Kind kind = Kind::unix_socket;
    std::string text;           // as written, e.g. "unix:/run/vmgate/x.sock"
    std::string path;           // Kind::unix_socket: the display socket; Kind::qmp: the QMP socket
    std::string domain;         // Kind::libvirt: the domain's name or UUID
    std::string uri;            // Kind::libvirt: the connection ([libvirt] uri)
    std::string host;           // Kind::tcp
    std::uint16_t port = 0;     // Kind::tcp
    std::string password_file;  // Kind::tcp: file holding QEMU's display password (optional)
};

struct AllowRule {
    std::vector<std::string> users;   // "x" (default realm or none) or "x@realm" (exact)
    std::vector<std::string> groups;  // [groups] names, or "unix:NAME" for a local Unix group
    std::optional<DaySet> days;       // unset: every day
    std::optional<TimeWindow> hours;  // unset: all day; may wrap past midnight
    std::optional<Date> from;         // inclusive
    std::optional<Date> until;        // inclusive
    std::vector<Cidr> sources;        // empty: any source
    bool view_only = false;
    std::vector<std::string> deny_channels;  // SPICE channel names
    SourceLocation where;
};

struct VmConfig {
    std::string name;
    std::optional<UpstreamConfig> spice;
    std::optional<UpstreamConfig> vnc;
    SeatPolicy seat = SeatPolicy::takeover;
    std::chrono::seconds idle_timeout{0};  // 0: none
    std::chrono::seconds max_session{0};   // 0: none
    std::vector<AllowRule> allow;          // empty: nobody (deny by default)
    SourceLocation where;
};

struct GatewayConfig {
    std::string state_dir = "/var/lib/vmgate";
    std::string audit_log = "-";  // "-" = stderr
    std::string metrics;          // "" = off
    std::string admin_socket = "/run/vmgate/admin.sock";
    std::chrono::seconds handshake_timeout{10};  // TLS + link + auth must finish within this
    unsigned max_handshakes = 256;               // connections in their handshake at once
    unsigned max_handshakes_per_source = 32;     // ... from one source address
    unsigned workers = 0;                        // 0 = one per CPU
    unsigned ticket_key_stock = 32;              // SPICE ticket keys made ahead, for bursts of logins
};

struct TlsConfig {
    std::string cert;
    std::string key;
    std::string client_ca;
    ClientCertMode client_cert = ClientCertMode::none;
    CertIdentityField client_identity = CertIdentityField::cn;
};

struct SaslConfig {
    std::vector<std::string> mech_list{"SCRAM-SHA-256", "PLAIN"};
    std::string sasldb;                     // "" = Cyrus default (/etc/sasldb2)
    std::string pwcheck_method = "auxprop"; // or "saslauthd"
    std::string saslauthd_path;             // saslauthd socket; "" = /var/run/saslauthd/mux
    std::string service_spice = "spice";
    std::string service_vnc = "vnc";
    std::string default_realm;              // "" = host name, as Cyrus does
    bool allow_weak_mechanisms = false;     // DIGEST-MD5, CRAM-MD5, ... refused unless true

    bool operator==(const SaslConfig&) const = default;
    // default_realm, or the host name when it is empty (what Cyrus falls back to).
    std::string realm_or_host_name() const;
};

// [libvirt]: the connection libvirt: upstreams use, and which of its domains are vmgate VMs.
struct LibvirtConfig {
    static constexpr std::string_view default_uri = "qemu:///system";
    // none: no inventory (libvirt: upstreams still work); all: every domain with a SPICE or VNC
    // device; named: the domains in `vms` (names or UUIDs).
    enum class Inventory { none, all, named };
    std::string uri{default_uri};
    Inventory inventory = Inventory::none;
    std::vector<std::string> vms;  // Inventory::named

    bool operator==(const LibvirtConfig&) const = default;
    // Whether `name_or_uuid` is a domain of the inventory (by the name it was listed with).
    bool lists(std::string_view name_or_uuid) const;
};

struct Config {
    std::string path;  // file it was read from ("" for text)
    GatewayConfig gateway;
    LibvirtConfig libvirt;
    TlsConfig tls;
    SaslConfig sasl;
    std::map<std::string, std::vector<std::string>> groups;
    std::vector<ListenerConfig> listeners;
    std::vector<VmConfig> vms;

    const VmConfig* find_vm(std::string_view name) const;
};

struct ConfigError {
    std::string file;
    int line = 0;
    int column = 0;
    std::string key;  // dotted path, e.g. "vm[1].allow[0].hours"
    std::string message;

    // "FILE:LINE:COL: KEY: MESSAGE"
    std::string to_string() const;
};

struct ConfigResult {
    std::optional<Config> config;  // set iff errors is empty
    std::vector<ConfigError> errors;
};

ConfigResult parse_config(std::string_view toml_text, std::string_view file_name);
ConfigResult load_config_file(const std::string& path);

struct HostPort {
    std::string host;  // without the brackets of "[IPV6]:PORT"
    std::uint16_t port = 0;
};
// "HOST:PORT" or "[IPV6]:PORT", as listener and metrics addresses are written; nullopt otherwise.
std::optional<HostPort> split_host_port(std::string_view text);

// "30m", "1h30m", "45s", "2d" -> seconds; nullopt when malformed.
std::optional<std::chrono::seconds> parse_duration(std::string_view text);
// The inverse, for messages: 5400 s -> "1h30m"; 0 -> "0s".
std::string format_duration(std::chrono::seconds d);

std::string_view to_string(Protocol p);
std::string_view to_string(AuthMethod m);
std::string_view to_string(SeatPolicy s);

}  // namespace vmgate::core
