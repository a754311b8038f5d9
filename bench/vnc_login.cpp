#include "vnc_login.hpp"

#include "bench_wire.hpp"

#include "vnc/vnc_auth.hpp"
#include "vnc/wire.hpp"

#include <algorithm>
#include <array>
#include <stdexcept>
#include <vector>

namespace vmgate::bench {
namespace {

// Longer refusal reasons are not read: gtk-vnc's limit (§1.3). vmgate's are far shorter.
constexpr std::uint32_t max_reason_len = 1023;
constexpr std::size_t server_init_name_length_at = 20;
constexpr std::uint8_t shared_session = 1;  // §5.1 ClientInit; vmgate decides QEMU's flag itself

std::uint8_t read_u8(Channel& channel) {
    std::array<std::uint8_t, 1> byte{};
    channel.read_exact(byte);
    return byte[0];
}

std::uint32_t read_u32(Channel& channel) {
    std::array<std::uint8_t, sizeof(std::uint32_t)> bytes{};
    channel.read_exact(bytes);
    return vnc::wire::get_u32(bytes, 0);
}

std::vector<std::uint8_t> read_bytes(Channel& channel, std::size_t size) {
    std::vector<std::uint8_t> bytes(size);
    channel.read_exact(bytes);
    return bytes;
}

// §1.2, §1.3: u32 length and the text of a refusal.
std::string read_reason(Channel& channel) {
    const std::uint32_t length = read_u32(channel);
    if (length > max_reason_len) return "(a reason of " + std::to_string(length) + " bytes)";
    return vnc::printable(read_bytes(channel, length));
}

// §1.1: every server here (vmgate, the sink) speaks 3.8, and so does the client.
void exchange_versions(Channel& channel) {
    const auto version = read_bytes(channel, vnc::protocol_version_size);
    if (std::string(version.begin(), version.end()) != vnc::protocol_version_3_8)
        throw std::runtime_error("the server's greeting is not RFB 3.8: " + vnc::printable(version));
    std::vector<std::uint8_t> reply;
    vnc::wire::put_text(reply, vnc::protocol_version_3_8);
    channel.write_all(reply);
}

// §1.2: picks `wanted` from the server's list.
void choose_security_type(Channel& channel, vnc::SecurityType wanted) {
    const std::uint8_t count = read_u8(channel);
    if (count == 0) throw std::runtime_error("the server refused the connection: " + read_reason(channel));
    const auto types = read_bytes(channel, count);
    const auto type = static_cast<std::uint8_t>(wanted);
    if (std::ranges::find(types, type) == types.end())
        throw std::runtime_error("the server does not offer security type " + std::to_string(type));
    channel.write_all(std::array{type});
}

// §3.1 rows 1-7: version 0.2, then `subtype` from the server's list, acknowledged.
void negotiate_vencrypt(Channel& channel, vnc::VencryptSubtype subtype) {
    const std::array version{vnc::vencrypt_major, vnc::vencrypt_minor};
    if (read_bytes(channel, version.size()) != std::vector(version.begin(), version.end()))
        throw std::runtime_error("the server does not speak VeNCrypt 0.2");
    channel.write_all(version);
    if (read_u8(channel) != vnc::vencrypt_version_ok) throw std::runtime_error("the server refused VeNCrypt 0.2");
    const auto list = read_bytes(channel, std::size_t{read_u8(channel)} * sizeof(std::uint32_t));
    const auto code = static_cast<std::uint32_t>(subtype);
    bool offered = false;
    for (std::size_t at = 0; at < list.size(); at += sizeof(std::uint32_t))
        offered = offered || vnc::wire::get_u32(list, at) == code;
    if (!offered) throw std::runtime_error("the server does not offer VeNCrypt subtype " + std::to_string(code));
    std::vector<std::uint8_t> choice;
    vnc::wire::put_u32(choice, code);
    channel.write_all(choice);
    if (read_u8(channel) != vnc::vencrypt_subtype_ack)
        throw std::runtime_error("the server refused VeNCrypt subtype " + std::to_string(code));
}

// §3.3: sent unprompted once TLS is up.
void send_plain(Channel& channel, const VncLogin& login) {
    std::vector<std::uint8_t> message;
    vnc::wire::put_u32(message, static_cast<std::uint32_t>(login.user.size()));
    vnc::wire::put_u32(message, static_cast<std::uint32_t>(login.secret.size()));
    vnc::wire::put_text(message, login.user);
    vnc::wire::put_text(message, login.secret);
    channel.write_all(message);
}

// §2: the ticket is the VNC password; vmgate finds it by the response.
void answer_challenge(Channel& channel, const std::string& ticket) {
    vnc::VncChallenge challenge{};
    channel.read_exact(challenge);
    channel.write_all(vnc::vnc_auth_response(ticket, challenge));
}

void vencrypt_login(Channel& channel, const Target& target, const VncLogin& login) {
    choose_security_type(channel, vnc::SecurityType::vencrypt);
    negotiate_vencrypt(channel, *login.vencrypt);
    channel.start_tls(target);
    if (login.vencrypt == vnc::VencryptSubtype::x509_plain) send_plain(channel, login);
    else if (login.vencrypt == vnc::VencryptSubtype::x509_vnc) answer_challenge(channel, login.secret);
    else throw std::invalid_argument("the bench logs in with X509Plain or X509Vnc only");
}

// §1.3: in RFB 3.8 every security type ends with one, None included.
void expect_security_ok(Channel& channel) {
    if (read_u32(channel) != static_cast<std::uint32_t>(vnc::SecurityResult::ok))
        throw std::runtime_error("the server refused the login: " + read_reason(channel));
}

// §5.1. The ServerInit must be the sink's, byte for byte: proof that the path reaches it.
void initialise(Channel& channel) {
    channel.write_all(std::array{shared_session});
    auto init = read_bytes(channel, vnc::server_init_header_size);
    const std::uint32_t name_length = vnc::wire::get_u32(init, server_init_name_length_at);
    if (name_length > vnc::max_desktop_name_len) throw std::runtime_error("ServerInit with an overlong name");
    const auto name = read_bytes(channel, name_length);
    init.insert(init.end(), name.begin(), name.end());
    if (init != rfb::server_init()) throw std::runtime_error("the ServerInit is not the sink's");
}

}  // namespace

Channel vnc_connect(const Target& target, const VncLogin& login) {
    Channel channel = login.vencrypt ? Channel::open(target.endpoint) : Channel::connect(target);
    exchange_versions(channel);
    if (login.vencrypt) vencrypt_login(channel, target, login);
    else choose_security_type(channel, vnc::SecurityType::none);
    expect_security_ok(channel);
    initialise(channel);
    return channel;
}

}  // namespace vmgate::bench
