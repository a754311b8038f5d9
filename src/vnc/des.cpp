#include "vnc/des.hpp"

#include <cstddef>

namespace vmgate::vnc {
namespace {

// FIPS 46-3 tables. Entries are 1-based bit positions counted from the most significant bit of
// the input, as the standard prints them.
constexpr std::array<std::uint8_t, 64> initial_permutation{
    58, 50, 42, 34, 26, 18, 10, 2, 60, 52, 44, 36, 28, 20, 12, 4,
    62, 54, 46, 38, 30, 22, 14, 6, 64, 56, 48, 40, 32, 24, 16, 8,
    57, 49, 41, 33, 25, 17, 9,  1, 59, 51, 43, 35, 27, 19, 11, 3,
    61, 53, 45, 37, 29, 21, 13, 5, 63, 55, 47, 39, 31, 23, 15, 7,
};

constexpr std::array<std::uint8_t, 48> expansion{
    32, 1,  2,  3,  4,  5,  4,  5,  6,  7,  8,  9,  8,  9,  10, 11,
    12, 13, 12, 13, 14, 15, 16, 17, 16, 17, 18, 19, 20, 21, 20, 21,
    22, 23, 24, 25, 24, 25, 26, 27, 28, 29, 28, 29, 30, 31, 32, 1,
};

constexpr std::array<std::uint8_t, 32> round_permutation{
    16, 7, 20, 21, 29, 12, 28, 17, 1,  15, 23, 26, 5,  18, 31, 10,
    2,  8, 24, 14, 32, 27, 3,  9,  19, 13, 30, 6,  22, 11, 4,  25,
};

constexpr std::array<std::uint8_t, 56> permuted_choice_1{
    57, 49, 41, 33, 25, 17, 9,  1,  58, 50, 42, 34, 26, 18,
    10, 2,  59, 51, 43, 35, 27, 19, 11, 3,  60, 52, 44, 36,
    63, 55, 47, 39, 31, 23, 15, 7,  62, 54, 46, 38, 30, 22,
    14, 6,  61, 53, 45, 37, 29, 21, 13, 5,  28, 20, 12, 4,
};

constexpr std::array<std::uint8_t, 48> permuted_choice_2{
    14, 17, 11, 24, 1,  5,  3,  28, 15, 6,  21, 10, 23, 19, 12, 4,
    26, 8,  16, 7,  27, 20, 13, 2,  41, 52, 31, 37, 47, 55, 30, 40,
    51, 45, 33, 48, 44, 49, 39, 56, 34, 53, 46, 42, 50, 36, 29, 32,
};

constexpr std::size_t rounds = 16;
constexpr std::array<unsigned, rounds> key_rotations{1, 1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 1};

// S1..S8, each 4 rows of 16 columns.
constexpr std::size_t sbox_count = 8;
constexpr std::size_t sbox_entries = 64;
constexpr std::array<std::array<std::uint8_t, sbox_entries>, sbox_count> sboxes{{
    {14, 4,  13, 1, 2,  15, 11, 8,  3,  10, 6,  12, 5,  9,  0, 7,
     0,  15, 7,  4, 14, 2,  13, 1,  10, 6,  12, 11, 9,  5,  3, 8,
     4,  1,  14, 8, 13, 6,  2,  11, 15, 12, 9,  7,  3,  10, 5, 0,
     15, 12, 8,  2, 4,  9,  1,  7,  5,  11, 3,  14, 10, 0,  6, 13},
    {15, 1,  8,  14, 6,  11, 3,  4,  9,  7, 2,  13, 12, 0, 5,  10,
     3,  13, 4,  7,  15, 2,  8,  14, 12, 0, 1,  10, 6,  9, 11, 5,
     0,  14, 7,  11, 10, 4,  13, 1,  5,  8, 12, 6,  9,  3, 2,  15,
     13, 8,  10, 1,  3,  15, 4,  2,  11, 6, 7,  12, 0,  5, 14, 9},
    {10, 0,  9,  14, 6, 3,  15, 5,  1,  13, 12, 7,  11, 4,  2,  8,
     13, 7,  0,  9,  3, 4,  6,  10, 2,  8,  5,  14, 12, 11, 15, 1,
     13, 6,  4,  9,  8, 15, 3,  0,  11, 1,  2,  12, 5,  10, 14, 7,
     1,  10, 13, 0,  6, 9,  8,  7,  4,  15, 14, 3,  11, 5,  2,  12},
    {7,  13, 14, 3, 0,  6,  9,  10, 1,  2, 8, 5,  11, 12, 4,  15,
     13, 8,  11, 5, 6,  15, 0,  3,  4,  7, 2, 12, 1,  10, 14, 9,
     10, 6,  9,  0, 12, 11, 7,  13, 15, 1, 3, 14, 5,  2,  8,  4,
     3,  15, 0,  6, 10, 1,  13, 8,  9,  4, 5, 11, 12, 7,  2,  14},
    {2,  12, 4,  1,  7,  10, 11, 6,  8,  5,  3,  15, 13, 0, 14, 9,
     14, 11, 2,  12, 4,  7,  13, 1,  5,  0,  15, 10, 3,  9, 8,  6,
     4,  2,  1,  11, 10, 13, 7,  8,  15, 9,  12, 5,  6,  3, 0,  14,
     11, 8,  12, 7,  1,  14, 2,  13, 6,  15, 0,  9,  10, 4, 5,  3},
    {12, 1,  10, 15, 9, 2,  6,  8,  0,  13, 3,  4,  14, 7,  5,  11,
     10, 15, 4,  2,  7, 12, 9,  5,  6,  1,  13, 14, 0,  11, 3,  8,
     9,  14, 15, 5,  2, 8,  12, 3,  7,  0,  4,  10, 1,  13, 11, 6,
     4,  3,  2,  12, 9, 5,  15, 10, 11, 14, 1,  7,  6,  0,  8,  13},
    {4,  11, 2,  14, 15, 0, 8,  13, 3,  12, 9, 7,  5,  10, 6, 1,
     13, 0,  11, 7,  4,  9, 1,  10, 14, 3,  5, 12, 2,  15, 8, 6,
     1,  4,  11, 13, 12, 3, 7,  14, 10, 15, 6, 8,  0,  5,  9, 2,
     6,  11, 13, 8,  1,  4, 10, 7,  9,  5,  0, 15, 14, 2,  3, 12},
    {13, 2,  8,  4, 6,  15, 11, 1,  10, 9,  3,  14, 5,  0,  12, 7,
     1,  15, 13, 8, 10, 3,  7,  4,  12, 5,  6,  11, 0,  14, 9,  2,
     7,  11, 4,  1, 9,  12, 14, 2,  0,  6,  10, 13, 15, 3,  5,  8,
     2,  1,  14, 7, 4,  10, 8,  13, 15, 12, 9,  0,  3,  5,  6,  11},
}};

constexpr std::size_t sbox_row_len = 16;
constexpr std::size_t sbox_input_bits = 6;
constexpr std::size_t sbox_output_bits = 4;
constexpr unsigned block_bits = 64;
constexpr unsigned half_block_bits = 32;
constexpr unsigned key_bits = 56;  // after permuted choice 1 drops the parity bits
constexpr unsigned half_key_bits = 28;
constexpr std::uint64_t half_key_mask = (std::uint64_t{1} << half_key_bits) - 1;
constexpr std::uint64_t half_block_mask = (std::uint64_t{1} << half_block_bits) - 1;
constexpr std::uint64_t sbox_input_mask = (1u << sbox_input_bits) - 1;
constexpr unsigned bits_per_byte = 8;

// Every S-box row is a permutation of 0..15; checked at compile time against typing errors.
constexpr bool sbox_rows_are_permutations() {
    for (const auto& box : sboxes) {
        for (std::size_t row = 0; row < sbox_entries; row += sbox_row_len) {
            unsigned seen = 0;
            for (std::size_t col = 0; col < sbox_row_len; ++col) seen |= 1u << box[row + col];
            if (seen != 0xFFFF) return false;
        }
    }
    return true;
}
static_assert(sbox_rows_are_permutations());

// The final permutation is the inverse of the initial one.
constexpr std::array<std::uint8_t, 64> inverse(const std::array<std::uint8_t, 64>& table) {
    std::array<std::uint8_t, 64> inv{};
    for (std::size_t i = 0; i < table.size(); ++i) inv[table[i] - 1] = static_cast<std::uint8_t>(i + 1);
    return inv;
}
constexpr std::array<std::uint8_t, 64> final_permutation = inverse(initial_permutation);

// Output bit i (from the MSB) is input bit table[i] (1-based from the MSB of an in_bits value).
template <std::size_t N>
std::uint64_t permute(std::uint64_t in, unsigned in_bits, const std::array<std::uint8_t, N>& table) {
    std::uint64_t out = 0;
    for (std::uint8_t position : table) out = (out << 1) | ((in >> (in_bits - position)) & 1);
    return out;
}

std::uint64_t rotate_half(std::uint64_t half, unsigned by) {
    return ((half << by) | (half >> (half_key_bits - by))) & half_key_mask;
}

std::array<std::uint64_t, rounds> key_schedule(std::uint64_t key) {
    const std::uint64_t selected = permute(key, block_bits, permuted_choice_1);
    std::uint64_t c = selected >> half_key_bits;
    std::uint64_t d = selected & half_key_mask;
    std::array<std::uint64_t, rounds> subkeys{};
    for (std::size_t i = 0; i < rounds; ++i) {
        c = rotate_half(c, key_rotations[i]);
        d = rotate_half(d, key_rotations[i]);
        subkeys[i] = permute((c << half_key_bits) | d, key_bits, permuted_choice_2);
    }
    return subkeys;
}

// The cipher function f(R, K): expand, mix in the subkey, substitute, permute.
std::uint64_t feistel(std::uint64_t right, std::uint64_t subkey) {
    const std::uint64_t mixed = permute(right, half_block_bits, expansion) ^ subkey;
    std::uint64_t substituted = 0;
    for (std::size_t box = 0; box < sbox_count; ++box) {
        const unsigned shift = static_cast<unsigned>((sbox_count - 1 - box) * sbox_input_bits);
        const auto six = static_cast<unsigned>((mixed >> shift) & sbox_input_mask);
        // FIPS 46-3: the outer two bits pick the row, the inner four the column.
        const unsigned row = ((six >> (sbox_input_bits - 2)) & 0b10) | (six & 0b01);
        const unsigned column = (six >> 1) & 0b1111;
        substituted = (substituted << sbox_output_bits) | sboxes[box][row * sbox_row_len + column];
    }
    return permute(substituted, half_block_bits, round_permutation);
}

std::uint64_t load(const DesBlock& bytes) {
    std::uint64_t value = 0;
    for (std::uint8_t b : bytes) value = (value << bits_per_byte) | b;
    return value;
}

DesBlock store(std::uint64_t value) {
    DesBlock bytes{};
    for (std::size_t i = bytes.size(); i-- > 0;) {
        bytes[i] = static_cast<std::uint8_t>(value);
        value >>= bits_per_byte;
    }
    return bytes;
}

}  // namespace

DesBlock des_encrypt(const DesBlock& key, const DesBlock& plaintext) {
    const auto subkeys = key_schedule(load(key));
    const std::uint64_t permuted = permute(load(plaintext), block_bits, initial_permutation);
    std::uint64_t left = permuted >> half_block_bits;
    std::uint64_t right = permuted & half_block_mask;
    for (std::uint64_t subkey : subkeys) {
        const std::uint64_t next = left ^ feistel(right, subkey);
        left = right;
        right = next;
    }
    // The halves are swapped once more before the final permutation (R16 L16).
    return store(permute((right << half_block_bits) | left, block_bits, final_permutation));
}

}  // namespace vmgate::vnc
