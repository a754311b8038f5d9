// Client-side lockdown (`vmgate export`): who may ever reach which gateway port, computed from the
// policy alone. Client machines (multi-user terminal servers running remote-viewer) can then
// refuse everyone else before vmgate is even asked: defence in depth, never a replacement for the
// gateway's own decision. Pure: no file, no system call; the generators (firewall, sudoers, sshd)
// turn an AccessMap into the text each tool reads.
//
// Client-side names: a rule's user "anne@OFFICE" is the client's Unix account "anne" (the realm
// is dropped, the name split at its last '@' as Cyrus splits it); "unix:NAME" stays the Unix
// group NAME; [groups] names are expanded to their members.
#pragma once

#include "core/config.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vmgate::lockdown {

enum class PrincipalKind { user, group };

// A client-side Unix user or group that a rule admits. Users sort before groups.
struct Principal {
    PrincipalKind kind = PrincipalKind::user;
    std::string name;

    auto operator<=>(const Principal&) const = default;
};

// A gateway port as clients reach it: host is an IP address (without brackets) or, where the
// format allows one, a DNS name.
struct Endpoint {
    std::string host;
    std::uint16_t port = 0;

    auto operator<=>(const Endpoint&) const = default;
    bool is_ipv6() const;
    std::string to_string() const;  // "10.0.0.1:5900", "[::1]:5900"
};

// One listener through which a viewer reaches a VM.
struct Console {
    core::Protocol protocol = core::Protocol::spice;
    core::Route route = core::Route::fixed;
    Endpoint endpoint;
    bool tls = true;
    std::string server_name;  // Route::sni: the TLS server name that selects the VM

    auto operator<=>(const Console&) const = default;
};

struct VmAccess {
    std::string vm;
    std::vector<Console> consoles;       // its fixed listeners and every shared one, sorted
    std::vector<Principal> principals;   // everyone any of its allow rules admits, sorted, unique
    std::vector<Endpoint> endpoints() const;  // the ports of its consoles, sorted, unique
};

struct AccessMap {
    std::string config_path;
    std::vector<Endpoint> gateway_ports;  // every listener, sorted, unique
    std::vector<Endpoint> shared_ports;   // listeners that reach every VM (route = "sni")
    std::vector<VmAccess> vms;            // by name
};

struct AccessOptions {
    // The gateway's address as clients reach it; "" = each listener's own host.
    std::string host;
    // iptables and nft match addresses: every endpoint host must then be an IP address.
    bool need_ip = false;
};

struct AccessResult {
    std::optional<AccessMap> access;  // set iff errors is empty
    std::vector<std::string> errors;  // each says what, where, and how to fix it
};

// What a generator made of an AccessMap.
struct Generated {
    std::string text;                 // meaningful iff errors is empty
    std::vector<std::string> errors;  // what, and how to fix it
};

AccessResult build_access(const core::Config& config, const AccessOptions& options);

// Every principal with the endpoints it may reach (those of its VMs, shared ports included) and
// the names of those VMs.
struct PrincipalAccess {
    std::vector<Endpoint> endpoints;
    std::vector<std::string> vms;
};
std::map<Principal, PrincipalAccess> access_by_principal(const AccessMap& access);

// User and group names every client-side tool reads the same way: ASCII letters, digits, '_',
// '.', '-', starting with a letter or '_' (a leading digit reads as a numeric ID), at most 32
// characters (the length useradd and groupadd allow). Nothing in them needs quoting anywhere.
bool is_portable_name(std::string_view name);

// The dedicated group of a VM: prefix + VM name ("vmgate-" + "vm1").
std::string vm_group(std::string_view prefix, std::string_view vm);
// One error for each VM with users whose group would not be a portable name.
std::vector<std::string> vm_group_errors(const AccessMap& access, std::string_view prefix);

// The comment block every output starts with (lines begin with "# "): what the file is, where it
// came from, and what of the policy it cannot express.
std::string header_comment(std::string_view format, const AccessMap& access);

}  // namespace vmgate::lockdown
