#include "inventory/domain_xml.hpp"

#include "core/cidr.hpp"

#include <libxml/parser.h>
#include <libxml/tree.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <memory>

namespace vmgate::inventory {
namespace {

struct DocDeleter {
    void operator()(xmlDoc* doc) const { xmlFreeDoc(doc); }
};

bool named(const xmlNode* node, std::string_view name) {
    return node->type == XML_ELEMENT_NODE && name == reinterpret_cast<const char*>(node->name);
}

const xmlNode* child(const xmlNode* parent, std::string_view name) {
    for (const xmlNode* c = parent->children; c != nullptr; c = c->next)
        if (named(c, name)) return c;
    return nullptr;
}

std::string attribute(const xmlNode* node, const char* name) {
    xmlChar* value = xmlGetProp(node, reinterpret_cast<const xmlChar*>(name));
    if (value == nullptr) return "";
    std::string text(reinterpret_cast<const char*>(value));
    xmlFree(value);
    return text;
}

std::string text_of(const xmlNode* node) {
    if (node == nullptr) return "";
    xmlChar* value = xmlNodeGetContent(node);
    std::string text(value ? reinterpret_cast<const char*>(value) : "");
    xmlFree(value);
    const auto blank = [](unsigned char c) { return std::isspace(c) != 0; };
    text.erase(text.begin(), std::find_if_not(text.begin(), text.end(), blank));
    text.erase(std::find_if_not(text.rbegin(), text.rend(), blank).base(), text.end());
    return text;
}

int port_attribute(const xmlNode* node, const char* name) {
    const std::string text = attribute(node, name);
    int port = -1;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
    return ec == std::errc{} && end == text.data() + text.size() ? port : -1;
}

GraphicsType graphics_type(std::string_view text) {
    if (text == "spice") return GraphicsType::spice;
    if (text == "vnc") return GraphicsType::vnc;
    return GraphicsType::other;
}

// libvirt writes the listen address both as <graphics listen=...> (legacy) and as a <listen>
// child; a socket as <graphics socket=...> (VNC) and <listen type='socket' socket=...>.
void read_listen(const xmlNode* graphics, GraphicsDevice& device) {
    if (const xmlNode* listen = child(graphics, "listen")) {
        const std::string type = attribute(listen, "type");
        if (type == "socket") {
            device.listen = ListenKind::socket;
            device.socket = attribute(listen, "socket");
        } else if (type == "none") {
            device.listen = ListenKind::none;
        } else if (type == "network") {
            device.listen = ListenKind::network;
            device.network = attribute(listen, "network");
            device.address = attribute(listen, "address");
        } else {
            device.address = attribute(listen, "address");
        }
        return;
    }
    if (std::string socket = attribute(graphics, "socket"); !socket.empty()) {
        device.listen = ListenKind::socket;
        device.socket = std::move(socket);
        return;
    }
    device.address = attribute(graphics, "listen");
}

GraphicsDevice read_graphics(const xmlNode* node, unsigned index) {
    GraphicsDevice device;
    device.type_text = attribute(node, "type");
    device.type = graphics_type(device.type_text);
    device.index = index;
    device.port = port_attribute(node, "port");
    device.tls_port = port_attribute(node, "tlsPort");
    device.autoport = attribute(node, "autoport") == "yes";
    device.has_password = !attribute(node, "passwd").empty();
    device.default_mode = attribute(node, "defaultMode");
    read_listen(node, device);
    return device;
}

std::string ports_text(const GraphicsDevice& d) {
    if (d.autoport || (d.port <= 0 && d.tls_port <= 0)) return "a port libvirt picks";
    std::string text;
    if (d.port > 0) text = "port " + std::to_string(d.port);
    if (d.tls_port > 0) text += (text.empty() ? "" : ", ") + std::string("TLS port ") + std::to_string(d.tls_port);
    return text;
}

}  // namespace

const GraphicsDevice* DomainDescription::find(core::Protocol display) const {
    const GraphicsType wanted = display == core::Protocol::spice ? GraphicsType::spice : GraphicsType::vnc;
    for (const auto& g : graphics)
        if (g.type == wanted) return &g;
    return nullptr;
}

DomainXmlResult parse_domain_xml(std::string_view xml) {
    // No network, no external entities, no DTD: the text comes from libvirt but is still input.
    std::unique_ptr<xmlDoc, DocDeleter> doc(xmlReadMemory(xml.data(), static_cast<int>(xml.size()), "domain.xml",
                                                          nullptr, XML_PARSE_NONET | XML_PARSE_NOERROR |
                                                                       XML_PARSE_NOWARNING));
    if (!doc) return {std::nullopt, "not well-formed XML"};
    const xmlNode* root = xmlDocGetRootElement(doc.get());
    if (root == nullptr || !named(root, "domain")) return {std::nullopt, "the root element is not <domain>"};
    DomainDescription domain;
    domain.name = text_of(child(root, "name"));
    domain.uuid = text_of(child(root, "uuid"));
    std::transform(domain.uuid.begin(), domain.uuid.end(), domain.uuid.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (domain.name.empty()) return {std::nullopt, "<domain> has no <name>"};
    if (const xmlNode* devices = child(root, "devices")) {
        unsigned index = 0;
        for (const xmlNode* c = devices->children; c != nullptr; c = c->next)
            if (named(c, "graphics")) domain.graphics.push_back(read_graphics(c, index++));
    }
    return {std::move(domain), ""};
}

ExposureFinding exposure(const GraphicsDevice& d) {
    const std::string display = d.type == GraphicsType::spice ? "SPICE" : d.type == GraphicsType::vnc ? "VNC" : d.type_text;
    switch (d.listen) {
    case ListenKind::socket:
    case ListenKind::none: return {};
    case ListenKind::network:
        return {Exposure::network, display + " listens on libvirt network " + d.network + " (" + ports_text(d) + ")"};
    case ListenKind::address: break;
    }
    if (d.type == GraphicsType::other) return {};
    if (d.address.empty())
        return {Exposure::local_tcp, display + " listens on QEMU's default address (qemu.conf " +
                                         (d.type == GraphicsType::spice ? "spice_listen" : "vnc_listen") +
                                         ", 127.0.0.1 unless changed), " + ports_text(d)};
    if (core::is_loopback_host(d.address))
        return {Exposure::local_tcp, display + " listens on " + d.address + ", " + ports_text(d)};
    return {Exposure::network, display + " listens on " + d.address + ", " + ports_text(d)};
}

std::string_view to_string(GraphicsType t) {
    switch (t) {
    case GraphicsType::spice: return "spice";
    case GraphicsType::vnc: return "vnc";
    case GraphicsType::other: return "other";
    }
    return "other";
}

}  // namespace vmgate::inventory
