#include "inventory/domain_xml.hpp"

#include <gtest/gtest.h>

namespace vmgate::inventory {
namespace {

std::string domain_with(const std::string& devices) {
    return "<domain type='qemu' id='3'>\n  <name>web1</name>\n  <uuid>4DC3C1AB-9C2E-4E5B-A8F1-0123456789AB</uuid>\n"
           "  <devices>\n    <emulator>/usr/bin/qemu-system-x86_64</emulator>\n" +
           devices + "\n  </devices>\n</domain>\n";
}

DomainDescription parse(const std::string& xml) {
    auto result = parse_domain_xml(xml);
    EXPECT_TRUE(result.domain) << result.error;
    return result.domain.value_or(DomainDescription{});
}

TEST(DomainXml, NameUuidAndSocketListeners) {
    // What libvirt 9 reports for a running domain with both displays on sockets.
    const auto d = parse(domain_with(
        "<graphics type='spice'>\n"
        "  <listen type='socket' socket='/var/lib/libvirt/qemu/domain-1-web1/spice.sock'/>\n</graphics>\n"
        "<graphics type='vnc' socket='/var/lib/libvirt/qemu/domain-1-web1/vnc.sock'>\n"
        "  <listen type='socket' socket='/var/lib/libvirt/qemu/domain-1-web1/vnc.sock'/>\n</graphics>"));
    EXPECT_EQ(d.name, "web1");
    EXPECT_EQ(d.uuid, "4dc3c1ab-9c2e-4e5b-a8f1-0123456789ab");
    ASSERT_EQ(d.graphics.size(), 2u);
    EXPECT_EQ(d.graphics[0].type, GraphicsType::spice);
    EXPECT_EQ(d.graphics[0].index, 0u);
    EXPECT_EQ(d.graphics[0].listen, ListenKind::socket);
    EXPECT_EQ(d.graphics[0].socket, "/var/lib/libvirt/qemu/domain-1-web1/spice.sock");
    EXPECT_EQ(d.graphics[1].type, GraphicsType::vnc);
    EXPECT_EQ(d.graphics[1].index, 1u);
    EXPECT_EQ(d.find(core::Protocol::vnc), &d.graphics[1]);
    EXPECT_TRUE(d.has_console());
    for (const auto& g : d.graphics) EXPECT_EQ(exposure(g).level, Exposure::none);
}

TEST(DomainXml, IndexCountsEveryGraphicsElement) {
    // virDomainOpenGraphicsFD's idx counts all <graphics>, also those vmgate cannot use.
    const auto d = parse(domain_with("<graphics type='egl-headless'/>\n<graphics type='vnc' port='-1' autoport='yes'/>"));
    ASSERT_EQ(d.graphics.size(), 2u);
    EXPECT_EQ(d.graphics[0].type, GraphicsType::other);
    EXPECT_EQ(d.graphics[0].type_text, "egl-headless");
    EXPECT_EQ(exposure(d.graphics[0]).level, Exposure::none);
    const GraphicsDevice* vnc = d.find(core::Protocol::vnc);
    ASSERT_NE(vnc, nullptr);
    EXPECT_EQ(vnc->index, 1u);
    EXPECT_EQ(d.find(core::Protocol::spice), nullptr);
}

TEST(DomainXml, NetworkExposure) {
    const auto d = parse(domain_with(
        "<graphics type='spice' port='5900' tlsPort='5901' autoport='no' listen='0.0.0.0' passwd='x'>\n"
        "  <listen type='address' address='0.0.0.0'/>\n</graphics>\n"
        "<graphics type='vnc' port='5905'><listen type='network' network='default' address='192.168.122.1'/></graphics>"));
    const auto spice = exposure(d.graphics[0]);
    EXPECT_EQ(spice.level, Exposure::network);
    EXPECT_EQ(spice.what, "SPICE listens on 0.0.0.0, port 5900, TLS port 5901");
    EXPECT_TRUE(d.graphics[0].has_password);
    const auto vnc = exposure(d.graphics[1]);
    EXPECT_EQ(vnc.level, Exposure::network);
    EXPECT_EQ(vnc.what, "VNC listens on libvirt network default (port 5905)");
}

TEST(DomainXml, LoopbackAndDefaultAddressesAreLocalOnly) {
    const auto d = parse(domain_with("<graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1'/>\n"
                                     "<graphics type='spice' autoport='yes'/>\n"
                                     "<graphics type='vnc' port='5907'><listen type='address' address='::1'/></graphics>\n"
                                     "<graphics type='spice'><listen type='none'/></graphics>"));
    EXPECT_EQ(exposure(d.graphics[0]).level, Exposure::local_tcp);
    EXPECT_EQ(exposure(d.graphics[0]).what, "VNC listens on 127.0.0.1, a port libvirt picks");
    EXPECT_EQ(exposure(d.graphics[1]).level, Exposure::local_tcp);
    EXPECT_NE(exposure(d.graphics[1]).what.find("spice_listen"), std::string::npos);
    EXPECT_EQ(exposure(d.graphics[2]).level, Exposure::local_tcp);
    EXPECT_EQ(d.graphics[3].listen, ListenKind::none);
    EXPECT_EQ(exposure(d.graphics[3]).level, Exposure::none);
}

TEST(DomainXml, BadInput) {
    EXPECT_EQ(parse_domain_xml("").error, "not well-formed XML");
    EXPECT_EQ(parse_domain_xml("<domain><name>x</name>").error, "not well-formed XML");
    EXPECT_EQ(parse_domain_xml("<network><name>x</name></network>").error, "the root element is not <domain>");
    EXPECT_EQ(parse_domain_xml("<domain><uuid>1</uuid></domain>").error, "<domain> has no <name>");
    // External entities are never fetched or expanded: the name stays empty.
    EXPECT_EQ(parse_domain_xml("<!DOCTYPE d [<!ENTITY x SYSTEM 'file:///etc/passwd'>]><domain><name>&x;</name></domain>")
                  .error,
              "<domain> has no <name>");
    const auto none = parse(domain_with(""));
    EXPECT_TRUE(none.graphics.empty());
    EXPECT_FALSE(none.has_console());
}

}  // namespace
}  // namespace vmgate::inventory
