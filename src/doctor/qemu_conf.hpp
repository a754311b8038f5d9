// libvirt's /etc/libvirt/qemu.conf (the defaults libvirt gives QEMU's displays) and the Cyrus SASL
// files QEMU reads for spice_sasl / vnc_sasl. Pure: file texts in, findings out.
#pragma once

#include "doctor/finding.hpp"

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace vmgate::doctor {

// The scalar settings of a libvirt configuration file ("key = value" with "#" comments, strings
// in double or single quotes, numbers; lists are skipped): key -> value without quotes.
std::map<std::string, std::string> parse_libvirt_conf(std::string_view text);

// The value of "mech_list:" in a Cyrus SASL application file; nullopt when it has none.
std::optional<std::string> sasl_mech_list(std::string_view text);

inline constexpr std::string_view default_sasl_dir = "/etc/sasl2";

// The SASL application file QEMU reads for a display: DIR/qemu-spice.conf or DIR/qemu-vnc.conf,
// DIR from spice_sasl_dir / vnc_sasl_dir (default /etc/sasl2). "" when that display's SASL is off.
enum class Display { spice, vnc };
std::string qemu_sasl_file(const std::map<std::string, std::string>& qemu_conf, Display display);

// spice_listen / vnc_listen on a non-loopback address: every display libvirt starts on TCP
// without an address of its own listens there, reachable around vmgate (error).
Findings check_qemu_conf(const std::map<std::string, std::string>& qemu_conf, const std::string& path);

// The SASL file of a display with SASL on: DIGEST-MD5 in mech_list is an error (obsolete, RFC
// 6331); no mech_list (or no file) a warning, since Cyrus then offers every installed mechanism.
// `text`: nullopt when the file does not exist.
Findings check_qemu_sasl(Display display, const std::string& path, const std::optional<std::string>& text);

}  // namespace vmgate::doctor
