// Byte-vector helpers shared by the protocol unit tests (spice_*.cpp, vnc_*.cpp).
#pragma once

#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace vmgate::test {

using Bytes = std::vector<std::uint8_t>;

// "52 46 42" → {0x52, 0x46, 0x42}; whitespace is ignored.
inline Bytes hex(std::string_view text) {
    Bytes out;
    std::string digits;
    for (char c : text) {
        if (c == ' ' || c == '\n') continue;
        digits.push_back(c);
        if (digits.size() == 2) {
            out.push_back(static_cast<std::uint8_t>(std::stoul(digits, nullptr, 16)));
            digits.clear();
        }
    }
    if (!digits.empty()) throw std::invalid_argument("odd number of hex digits");
    return out;
}

inline std::string to_hex(std::span<const std::uint8_t> bytes) {
    std::string s;
    for (std::uint8_t b : bytes) {
        char buf[3];
        std::snprintf(buf, sizeof buf, "%02x", b);
        s += buf;
    }
    return s;
}

inline Bytes ascii(std::string_view text) { return Bytes(text.begin(), text.end()); }

inline Bytes cat(std::initializer_list<Bytes> parts) {
    Bytes out;
    for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
}

inline Bytes to_bytes(std::span<const std::uint8_t> bytes) { return Bytes(bytes.begin(), bytes.end()); }

// Every way to cut a stream: {whole}, each single cut point, and byte by byte.
inline std::vector<std::vector<Bytes>> chunkings(const Bytes& stream) {
    std::vector<std::vector<Bytes>> all{{stream}};
    for (std::size_t cut = 1; cut < stream.size(); ++cut) {
        all.push_back({Bytes(stream.begin(), stream.begin() + static_cast<std::ptrdiff_t>(cut)),
                       Bytes(stream.begin() + static_cast<std::ptrdiff_t>(cut), stream.end())});
    }
    std::vector<Bytes> single;
    for (std::uint8_t b : stream) single.push_back({b});
    all.push_back(single);
    return all;
}

}  // namespace vmgate::test
