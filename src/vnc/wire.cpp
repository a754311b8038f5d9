#include "vnc/wire.hpp"

#include <iterator>

namespace vmgate::vnc::wire {

void InputBuffer::append(std::span<const std::uint8_t> bytes) {
    data_.insert(data_.end(), bytes.begin(), bytes.end());
}

void InputBuffer::consume(std::size_t count) {
    start_ += count;
    if (start_ == data_.size()) {
        data_.clear();
        start_ = 0;
    } else if (start_ > data_.size() / 2) {
        data_.erase(data_.begin(), std::next(data_.begin(), static_cast<std::ptrdiff_t>(start_)));
        start_ = 0;
    }
}

std::vector<std::uint8_t> InputBuffer::take_all() {
    std::vector<std::uint8_t> rest(std::next(data_.begin(), static_cast<std::ptrdiff_t>(start_)),
                                   data_.end());
    data_.clear();
    start_ = 0;
    return rest;
}

}  // namespace vmgate::vnc::wire
