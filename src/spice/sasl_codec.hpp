// SASL-over-SPICE framing helpers (§5.1). The SASL exchange itself (Cyrus) lives in src/auth.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vmgate::spice {

// Turns "SCRAM-SHA-256,PLAIN" (commas and/or spaces) into the framed wire form
// ",SCRAM-SHA-256,PLAIN," that spice-server builds with sasl_listmech(",", ",", ","). nullopt if
// the list names no mechanism or the framed form exceeds max_sasl_mechlist_len (spice-gtk aborts).
std::optional<std::string> format_sasl_mechlist(std::string_view mechanisms);

// §5.1 row 2: the name is acceptable iff it has no comma and ",name," occurs in the framed list.
bool sasl_mechlist_offers(std::string_view framed_list, std::string_view name);

// §5.1 row 4: u32 length (0 = no data; otherwise data size + 1 for the NUL the client strips),
// the data, that NUL, then u8 complete.
void put_sasl_server_data(std::vector<std::uint8_t>& out,
                          const std::optional<std::vector<std::uint8_t>>& data, bool complete);

}  // namespace vmgate::spice
