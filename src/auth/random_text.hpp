// Random strings for secrets people type or paste (tickets, demo passwords).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace vmgate::auth {

// `length` characters drawn uniformly from `alphabet` (1..256 characters) with OpenSSL's CSPRNG.
// Throws std::runtime_error when the CSPRNG fails.
std::string random_text(std::string_view alphabet, std::size_t length);

}  // namespace vmgate::auth
