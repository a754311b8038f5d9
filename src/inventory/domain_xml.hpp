// What vmgate needs from a libvirt domain's XML description: its name and UUID, and each
// <graphics> device (which display, where it listens). Pure code: XML text in, facts out.
#pragma once

#include "core/config.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vmgate::inventory {

enum class GraphicsType { spice, vnc, other };
// <listen type=...>: an IP address (or host name), a libvirt network, a unix socket, or none
// (display reachable only through virDomainOpenGraphicsFD / QMP add_client).
enum class ListenKind { address, network, socket, none };

struct GraphicsDevice {
    GraphicsType type = GraphicsType::other;
    std::string type_text;     // as written (type='egl-headless', ...), for messages
    unsigned index = 0;        // position among the domain's <graphics> elements: virDomainOpenGraphicsFD's idx
    ListenKind listen = ListenKind::address;
    std::string address;       // ListenKind::address: "" when QEMU's default (qemu.conf spice_listen/vnc_listen)
    std::string network;       // ListenKind::network
    std::string socket;        // ListenKind::socket: "" until libvirt picked the path
    int port = -1;             // TCP port; -1 none, 0 or autoport: libvirt picks one at start
    int tls_port = -1;         // SPICE only
    bool autoport = false;
    bool has_password = false;  // passwd='...' non-empty (visible only in a secure dump)
    std::string default_mode;   // SPICE defaultMode='any'|'secure'|'insecure' as written; "" when absent
};

struct DomainDescription {
    std::string name;
    std::string uuid;  // lower case, 8-4-4-4-12
    std::vector<GraphicsDevice> graphics;

    // The first SPICE or VNC device, as virt-viewer picks it.
    const GraphicsDevice* find(core::Protocol display) const;
    bool has_console() const { return find(core::Protocol::spice) || find(core::Protocol::vnc); }
};

struct DomainXmlResult {
    std::optional<DomainDescription> domain;
    std::string error;  // set iff !domain
};

DomainXmlResult parse_domain_xml(std::string_view xml);

// Why a display could be reached without vmgate, or "" when it cannot (socket or no listener,
// loopback TCP excepted: see below).
enum class Exposure { none, local_tcp, network };
struct ExposureFinding {
    Exposure level = Exposure::none;
    std::string what;  // "SPICE listens on 0.0.0.0 (ports 5900, tls 5901)"
};
// A TCP listener on a non-loopback address or a libvirt network is reachable from other hosts
// (Exposure::network); a TCP listener on loopback or QEMU's default address is still reachable by
// every local user (Exposure::local_tcp). Sockets and listen type 'none' are not exposed.
ExposureFinding exposure(const GraphicsDevice& device);

std::string_view to_string(GraphicsType t);

}  // namespace vmgate::inventory
