#include "vnc/vnc_auth.hpp"

#include <algorithm>
#include <cstddef>

namespace vmgate::vnc {
namespace {

constexpr unsigned bits_per_byte = 8;

std::uint8_t mirror_bits(std::uint8_t byte) {
    std::uint8_t mirrored = 0;
    for (unsigned bit = 0; bit < bits_per_byte; ++bit) {
        mirrored = static_cast<std::uint8_t>((mirrored << 1) | ((byte >> bit) & 1));
    }
    return mirrored;
}

}  // namespace

DesBlock vnc_auth_key(std::string_view password) {
    DesBlock key{};  // zero padding for passwords shorter than 8 bytes
    const std::size_t used = std::min(password.size(), key.size());
    for (std::size_t i = 0; i < used; ++i) key[i] = mirror_bits(static_cast<std::uint8_t>(password[i]));
    return key;
}

VncResponse vnc_auth_response(std::string_view password, const VncChallenge& challenge) {
    const DesBlock key = vnc_auth_key(password);
    VncResponse response{};
    for (std::size_t offset = 0; offset < challenge.size(); offset += des_block_size) {
        DesBlock block{};
        std::copy_n(challenge.begin() + static_cast<std::ptrdiff_t>(offset), des_block_size, block.begin());
        const DesBlock encrypted = des_encrypt(key, block);
        std::ranges::copy(encrypted, response.begin() + static_cast<std::ptrdiff_t>(offset));
    }
    return response;
}

bool vnc_auth_response_matches(std::string_view password, const VncChallenge& challenge,
                               const VncResponse& response) {
    const VncResponse expected = vnc_auth_response(password, challenge);
    unsigned difference = 0;
    for (std::size_t i = 0; i < expected.size(); ++i) difference |= expected[i] ^ response[i];
    return difference == 0;
}

}  // namespace vmgate::vnc
