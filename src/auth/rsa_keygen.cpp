#include "auth/rsa_keygen.hpp"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include <algorithm>
#include <array>
#include <string>
#include <stdexcept>

namespace vmgate::auth {
namespace {

constexpr int kPrimeBits = 512;
constexpr int kModulusBits = 2 * kPrimeBits;
constexpr int kMillerRabinRounds = 7;  // FIPS 186-4 Table C.2, 512-bit primes, error < 2^-100
constexpr BN_ULONG kPublicExponent = 65537;

// The first 512 odd primes: a candidate with one of them as a factor is discarded by word
// arithmetic instead of a modular exponentiation (more primes cost more per step than the
// exponentiations they save).
constexpr std::size_t kSievePrimes = 512;
constexpr auto kSmallPrimes = [] {
    constexpr int limit = 3700;  // the 512th odd prime is 3673
    std::array<bool, limit> composite{};
    std::array<BN_ULONG, kSievePrimes> primes{};
    std::size_t count = 0;
    for (int i = 3; i < limit && count < kSievePrimes; i += 2) {
        if (composite[static_cast<std::size_t>(i)]) continue;
        primes[count++] = static_cast<BN_ULONG>(i);
        for (int j = i * i; j < limit; j += 2 * i) composite[static_cast<std::size_t>(j)] = true;
    }
    return primes;
}();
static_assert(kSmallPrimes.back() == 3673, "the table holds the first 512 odd primes");

// How far an incremental search walks from its random start before drawing a new one.
constexpr BN_ULONG kMaxDelta = 1u << 16;

struct BnDeleter {
    void operator()(BIGNUM* n) const noexcept { BN_clear_free(n); }  // factors are secrets
};
using Bn = std::unique_ptr<BIGNUM, BnDeleter>;

struct BnCtxDeleter {
    void operator()(BN_CTX* c) const noexcept { BN_CTX_free(c); }
};
struct MontDeleter {
    void operator()(BN_MONT_CTX* m) const noexcept { BN_MONT_CTX_free(m); }
};
struct ParamBuildDeleter {
    void operator()(OSSL_PARAM_BLD* b) const noexcept { OSSL_PARAM_BLD_free(b); }
};
struct ParamDeleter {
    void operator()(OSSL_PARAM* p) const noexcept { OSSL_PARAM_free(p); }
};
struct PkeyCtxDeleter {
    void operator()(EVP_PKEY_CTX* c) const noexcept { EVP_PKEY_CTX_free(c); }
};

[[noreturn]] void refuse(const char* what) {
    ERR_clear_error();
    throw std::runtime_error(std::string("RSA-1024 key generation failed: ") + what);
}

Bn new_bn() {
    Bn n(BN_secure_new());
    if (!n) refuse("out of memory");
    return n;
}

void check(int ok, const char* what) {
    if (ok != 1) refuse(what);
}

// Residues of the search start modulo every sieve prime, so that start + delta can be tested
// with word additions.
std::array<BN_ULONG, kSievePrimes> residues_of(const BIGNUM* start) {
    std::array<BN_ULONG, kSievePrimes> residues{};
    for (std::size_t i = 0; i < kSievePrimes; ++i) residues[i] = BN_mod_word(start, kSmallPrimes[i]);
    return residues;
}

bool has_small_factor(const std::array<BN_ULONG, kSievePrimes>& residues, BN_ULONG delta) {
    for (std::size_t i = 0; i < kSievePrimes; ++i)
        if ((residues[i] + delta) % kSmallPrimes[i] == 0) return true;
    return false;
}

// Miller-Rabin with random bases in [2, n-2]; n is odd and large.
bool probably_prime(const BIGNUM* n, BN_CTX* ctx) {
    const std::unique_ptr<BN_MONT_CTX, MontDeleter> mont(BN_MONT_CTX_new());
    if (!mont) refuse("out of memory");
    check(BN_MONT_CTX_set(mont.get(), n, ctx), "BN_MONT_CTX_set");
    Bn n_minus_1 = new_bn(), d = new_bn(), range = new_bn(), a = new_bn(), x = new_bn();
    check(BN_copy(n_minus_1.get(), n) ? 1 : 0, "BN_copy");
    check(BN_sub_word(n_minus_1.get(), 1), "BN_sub_word");
    int s = 0;  // n - 1 = 2^s * d with d odd
    while (!BN_is_bit_set(n_minus_1.get(), s)) ++s;
    check(BN_rshift(d.get(), n_minus_1.get(), s), "BN_rshift");
    check(BN_copy(range.get(), n_minus_1.get()) ? 1 : 0, "BN_copy");
    check(BN_sub_word(range.get(), 2), "BN_sub_word");  // a - 2 uniform in [0, n-4]
    for (int round = 0; round < kMillerRabinRounds; ++round) {
        check(BN_priv_rand_range_ex(a.get(), range.get(), 0, ctx), "BN_priv_rand_range_ex");
        check(BN_add_word(a.get(), 2), "BN_add_word");
        check(BN_mod_exp_mont(x.get(), a.get(), d.get(), n, ctx, mont.get()), "BN_mod_exp_mont");
        if (BN_is_one(x.get()) || BN_cmp(x.get(), n_minus_1.get()) == 0) continue;
        bool witness = true;  // a proves n composite unless some x^(2^i) == n-1
        for (int i = 1; i < s && witness; ++i) {
            check(BN_mod_sqr(x.get(), x.get(), n, ctx), "BN_mod_sqr");
            if (BN_cmp(x.get(), n_minus_1.get()) == 0) witness = false;
            else if (BN_is_one(x.get())) break;  // a nontrivial square root of 1: composite
        }
        if (witness) return false;
    }
    return true;
}

// A random prime p of exactly kPrimeBits bits (top two bits set, so that p*q has exactly
// kModulusBits bits) with gcd(p - 1, e) = 1: the first prime after a random odd start, as
// OpenSSL searches too.
Bn random_prime(BN_CTX* ctx) {
    Bn start = new_bn(), p = new_bn();
    for (;;) {
        check(BN_priv_rand_ex(start.get(), kPrimeBits, BN_RAND_TOP_TWO, BN_RAND_BOTTOM_ODD, 0, ctx),
              "BN_priv_rand_ex");
        const auto residues = residues_of(start.get());
        for (BN_ULONG delta = 0; delta < kMaxDelta; delta += 2) {
            if (has_small_factor(residues, delta)) continue;
            check(BN_copy(p.get(), start.get()) ? 1 : 0, "BN_copy");
            check(BN_add_word(p.get(), delta), "BN_add_word");
            if (BN_num_bits(p.get()) != kPrimeBits) break;  // walked past 2^512: draw again
            if (BN_mod_word(p.get(), kPublicExponent) == 1) continue;  // e would divide p - 1
            if (probably_prime(p.get(), ctx)) return p;
        }
    }
}

struct RsaParts {
    Bn n = new_bn(), e = new_bn(), d = new_bn(), dmp1 = new_bn(), dmq1 = new_bn(), iqmp = new_bn();
};

// n = pq, d = e^-1 mod lcm(p-1, q-1), and the CRT values OpenSSL decrypts with.
RsaParts derive(const BIGNUM* p, const BIGNUM* q, BN_CTX* ctx) {
    RsaParts k;
    Bn p1 = new_bn(), q1 = new_bn(), gcd = new_bn(), lambda = new_bn(), product = new_bn();
    check(BN_mul(k.n.get(), p, q, ctx), "BN_mul");
    check(BN_set_word(k.e.get(), kPublicExponent), "BN_set_word");
    check(BN_sub(p1.get(), p, BN_value_one()), "BN_sub");
    check(BN_sub(q1.get(), q, BN_value_one()), "BN_sub");
    check(BN_gcd(gcd.get(), p1.get(), q1.get(), ctx), "BN_gcd");
    check(BN_mul(product.get(), p1.get(), q1.get(), ctx), "BN_mul");
    check(BN_div(lambda.get(), nullptr, product.get(), gcd.get(), ctx), "BN_div");
    BN_set_flags(lambda.get(), BN_FLG_CONSTTIME);
    if (!BN_mod_inverse(k.d.get(), k.e.get(), lambda.get(), ctx)) refuse("e has no inverse");
    BN_set_flags(k.d.get(), BN_FLG_CONSTTIME);
    check(BN_mod(k.dmp1.get(), k.d.get(), p1.get(), ctx), "BN_mod");
    check(BN_mod(k.dmq1.get(), k.d.get(), q1.get(), ctx), "BN_mod");
    if (!BN_mod_inverse(k.iqmp.get(), q, p, ctx)) refuse("q has no inverse mod p");
    return k;
}

RsaKey assemble(const BIGNUM* p, const BIGNUM* q, BN_CTX* ctx) {
    const RsaParts k = derive(p, q, ctx);
    const std::unique_ptr<OSSL_PARAM_BLD, ParamBuildDeleter> build(OSSL_PARAM_BLD_new());
    if (!build) refuse("out of memory");
    const std::pair<const char*, const BIGNUM*> fields[] = {
        {OSSL_PKEY_PARAM_RSA_N, k.n.get()},           {OSSL_PKEY_PARAM_RSA_E, k.e.get()},
        {OSSL_PKEY_PARAM_RSA_D, k.d.get()},           {OSSL_PKEY_PARAM_RSA_FACTOR1, p},
        {OSSL_PKEY_PARAM_RSA_FACTOR2, q},             {OSSL_PKEY_PARAM_RSA_EXPONENT1, k.dmp1.get()},
        {OSSL_PKEY_PARAM_RSA_EXPONENT2, k.dmq1.get()}, {OSSL_PKEY_PARAM_RSA_COEFFICIENT1, k.iqmp.get()}};
    for (const auto& [name, value] : fields) check(OSSL_PARAM_BLD_push_BN(build.get(), name, value), name);
    const std::unique_ptr<OSSL_PARAM, ParamDeleter> params(OSSL_PARAM_BLD_to_param(build.get()));
    const std::unique_ptr<EVP_PKEY_CTX, PkeyCtxDeleter> from(EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr));
    if (!params || !from) refuse("out of memory");
    EVP_PKEY* key = nullptr;
    if (EVP_PKEY_fromdata_init(from.get()) != 1 ||
        EVP_PKEY_fromdata(from.get(), &key, EVP_PKEY_KEYPAIR, params.get()) != 1)
        refuse("OpenSSL refused the key (FIPS mode?)");
    return RsaKey(key);
}

// Encrypts and decrypts a probe with the new key: a wrong key never reaches a client.
bool round_trips(EVP_PKEY* key) {
    const std::unique_ptr<EVP_PKEY_CTX, PkeyCtxDeleter> ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr));
    const unsigned char probe[] = "vmgate key check";
    unsigned char cipher[kModulusBits / 8];
    unsigned char plain[kModulusBits / 8];
    std::size_t cipher_len = sizeof cipher, plain_len = sizeof plain;
    const bool ok = ctx && EVP_PKEY_encrypt_init(ctx.get()) == 1 &&
                    EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) == 1 &&
                    EVP_PKEY_encrypt(ctx.get(), cipher, &cipher_len, probe, sizeof probe) == 1 &&
                    EVP_PKEY_decrypt_init(ctx.get()) == 1 &&
                    EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) == 1 &&
                    EVP_PKEY_decrypt(ctx.get(), plain, &plain_len, cipher, cipher_len) == 1 &&
                    plain_len == sizeof probe && std::equal(probe, probe + sizeof probe, plain);
    ERR_clear_error();
    return ok;
}

}  // namespace

RsaKey generate_ticket_rsa_key() {
    const std::unique_ptr<BN_CTX, BnCtxDeleter> ctx(BN_CTX_secure_new());
    if (!ctx) refuse("out of memory");
    for (;;) {
        const Bn p = random_prime(ctx.get());
        const Bn q = random_prime(ctx.get());
        if (BN_cmp(p.get(), q.get()) == 0) continue;
        RsaKey key = assemble(p.get(), q.get(), ctx.get());
        if (EVP_PKEY_get_bits(key.get()) == kModulusBits && round_trips(key.get())) return key;
    }
}

}  // namespace vmgate::auth
