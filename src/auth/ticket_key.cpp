#include "auth/ticket_key.hpp"

#include "auth/rsa_keygen.hpp"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <algorithm>
#include <stdexcept>

namespace vmgate::auth {

namespace {

constexpr int kKeyBits = 1024;  // the only size whose SPKI fits SpiceLinkReply.pub_key

struct ContextDeleter {
    void operator()(EVP_PKEY_CTX* context) const noexcept { EVP_PKEY_CTX_free(context); }
};
using ContextPtr = std::unique_ptr<EVP_PKEY_CTX, ContextDeleter>;

// A failed decryption leaves entries on this thread's OpenSSL error queue, where a later
// SSL_get_error on the same thread would find them and misreport a TLS failure.
template <typename T>
std::optional<T> fail() {
    ERR_clear_error();
    return std::nullopt;
}

bool use_spice_oaep(EVP_PKEY_CTX* context) {
    return EVP_PKEY_CTX_set_rsa_padding(context, RSA_PKCS1_OAEP_PADDING) > 0 &&
           EVP_PKEY_CTX_set_rsa_oaep_md(context, EVP_sha1()) > 0 &&
           EVP_PKEY_CTX_set_rsa_mgf1_md(context, EVP_sha1()) > 0;
}

std::array<uint8_t, kTicketSpkiSize> encode_spki(EVP_PKEY* key) {
    std::array<uint8_t, kTicketSpkiSize> spki{};
    if (i2d_PUBKEY(key, nullptr) != static_cast<int>(spki.size()))
        throw std::runtime_error("RSA-1024 public key does not encode to 162 bytes");
    unsigned char* out = spki.data();
    i2d_PUBKEY(key, &out);
    return spki;
}

using Ciphertext = std::array<uint8_t, kTicketCiphertextSize>;

std::optional<Ciphertext> encrypt(EVP_PKEY* key, std::span<const unsigned char> plain) {
    const ContextPtr context(EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr));
    Ciphertext out{};
    std::size_t out_len = out.size();
    if (!context || EVP_PKEY_encrypt_init(context.get()) <= 0 || !use_spice_oaep(context.get()) ||
        EVP_PKEY_encrypt(context.get(), out.data(), &out_len, plain.data(), plain.size()) <= 0 ||
        out_len != out.size())
        return fail<Ciphertext>();
    return out;
}

bool is_spice_key(EVP_PKEY* key) {
    return EVP_PKEY_is_a(key, "RSA") == 1 && EVP_PKEY_get_bits(key) == kKeyBits;
}

}  // namespace

void TicketKey::KeyDeleter::operator()(EVP_PKEY* key) const noexcept { EVP_PKEY_free(key); }

TicketKey::TicketKey(std::unique_ptr<EVP_PKEY, KeyDeleter> key,
                     const std::array<uint8_t, kTicketSpkiSize>& spki)
    : key_(std::move(key)), spki_(spki) {}

TicketKey TicketKey::generate() {
    std::unique_ptr<EVP_PKEY, KeyDeleter> key(generate_ticket_rsa_key().release());
    const auto spki = encode_spki(key.get());
    return TicketKey(std::move(key), spki);
}

// One key serves one connection, so a decryption-failure oracle gets a single query per key.
std::optional<std::string> TicketKey::decrypt(
    std::span<const uint8_t, kTicketCiphertextSize> ciphertext) const {
    if (!key_) return std::nullopt;
    const ContextPtr context(EVP_PKEY_CTX_new_from_pkey(nullptr, key_.get(), nullptr));
    std::array<uint8_t, kTicketCiphertextSize> plain{};
    std::size_t plain_len = plain.size();
    if (!context || EVP_PKEY_decrypt_init(context.get()) <= 0 || !use_spice_oaep(context.get()) ||
        EVP_PKEY_decrypt(context.get(), plain.data(), &plain_len, ciphertext.data(),
                         ciphertext.size()) <= 0)
        return fail<std::string>();
    const auto end = plain.begin() + static_cast<std::ptrdiff_t>(plain_len);
    const auto nul = std::find(plain.begin(), end, uint8_t{0});
    std::optional<std::string> password;
    if (nul != end) password.emplace(plain.begin(), nul);
    OPENSSL_cleanse(plain.data(), plain.size());
    return password;
}

std::optional<std::array<uint8_t, kTicketCiphertextSize>> encrypt_ticket(
    std::span<const uint8_t, kTicketSpkiSize> peer_spki, std::string_view password) {
    if (password.size() > kMaxTicketPasswordLength || password.find('\0') != password.npos)
        return std::nullopt;
    const unsigned char* in = peer_spki.data();
    const std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
        d2i_PUBKEY(nullptr, &in, static_cast<long>(peer_spki.size())), &EVP_PKEY_free);
    if (!key || in != peer_spki.data() + peer_spki.size() || !is_spice_key(key.get()))
        return fail<Ciphertext>();
    std::array<unsigned char, kMaxTicketPasswordLength + 1> plain{};  // zeroed: the NUL follows
    std::copy(password.begin(), password.end(), plain.begin());
    auto ciphertext = encrypt(key.get(), std::span(plain.data(), password.size() + 1));
    OPENSSL_cleanse(plain.data(), plain.size());
    return ciphertext;
}

}  // namespace vmgate::auth
