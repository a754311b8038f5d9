// The policy the lockdown tests export: vm1 (SPICE: a TLS and a plain port of its own) for anne,
// boss@OFFICE and the [groups] office (charlie@OFFICE, unix:staff); vm2 (VNC, own port) for anne
// and unix:adm; vm3 (SPICE) for nobody. One SNI SPICE port reaches vm1 and vm3, not vm2 (no
// SPICE console).
#pragma once

#include "core/config.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <string_view>

namespace vmgate::lockdown::test {

inline constexpr std::string_view kListeners = R"(
[[listener]]
protocol = "spice"
address = "192.0.2.10:5901"
vm = "vm1"

[[listener]]
protocol = "spice"
address = "192.0.2.10:5900"
tls = false
vm = "vm1"

[[listener]]
protocol = "vnc"
address = "192.0.2.10:5902"
vm = "vm2"

[[listener]]
protocol = "spice"
address = "192.0.2.10:5910"
route = "sni"
sni_suffix = ".vms.example.com"
)";

inline constexpr std::string_view kVms = R"(
[[vm]]
name = "vm1"
spice = "unix:/run/vm1.sock"
  [[vm.allow]]
  users = ["anne", "boss@OFFICE"]
  hours = "18:00-23:00"
  [[vm.allow]]
  groups = ["office"]

[[vm]]
name = "vm2"
vnc = "unix:/run/vm2.sock"
  [[vm.allow]]
  users = ["anne"]
  [[vm.allow]]
  groups = ["unix:adm"]
  days = ["mon"]

[[vm]]
name = "vm3"
spice = "unix:/run/vm3.sock"
)";

inline constexpr std::string_view kHead = R"([tls]
cert = "/nonexistent/cert.pem"
key = "/nonexistent/key.pem"

[groups]
office = ["charlie@OFFICE", "unix:staff"]
)";

inline core::Config parse(const std::string& text) {
    auto result = core::parse_config(text, "office.toml");
    if (!result.config) {
        std::string all;
        for (const auto& e : result.errors) all += e.to_string() + "\n";
        throw std::runtime_error("test config refused:\n" + all);
    }
    return std::move(*result.config);
}

inline core::Config office() { return parse(std::string(kHead) + std::string(kListeners) + std::string(kVms)); }

}  // namespace vmgate::lockdown::test
