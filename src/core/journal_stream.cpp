#include "core/journal_stream.hpp"

#include <sys/stat.h>

#include <charconv>
#include <cstdlib>
#include <optional>

namespace vmgate::core {
namespace {

std::optional<std::uint64_t> decimal(std::string_view text) {
    std::uint64_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
    return value;
}

}  // namespace

bool journal_stream_matches(std::string_view journal_stream, std::uint64_t dev, std::uint64_t ino) {
    const auto colon = journal_stream.find(':');
    if (colon == std::string_view::npos) return false;
    const auto d = decimal(journal_stream.substr(0, colon));
    const auto i = decimal(journal_stream.substr(colon + 1));
    return d && i && *d == dev && *i == ino;
}

bool stderr_is_journal() {
    const char* journal_stream = std::getenv("JOURNAL_STREAM");
    if (journal_stream == nullptr) return false;
    struct stat st {};
    if (::fstat(2, &st) != 0) return false;
    return journal_stream_matches(journal_stream, static_cast<std::uint64_t>(st.st_dev),
                                  static_cast<std::uint64_t>(st.st_ino));
}

}  // namespace vmgate::core
