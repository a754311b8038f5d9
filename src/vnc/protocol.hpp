// RFB (VNC) wire-protocol vocabulary: enums, limits and the small codecs shared by both handshake
// machines in this folder. Section numbers (§) refer to docs/rfb-protocol.md.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace vmgate::vnc {

// §1.2 top-level security types: the ones vmgate speaks on either side. Others a peer may name
// (RA2, Tight, TLS-VINO, Apple, ...) are only ever compared against and refused.
enum class SecurityType : std::uint8_t {
    invalid = 0,  // in a 3.3 security-type word or an empty 3.7+ list: failure, reason follows
    none = 1,
    vnc_auth = 2,  // §2 DES challenge/response
    vencrypt = 19,  // §3
    sasl = 20,      // §4; vmgate uses its framing only inside VeNCrypt (x509_sasl, tls_sasl)
};

// §3.2 VeNCrypt subtypes (u32 on the wire). TLS* = anonymous Diffie-Hellman TLS, X509* = TLS
// with a server certificate; the suffix is the authentication that runs inside. The ordinary
// types 1 and 2 may also be listed as subtypes (§3.1); they get no TLS and no ack byte.
//
// 263/264: the community spec (rfbproto.rst) names 263 TLSSASL and 264 X509SASL, but QEMU
// (ui/vnc.h), gtk-vnc (vncconnection.h) and libvncclient (rfbproto.h) — every implementation
// of the SASL subtypes — use 263 = X509SASL and 264 = TLSSASL. vmgate follows the
// implementations (§3.2, §9 item 2).
enum class VencryptSubtype : std::uint32_t {
    none = 1,
    vnc_auth = 2,
    plain = 256,  // no TLS at all: cleartext password (§3.3)
    tls_none = 257,
    tls_vnc = 258,
    tls_plain = 259,
    x509_none = 260,
    x509_vnc = 261,
    x509_plain = 262,
    x509_sasl = 263,  // QEMU/gtk-vnc/libvncclient numbering
    tls_sasl = 264,   // QEMU/gtk-vnc/libvncclient numbering
};

// §1.3 SecurityResult status word.
enum class SecurityResult : std::uint32_t {
    ok = 0,
    failed = 1,
    too_many_attempts = 2,  // Tight only; read like failed
};

// §5.2 client → server message types after ServerInit: exactly the ones QEMU's
// protocol_client_msg (ui/vnc.c) parses. QEMU closes the connection on any other type (it has no
// case for EnableContinuousUpdates 150, Fence 248 or gii 253, though vnc.h names 253), so
// ClientMessageFilter refuses them itself and can say why.
enum class ClientMessageType : std::uint8_t {
    set_pixel_format = 0,            // 20 bytes
    set_encodings = 2,               // 4 + 4 * u16 count at offset 2
    framebuffer_update_request = 3,  // 10 bytes
    key_event = 4,                   // 8 bytes
    pointer_event = 5,               // 6 bytes
    client_cut_text = 6,             // 8 + |s32 length at offset 4|; negative = extended clipboard
    xvp = 250,                       // 4 bytes; power control, only with QEMU's power-control=on
    set_desktop_size = 251,          // 8 + 16 * u8 screen count at offset 6
    qemu = 255,                      // QemuClientSubtype at offset 1
};

// The u8 at offset 1 of a ClientMessageType::qemu message.
enum class QemuClientSubtype : std::uint8_t {
    extended_key_event = 0,  // 12 bytes: u16 down, u32 keysym, u32 XT keycode
    audio = 1,               // QemuAudioOperation at offset 2
};

// The u16 at offset 2 of a QEMU audio message.
enum class QemuAudioOperation : std::uint16_t {
    enable = 0,      // 4 bytes
    disable = 1,     // 4 bytes
    set_format = 2,  // 10 bytes: u8 sample format, u8 channels, u32 frequency
};

// Which TLS a VeNCrypt subtype runs before its inner authentication (§3.4).
enum class TlsKind {
    anonymous,  // TLS*: anonymous DH, TLS <= 1.2, no certificate
    x509,       // X509*: the server presents a certificate
};

// §1.1: the only version either side of vmgate speaks. Sent by the server first.
inline constexpr std::size_t protocol_version_size = 12;
inline constexpr std::string_view protocol_version_3_8 = "RFB 003.008\n";

