// RSA-1024 key generation for the per-connection SPICE ticket keys.
//
// OpenSSL 3 confirms every prime with 64 Miller-Rabin rounds: most of the ~8 ms an RSA-1024 key
// costs, and so the bound on ticket logins per second per core. FIPS 186-4 (Appendix C.3,
// Table C.2) asks for 7 rounds for the 512-bit primes of a 1024-bit modulus at an error
// probability below 2^-100. These keys live for one link handshake and protect one ticket that
// already travels inside TLS; every key is still checked by an OAEP round trip before use.
#pragma once

#include <openssl/evp.h>

#include <memory>

namespace vmgate::auth {

struct RsaKeyDeleter {
    void operator()(EVP_PKEY* key) const noexcept { EVP_PKEY_free(key); }
};
using RsaKey = std::unique_ptr<EVP_PKEY, RsaKeyDeleter>;

// A fresh RSA key: two independent random 512-bit primes, e = 65537, a 1024-bit modulus.
// Throws std::runtime_error when OpenSSL refuses (for instance in FIPS mode).
RsaKey generate_ticket_rsa_key();

}  // namespace vmgate::auth
