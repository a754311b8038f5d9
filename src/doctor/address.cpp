#include "doctor/address.hpp"

#include "core/cidr.hpp"

namespace vmgate::doctor {
namespace {

std::string_view unbracketed(std::string_view host) {
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') return host.substr(1, host.size() - 2);
    return host;
}

}  // namespace

bool is_loopback(std::string_view host) {
    host = unbracketed(host);
    if (host == "localhost" || host == "localhost.localdomain") return true;
    const auto ip = core::IpAddress::parse(host);
    if (!ip) return false;
    if (ip->is_v4()) return ip->bytes[12] == 127;
    core::IpAddress v6_loopback;
    v6_loopback.bytes[15] = 1;
    return *ip == v6_loopback;
}

bool is_unspecified(std::string_view host) {
    host = unbracketed(host);
    if (host.empty()) return true;
    const auto ip = core::IpAddress::parse(host);
    if (!ip) return false;
    if (ip->is_v4()) return ip->bytes[12] == 0 && ip->bytes[13] == 0 && ip->bytes[14] == 0 && ip->bytes[15] == 0;
    return *ip == core::IpAddress{};
}

}  // namespace vmgate::doctor
