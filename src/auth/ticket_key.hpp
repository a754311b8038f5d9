// The RSA key of SPICE ticket authentication (spice-protocol.md §4), both ways: a TicketKey is the
// gateway's per-connection key toward a downstream client; encrypt_ticket() is how the gateway
// logs into QEMU with the upstream display password.
//
// SPICE fixes the parameters: RSA-1024 (its SubjectPublicKeyInfo fills the 162-byte pub_key field
// of the link reply), OAEP with SHA-1, MGF1-SHA-1 and an empty label, plaintext = password + NUL.
#pragma once

#include <openssl/types.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace vmgate::auth {

inline constexpr std::size_t kTicketSpkiSize = 162;
inline constexpr std::size_t kTicketCiphertextSize = 128;
// spice-server stores the password in char[60], NUL included; longer ones never match.
inline constexpr std::size_t kMaxTicketPasswordLength = 59;

class TicketKey {
public:
    // A fresh RSA-1024 key, e = 65537. Takes milliseconds (see TicketKeyPool). Throws
    // std::runtime_error if OpenSSL refuses, as a FIPS provider may.
    static TicketKey generate();

    TicketKey(TicketKey&&) noexcept = default;
    TicketKey& operator=(TicketKey&&) noexcept = default;

    // DER SubjectPublicKeyInfo (i2d_PUBKEY), as sent in SpiceLinkReply.pub_key.
    const std::array<uint8_t, kTicketSpkiSize>& public_spki() const { return spki_; }

    // The password a client sent: the bytes before the first NUL. nullopt if the ciphertext does
    // not decrypt under this key or holds no NUL.
    std::optional<std::string> decrypt(
        std::span<const uint8_t, kTicketCiphertextSize> ciphertext) const;

private:
    struct KeyDeleter {
        void operator()(EVP_PKEY* key) const noexcept;
    };

    TicketKey(std::unique_ptr<EVP_PKEY, KeyDeleter> key,
              const std::array<uint8_t, kTicketSpkiSize>& spki);

    std::unique_ptr<EVP_PKEY, KeyDeleter> key_;
    std::array<uint8_t, kTicketSpkiSize> spki_{};
};

// password + NUL encrypted to QEMU's link key. nullopt if peer_spki is not an RSA-1024 key, or
// the password is longer than kMaxTicketPasswordLength or contains a NUL.
std::optional<std::array<uint8_t, kTicketCiphertextSize>> encrypt_ticket(
    std::span<const uint8_t, kTicketSpkiSize> peer_spki, std::string_view password);

}  // namespace vmgate::auth
