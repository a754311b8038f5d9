// VNC authentication (security type 2, §2): the DES response to a 16-byte challenge, computed
// the same way by the gateway answering QEMU (upstream) and checking a client (downstream).
#pragma once

#include "vnc/des.hpp"
#include "vnc/protocol.hpp"

#include <string_view>

namespace vmgate::vnc {

// §2 steps 1-2: the first 8 bytes of the password (longer ones are silently truncated, as QEMU,
// gtk-vnc and TigerVNC do), zero-padded, each byte bit-mirrored, because VNC's DES reads key
// bits LSB first. "password" → 0e 86 ce ce ee f6 4e 26.
DesBlock vnc_auth_key(std::string_view password);

// §2 step 3: DES-ECB of the two 8-byte halves of the challenge, independently.
VncResponse vnc_auth_response(std::string_view password, const VncChallenge& challenge);

// §2 step 4: whether `response` is right for `password`, compared in constant time so the time
// taken does not tell a client how many leading bytes it guessed.
bool vnc_auth_response_matches(std::string_view password, const VncChallenge& challenge,
                               const VncResponse& response);

}  // namespace vmgate::vnc
