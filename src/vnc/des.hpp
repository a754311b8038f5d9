// Single DES (FIPS 46-3), encryption of one 64-bit block: the cipher of VNC authentication (§2).
//
// Why not OpenSSL: OpenSSL 3 ships single DES only in its legacy provider
// (EVP_CIPHER_fetch(NULL, "DES-ECB", NULL) returns NULL with the default provider), and loading
// that provider process-wide for one 40-year-old cipher is worse than this small, vector-tested
// implementation. Not for any other use: DES is broken; VNC auth is kept for compatibility only.
#pragma once

#include <array>
#include <cstdint>

namespace vmgate::vnc {

inline constexpr std::size_t des_block_size = 8;
using DesBlock = std::array<std::uint8_t, des_block_size>;

// The key's 8 bytes in the standard bit order: bit 0 of each byte (its LSB) is the parity bit,
// which DES ignores.
DesBlock des_encrypt(const DesBlock& key, const DesBlock& plaintext);

}  // namespace vmgate::vnc
