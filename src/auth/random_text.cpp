#include "auth/random_text.hpp"

#include <openssl/rand.h>

#include <array>
#include <stdexcept>

namespace vmgate::auth {

std::string random_text(std::string_view alphabet, std::size_t length) {
    // Bytes at or above the largest multiple of the alphabet size are dropped, so that every
    // character is equally likely (a plain modulo would favour the first ones).
    const unsigned limit = 256u - 256u % static_cast<unsigned>(alphabet.size());
    std::string text;
    while (text.size() < length) {
        std::array<unsigned char, 32> bytes{};
        if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1)
            throw std::runtime_error("OpenSSL RAND_bytes failed: no randomness for secrets");
        for (const unsigned char byte : bytes)
            if (byte < limit && text.size() < length) text += alphabet[byte % alphabet.size()];
    }
    return text;
}

}  // namespace vmgate::auth
