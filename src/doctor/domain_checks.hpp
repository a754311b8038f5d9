// libvirt domains (their XML): graphics devices that listen on TCP, and SPICE's defaultMode.
#pragma once

#include "doctor/finding.hpp"
#include "inventory/domain_xml.hpp"

#include <string>

namespace vmgate::doctor {

// `source`: where the XML came from ("/etc/libvirt/qemu/web1.xml", "qemu:///system"), for the
// subject. Network exposure (inventory::exposure) is an error, a TCP port on loopback or QEMU's
// default address a warning (every local user reaches it), and defaultMode='any' on a SPICE
// device that listens on TCP a warning (channels may take the plain port).
Findings check_domain(const inventory::DomainDescription& domain, const std::string& source);

}  // namespace vmgate::doctor
