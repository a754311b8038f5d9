// Listen addresses as QEMU, libvirt and vmgate's listeners write them: which reach only this
// host, and which mean "every address".
#pragma once

#include <string_view>

namespace vmgate::doctor {

// 127.0.0.0/8, ::1, ::ffff:127.x.y.z, "localhost" (brackets around IPv6 allowed).
bool is_loopback(std::string_view host);
// "", 0.0.0.0, :: (every interface).
bool is_unspecified(std::string_view host);

}  // namespace vmgate::doctor
