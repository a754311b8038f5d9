// The HTTP proxy side of route = "connect" listeners (spice-protocol.md §9.3): spice-gtk, told
// `proxy=http://gateway:PORT`, opens each channel with `CONNECT host:port HTTP/1.x` and waits for
// a 2xx reply before it starts TLS inside the tunnel. vmgate is that proxy and also the tunnel's
// far end, so only CONNECT is served. Sans-I/O: fed bytes, it yields the request or the HTTP
// status to refuse it with.
#pragma once

#include "http/response.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>

namespace vmgate::http {

// The authority of `CONNECT host:port`: the host lowercased (GLib sends it lowercased anyway),
// an IPv6 literal without its brackets.
struct ConnectTarget {
    std::string host;
    std::uint16_t port = 0;
};

struct Rejection {
    Status status;
    std::string detail;  // for the client's body and the audit log
};

using ConnectResult = std::variant<ConnectTarget, Rejection>;

class ConnectRequestReader {
public:
    // A request head (request line and header fields) longer than this is refused: clients send
    // a few hundred bytes.
    static constexpr std::size_t max_head_size = 8192;

    // Feeds bytes from the client; once a result is there, further bytes are a client error
    // (the tunnel's first bytes may only follow vmgate's reply).
    void feed(std::span<const std::uint8_t> bytes);
    // The request, once its head is complete, or why it is refused; nullopt while more is needed.
    const std::optional<ConnectResult>& result() const { return result_; }

private:
    void check_request_line_start();
    void parse_head(std::string_view head);

    std::string head_;
    std::optional<ConnectResult> result_;
};

// "HTTP/1.1 200 Connection established" and an empty line: the tunnel is open (no body, as the
// client reads the reply up to the empty line and then starts TLS).
std::string tunnel_established();
// A complete error reply that closes the connection, with `detail` as its text/plain body;
// 405 also names the one method served.
std::string error_reply(const Rejection& rejection);

}  // namespace vmgate::http
