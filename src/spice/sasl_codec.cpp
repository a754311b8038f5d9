#include "spice/sasl_codec.hpp"

#include "spice/protocol.hpp"
#include "spice/wire.hpp"

#include <algorithm>

namespace vmgate::spice {
namespace {

constexpr char mech_separator = ',';
constexpr std::string_view accepted_separators = ", ";
constexpr std::uint8_t nul = 0;
// §5.1 row 4: SASL_CONTINUE vs SASL_OK.
constexpr std::uint8_t step_continues = 0;
constexpr std::uint8_t step_complete = 1;

}  // namespace

std::optional<std::string> format_sasl_mechlist(std::string_view mechanisms) {
    std::string framed(1, mech_separator);
    std::size_t pos = 0;
    while (pos < mechanisms.size()) {
        const std::size_t end = std::min(mechanisms.find_first_of(accepted_separators, pos),
                                         mechanisms.size());
        if (end > pos) {
            framed.append(mechanisms.substr(pos, end - pos));
            framed.push_back(mech_separator);
        }
        pos = end + 1;
    }
    const bool empty = framed.size() == 1;
    if (empty || framed.size() > max_sasl_mechlist_len) return std::nullopt;
    return framed;
}

bool sasl_mechlist_offers(std::string_view framed_list, std::string_view name) {
    if (name.empty() || name.find(mech_separator) != std::string_view::npos) return false;
    std::string needle(1, mech_separator);
    needle.append(name);
    needle.push_back(mech_separator);
    return framed_list.find(needle) != std::string_view::npos;
}

void put_sasl_server_data(std::vector<std::uint8_t>& out,
                          const std::optional<std::vector<std::uint8_t>>& data, bool complete) {
    if (data) {
        wire::put_u32(out, static_cast<std::uint32_t>(data->size() + sizeof nul));
        wire::put_bytes(out, *data);
        wire::put_u8(out, nul);
    } else {
        wire::put_u32(out, 0);
    }
    wire::put_u8(out, complete ? step_complete : step_continues);
}

}  // namespace vmgate::spice
