// Bytes received but not yet parsed, for the sans-I/O protocol machines (SPICE and RFB).
// Parsers peek at view(), wait until a whole message is present, then consume() it, so a
// message split at any boundary parses like a whole one. Header-only: the protocol modules
// use it without linking the rest of core.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <span>
#include <vector>

namespace vmgate::core {

class InputBuffer {
public:
    void append(std::span<const std::uint8_t> bytes) { data_.insert(data_.end(), bytes.begin(), bytes.end()); }
    std::size_t size() const { return data_.size() - start_; }
    bool empty() const { return size() == 0; }
    std::span<const std::uint8_t> view() const { return std::span(data_).subspan(start_); }

    void consume(std::size_t count) {
        start_ += count;
        if (start_ == data_.size()) {
            data_.clear();
            start_ = 0;
        } else if (start_ > data_.size() / 2) {
            data_.erase(data_.begin(), std::next(data_.begin(), static_cast<std::ptrdiff_t>(start_)));
            start_ = 0;
        }
    }

    std::vector<std::uint8_t> take_all() {
        std::vector<std::uint8_t> rest(std::next(data_.begin(), static_cast<std::ptrdiff_t>(start_)), data_.end());
        data_.clear();
        start_ = 0;
        return rest;
    }

private:
    std::vector<std::uint8_t> data_;
    std::size_t start_ = 0;  // consumed prefix, compacted lazily to keep consume() O(1) amortized
};

}  // namespace vmgate::core
