// The VNC client's handshake in front of a VNC path's data phase (rfb-protocol.md §1-§3, §5.1):
// RFB 3.8; then security None, as QEMU's unix socket offers it (the sink, directly or behind a
// TLS terminator), or VeNCrypt with certificate TLS and X509Plain or X509Vnc (vmgate); then
// ClientInit and ServerInit.
#pragma once

#include "channel.hpp"

#include "vnc/protocol.hpp"

#include <optional>
#include <string>

namespace vmgate::bench {

struct VncLogin {
    // nullopt: security None. x509_plain: `user` and the password in `secret` (checked by
    // vmgate's Cyrus sasldb); x509_vnc: a one-time ticket from vmgate's admin socket in `secret`.
    std::optional<vnc::VencryptSubtype> vencrypt;
    std::string user;
    std::string secret;
};

// Connects and logs in; the channel returned is in its data phase. With VeNCrypt the TLS
// handshake (target.tls, required) starts once the server acknowledged the subtype (§3.1);
// without it TLS, if any, comes first. Throws std::runtime_error, with the server's reason when
// it gave one, on any refusal.
Channel vnc_connect(const Target& target, const VncLogin& login);

}  // namespace vmgate::bench