// §3.1 the VeNCrypt version vmgate offers and accepts, and the status/ack bytes. The two "OK"
// bytes differ (§9 item 1): version status 0 = OK, subtype ack 1 = OK.
inline constexpr std::uint8_t vencrypt_major = 0;
inline constexpr std::uint8_t vencrypt_minor = 2;
inline constexpr std::uint8_t vencrypt_version_ok = 0;
inline constexpr std::uint8_t vencrypt_version_refused = 1;  // QEMU's value; any non-zero refuses
inline constexpr std::uint8_t vencrypt_subtype_ack = 1;

// §2: challenge and response are 16 bytes, two DES blocks.
inline constexpr std::size_t vnc_auth_size = 16;
using VncChallenge = std::array<std::uint8_t, vnc_auth_size>;
using VncResponse = std::array<std::uint8_t, vnc_auth_size>;

// §5.1 ServerInit: u16 width, u16 height, 16-byte PIXEL_FORMAT, u32 name length, then the name.
inline constexpr std::size_t pixel_format_size = 16;
inline constexpr std::size_t server_init_header_size = 24;

// Limits. Every length a peer sends is checked against one of these before anything waits for
// or allocates that many bytes (design.md, security invariant 3).
//
// §1.3: gtk-vnc silently drops a reason longer than 1023 bytes, the spec advises < 256; vmgate
// truncates what it sends and refuses longer reasons from QEMU (whose own are ~30 bytes).
inline constexpr std::size_t max_reason_len = 255;
// §4.1: gtk-vnc refuses a longer mechanism list.
inline constexpr std::size_t max_sasl_mechlist_len = 300;
// §4.2: QEMU refuses a longer mechanism name.
inline constexpr std::size_t max_sasl_mechname_len = 100;
// §4.2: QEMU and gtk-vnc allow 1 MiB; SCRAM and PLAIN messages are tiny, GSSAPI tokens stay far
// below this. The same bound as the SPICE SASL framing.
inline constexpr std::size_t max_sasl_data_len = 64 * 1024;
// §3.3: the spec leaves Plain lengths open; TigerVNC's server refuses about 1 KiB.
inline constexpr std::size_t max_plain_username_len = 255;
inline constexpr std::size_t max_plain_password_len = 1024;
// §5.1: gtk-vnc refuses a longer desktop name; QEMU's is at most 1024 bytes.
inline constexpr std::size_t max_desktop_name_len = 4096;
// §5.2: QEMU refuses a ClientCutText (plain or extended) whose text or payload is longer.
inline constexpr std::size_t max_client_cut_text_len = 1024 * 1024;
// The longest client message the gateway passes: a ClientCutText of the largest length. The
// other variable-length messages are bounded by their count fields below this (SetEncodings
// 4 + 4 * 65535 bytes, SetDesktopSize 8 + 16 * 255).
inline constexpr std::size_t max_client_message_size = 8 + max_client_cut_text_len;
// Unparsed bytes a machine holds while it waits for the gateway; above the largest legal
// message (4 + 64 KiB of SASL data).
inline constexpr std::size_t max_handshake_buffer = 128 * 1024;

// A protocol violation or refusal, as an event of both handshake machines: a human reason for
// logs. What (if anything) the peer was told is already in the machine's output.
struct Failed {
    std::string detail;
};

// §1.1 "RFB xxx.yyy\n" with the two 3-digit decimal numbers.
struct ProtocolVersion {
    unsigned major = 0;
    unsigned minor = 0;
};

// How many leading bytes of `bytes` (up to 12) fit the version layout. Less than
// min(size, 12) means the peer is not speaking RFB, known without waiting for 12 bytes (an HTTP
// request, a TLS ClientHello), and at the same byte however the input was split.
std::size_t protocol_version_match_length(std::span<const std::uint8_t> bytes);

// nullopt unless `bytes` is a complete, well-formed version message.
std::optional<ProtocolVersion> parse_protocol_version(std::span<const std::uint8_t> bytes);

// Peer-controlled text goes into log details: printable ASCII, anything else as '?'.
std::string printable(std::span<const std::uint8_t> bytes);

}  // namespace vmgate::vnc
