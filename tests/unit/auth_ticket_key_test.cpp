// TicketKey, encrypt_ticket and TicketKeyPool with real OpenSSL.
#include "auth/ticket_key.hpp"
#include "auth/ticket_key_pool.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace vmgate::auth {
namespace {

// DER of SubjectPublicKeyInfo{rsaEncryption, RSAPublicKey{modulus (128 bytes + leading 00), ...}}.
constexpr std::array<uint8_t, 29> kSpkiPrefix{
    0x30, 0x81, 0x9F, 0x30, 0x0D, 0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01,
    0x01, 0x05, 0x00, 0x03, 0x81, 0x8D, 0x00, 0x30, 0x81, 0x89, 0x02, 0x81, 0x81, 0x00};
constexpr std::array<uint8_t, 5> kSpkiSuffix{0x02, 0x03, 0x01, 0x00, 0x01};  // e = 65537

TEST(TicketKey, SpkiIsRsa1024WithExponent65537) {
    const auto key = TicketKey::generate();
    const auto& spki = key.public_spki();
    EXPECT_TRUE(std::equal(kSpkiPrefix.begin(), kSpkiPrefix.end(), spki.begin()));
    EXPECT_TRUE(
        std::equal(kSpkiSuffix.begin(), kSpkiSuffix.end(), spki.end() - kSpkiSuffix.size()));
}

TEST(TicketKey, EncryptThenDecryptRoundTrips) {
    const auto key = TicketKey::generate();
    const auto ciphertext = encrypt_ticket(key.public_spki(), "s3cret");
    ASSERT_TRUE(ciphertext);
    EXPECT_EQ(key.decrypt(*ciphertext), "s3cret");
}

TEST(TicketKey, EmptyPasswordIsASingleNul) {
    const auto key = TicketKey::generate();
    const auto ciphertext = encrypt_ticket(key.public_spki(), "");
    ASSERT_TRUE(ciphertext);
    EXPECT_EQ(key.decrypt(*ciphertext), "");
}

TEST(TicketKey, OaepIsRandomised) {
    const auto key = TicketKey::generate();
    EXPECT_NE(encrypt_ticket(key.public_spki(), "same"), encrypt_ticket(key.public_spki(), "same"));
}

TEST(TicketKey, WrongKeyFailsToDecrypt) {
    const auto key = TicketKey::generate();
    const auto other = TicketKey::generate();
    const auto ciphertext = encrypt_ticket(other.public_spki(), "s3cret");
    ASSERT_TRUE(ciphertext);
    EXPECT_EQ(key.decrypt(*ciphertext), std::nullopt);
}

TEST(TicketKey, GarbageFailsToDecrypt) {
    const auto key = TicketKey::generate();
    std::array<uint8_t, kTicketCiphertextSize> garbage{};
    garbage.fill(0x5A);
    EXPECT_EQ(key.decrypt(garbage), std::nullopt);
}

TEST(TicketKey, PasswordLengthLimitIs59) {
    const auto key = TicketKey::generate();
    const std::string longest(59, 'p');
    const auto ciphertext = encrypt_ticket(key.public_spki(), longest);
    ASSERT_TRUE(ciphertext);
    EXPECT_EQ(key.decrypt(*ciphertext), longest);
    EXPECT_EQ(encrypt_ticket(key.public_spki(), std::string(60, 'p')), std::nullopt);
}

TEST(TicketKey, PasswordWithNulIsRefused) {
    const auto key = TicketKey::generate();
    EXPECT_EQ(encrypt_ticket(key.public_spki(), std::string("a\0b", 3)), std::nullopt);
}

TEST(TicketKey, SpkiThatIsNotRsaIsRefused) {
    std::array<uint8_t, kTicketSpkiSize> junk{};
    junk.fill(0x30);
    EXPECT_EQ(encrypt_ticket(junk, "pw"), std::nullopt);
}

TEST(TicketKey, MovedFromKeyDecryptsNothing) {
    auto key = TicketKey::generate();
    const auto ciphertext = encrypt_ticket(key.public_spki(), "pw");
    ASSERT_TRUE(ciphertext);
    const TicketKey moved = std::move(key);
    EXPECT_EQ(moved.decrypt(*ciphertext), "pw");
    EXPECT_EQ(key.decrypt(*ciphertext), std::nullopt);  // moved-from: inert
}

TEST(TicketKeyPool, FillsInTheBackground) {
    TicketKeyPool pool(4);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (pool.available() < 4 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    EXPECT_EQ(pool.available(), 4U);
}

// Waits until the pool's thread has made `count` keys.
void wait_until_filled(const TicketKeyPool& pool, std::size_t count) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (pool.available() < count && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    ASSERT_EQ(pool.available(), count);
}

TEST(TicketKeyPool, HandsOutDistinctWorkingKeysAndRefills) {
    TicketKeyPool pool(2);
    std::set<std::array<uint8_t, kTicketSpkiSize>> seen;
    for (int round = 0; round < 3; ++round) {  // more keys than the capacity, over refills
        wait_until_filled(pool, 2);
        for (int i = 0; i < 2; ++i) {
            auto key = pool.try_take();
            ASSERT_TRUE(key);
            const auto ciphertext = encrypt_ticket(key->public_spki(), "pw");
            ASSERT_TRUE(ciphertext);
            EXPECT_EQ(key->decrypt(*ciphertext), "pw");
            EXPECT_TRUE(seen.insert(key->public_spki()).second) << "key handed out twice";
        }
    }
}

TEST(TicketKeyPool, TakeFromManyThreads) {
    TicketKeyPool pool(8);
    wait_until_filled(pool, 8);
    std::vector<std::array<uint8_t, kTicketSpkiSize>> spkis(8);
    {
        std::vector<std::jthread> threads;
        for (auto& spki : spkis)
            threads.emplace_back([&pool, &spki] {
                if (auto key = pool.try_take()) spki = key->public_spki();
            });
    }
    EXPECT_EQ(std::set(spkis.begin(), spkis.end()).size(), spkis.size());
}

// The caller then makes a key itself, where it holds up no other connection.
TEST(TicketKeyPool, EmptyPoolSaysSo) {
    TicketKeyPool pool(0);
    EXPECT_FALSE(pool.try_take());
    EXPECT_EQ(pool.available(), 0U);
}

}  // namespace
}  // namespace vmgate::auth
