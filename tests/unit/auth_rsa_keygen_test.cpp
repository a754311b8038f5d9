// Ticket keys from our generator: valid RSA-1024 keys whose factors pass OpenSSL's own
// 64-round primality test, and that work for OAEP both ways.
#include "auth/rsa_keygen.hpp"
#include "auth/ticket_key.hpp"

#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>

#include <set>
#include <string>

namespace vmgate::auth {
namespace {

struct Bn {
    BIGNUM* n = nullptr;
    ~Bn() { BN_free(n); }
};

Bn param(EVP_PKEY* key, const char* name) {
    Bn b;
    EXPECT_EQ(EVP_PKEY_get_bn_param(key, name, &b.n), 1) << name;
    return b;
}

TEST(RsaKeygen, FactorsArePrimeAndTheKeyIsConsistent) {
    BN_CTX* ctx = BN_CTX_new();
    for (int i = 0; i < 20; ++i) {
        const RsaKey key = generate_ticket_rsa_key();
        ASSERT_TRUE(key);
        EXPECT_EQ(EVP_PKEY_get_bits(key.get()), 1024);
        const Bn n = param(key.get(), OSSL_PKEY_PARAM_RSA_N);
        const Bn e = param(key.get(), OSSL_PKEY_PARAM_RSA_E);
        const Bn p = param(key.get(), OSSL_PKEY_PARAM_RSA_FACTOR1);
        const Bn q = param(key.get(), OSSL_PKEY_PARAM_RSA_FACTOR2);
        EXPECT_TRUE(BN_is_word(e.n, 65537));
        EXPECT_EQ(BN_num_bits(p.n), 512);
        EXPECT_EQ(BN_num_bits(q.n), 512);
        EXPECT_EQ(BN_check_prime(p.n, ctx, nullptr), 1);  // OpenSSL's 64 rounds
        EXPECT_EQ(BN_check_prime(q.n, ctx, nullptr), 1);
        Bn product;
        product.n = BN_new();
        BN_mul(product.n, p.n, q.n, ctx);
        EXPECT_EQ(BN_cmp(product.n, n.n), 0);
    }
    BN_CTX_free(ctx);
}

TEST(RsaKeygen, EveryKeyIsFresh) {
    std::set<std::string> moduli;
    for (int i = 0; i < 10; ++i) {
        const auto key = TicketKey::generate();
        moduli.emplace(key.public_spki().begin(), key.public_spki().end());
    }
    EXPECT_EQ(moduli.size(), 10u);
}

TEST(RsaKeygen, TicketKeysDecryptWhatTheirSpkiEncrypts) {
    for (int i = 0; i < 10; ++i) {
        const auto key = TicketKey::generate();
        const auto ciphertext = encrypt_ticket(key.public_spki(), "one-time-ticket");
        ASSERT_TRUE(ciphertext);
        EXPECT_EQ(key.decrypt(*ciphertext), "one-time-ticket");
    }
}

}  // namespace
}  // namespace vmgate::auth
