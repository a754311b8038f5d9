// Running QEMU processes as their command lines show them (/proc/PID/cmdline): a SPICE or VNC
// display that listens on TCP where vmgate does not stand in front of it. Pure: argv in,
// findings out.
#pragma once

#include "doctor/finding.hpp"

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace vmgate::doctor {

// /proc/PID/cmdline: arguments separated (and ended) by NUL bytes.
std::vector<std::string> split_cmdline(std::string_view raw);

// argv[0] names a QEMU system emulator (qemu-system-*, qemu-kvm, kvm).
bool is_qemu(const std::vector<std::string>& argv);

// The values of every `-NAME VALUE` (or `--NAME VALUE`) option, in order.
std::vector<std::string> option_values(const std::vector<std::string>& argv, std::string_view name);

// QEMU's "key=value,key=value" option syntax (",," is a comma inside a value). The first item
// without "=" is `implied_key`'s value when one is given; other bare items are "on" flags.
std::map<std::string, std::string> parse_qemu_options(std::string_view text, std::string_view implied_key = "");

struct QemuProcess {
    std::string pid;
    std::vector<std::string> argv;
};

// "process 1234 (guest web1)", the guest's name from -name.
std::string process_subject(const QemuProcess& process);

// -spice: a TCP port on a non-loopback or unspecified address (error: reachable around vmgate);
// port= beside tls-port= (warning: a plain port beside the TLS one); disable-ticketing=on with a
// TCP port (error: no password at all). -vnc HOST:D on a non-loopback or unspecified address
// (error); on loopback without password=on or sasl=on (error: every local user gets in).
Findings check_qemu_process(const QemuProcess& process);

}  // namespace vmgate::doctor
