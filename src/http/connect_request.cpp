#include "http/connect_request.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <vector>

namespace vmgate::http {

namespace {

// RFC 9110 §5.6.2 token characters: what methods and header field names are made of.
bool is_tchar(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) { return !s.empty() && std::all_of(s.begin(), s.end(), is_tchar); }

bool is_host_name_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
}

bool is_ipv6_literal_char(char c) { return std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.'; }

std::vector<std::string_view> split_lines(std::string_view head) {
    std::vector<std::string_view> lines;
    while (!head.empty()) {
        const auto end = head.find('\n');
        std::string_view line = head.substr(0, end);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        lines.push_back(line);
        if (end == std::string_view::npos) break;
        head.remove_prefix(end + 1);
    }
    return lines;
}

std::optional<std::uint16_t> parse_port(std::string_view text) {
    unsigned value = 0;
    if (text.empty() || text.size() > 5) return std::nullopt;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size() || value == 0 || value > 65535) return std::nullopt;
    return static_cast<std::uint16_t>(value);
}

// "host:port" or "[v6]:port" (RFC 9112 §3.2.3, the authority form CONNECT uses).
std::optional<ConnectTarget> parse_authority(std::string_view authority) {
    std::string_view host;
    std::string_view port;
    if (authority.starts_with('[')) {
        const auto close = authority.find(']');
        if (close == std::string_view::npos || authority.substr(close + 1, 1) != ":") return std::nullopt;
        host = authority.substr(1, close - 1);
        port = authority.substr(close + 2);
        if (host.empty() || !std::all_of(host.begin(), host.end(), is_ipv6_literal_char)) return std::nullopt;
    } else {
        const auto colon = authority.rfind(':');
        if (colon == std::string_view::npos) return std::nullopt;
        host = authority.substr(0, colon);
        port = authority.substr(colon + 1);
        if (host.empty() || !std::all_of(host.begin(), host.end(), is_host_name_char)) return std::nullopt;
    }
    const auto number = parse_port(port);
    if (!number) return std::nullopt;
    ConnectTarget target{std::string(host), *number};
    std::transform(target.host.begin(), target.host.end(), target.host.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return target;
}

Rejection bad_request(std::string detail) { return {Status::bad_request, std::move(detail)}; }

}  // namespace

void ConnectRequestReader::feed(std::span<const std::uint8_t> bytes) {
    if (bytes.empty()) return;
    if (result_) {
        if (std::holds_alternative<ConnectTarget>(*result_))
            result_ = bad_request("data sent before the proxy's reply; wait for \"200\" before starting TLS");
        return;
    }
    const std::size_t searched = head_.size() >= 2 ? head_.size() - 2 : 0;
    head_.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    check_request_line_start();
    if (result_) return;
    // The head ends at the first empty line, written "\r\n" or (tolerated, RFC 9112 §2.2) "\n".
    std::size_t end = std::string::npos;
    std::size_t terminator = 0;
    for (std::size_t i = head_.find('\n', searched); i != std::string::npos; i = head_.find('\n', i + 1)) {
        if (head_.compare(i + 1, 1, "\n") == 0) terminator = 2;
        else if (head_.compare(i + 1, 2, "\r\n") == 0) terminator = 3;
        if (terminator) {
            end = i;
            break;
        }
    }
    if (end == std::string::npos || end + terminator > max_head_size) {
        if (head_.size() > max_head_size)
            result_ = Rejection{Status::request_header_fields_too_large,
                                "request head longer than " + std::to_string(max_head_size) + " bytes"};
        return;
    }
    // Bytes after the head count as they would in a later feed(): only after a valid request.
    const std::string trailing = head_.substr(end + terminator);
    parse_head(std::string_view(head_).substr(0, end));
    head_.clear();
    head_.shrink_to_fit();
    feed(std::span(reinterpret_cast<const std::uint8_t*>(trailing.data()), trailing.size()));
}

// Something that is not HTTP at all (a TLS ClientHello or a SPICE link sent straight to the
// proxy port) shows in its first bytes; refusing it then beats waiting for a line end.
void ConnectRequestReader::check_request_line_start() {
    const std::string_view head(head_);
    const auto space = head.find(' ');
    const std::string_view method = head.substr(0, std::min(space, head.size()));
    if (std::all_of(method.begin(), method.end(), is_tchar) && method.size() <= 32 && space != 0) return;
    result_ = bad_request("not an HTTP request: this port is an HTTP CONNECT proxy; point the client's "
                          "proxy=http://HOST:PORT at it instead of connecting directly");
}

void ConnectRequestReader::parse_head(std::string_view head) {
    const auto lines = split_lines(head);
    std::vector<std::string_view> words;
    for (std::string_view line = lines.front(); !line.empty();) {
        const auto space = line.find(' ');
        words.push_back(line.substr(0, space));
        if (space == std::string_view::npos) break;
        line.remove_prefix(space + 1);
    }
    if (words.size() != 3 || !is_token(words[0]) || words[1].empty()) {
        result_ = bad_request("malformed request line; expected \"CONNECT HOST:PORT HTTP/1.1\"");
        return;
    }
    if (words[2] != "HTTP/1.1" && words[2] != "HTTP/1.0") {
        result_ = words[2].starts_with("HTTP/")
                      ? Rejection{Status::http_version_not_supported, "only HTTP/1.0 and HTTP/1.1 are served"}
                      : bad_request("malformed request line; expected \"CONNECT HOST:PORT HTTP/1.1\"");
        return;
    }
    if (words[0] != "CONNECT") {
        result_ = Rejection{Status::method_not_allowed,
                            "only CONNECT is served: this is a SPICE console proxy, used as the client's "
                            "proxy=http://HOST:PORT"};
        return;
    }
    for (std::size_t i = 1; i < lines.size(); ++i) {
        const std::string_view field = lines[i];
        const auto colon = field.find(':');
        if (field.starts_with(' ') || field.starts_with('\t') || colon == std::string_view::npos ||
            !is_token(field.substr(0, colon))) {
            result_ = bad_request("malformed header field on line " + std::to_string(i + 1));
            return;
        }
    }
    auto target = parse_authority(words[1]);
    if (!target) {
        result_ = bad_request("CONNECT needs HOST:PORT (a host name or [IPv6] and a port 1-65535)");
        return;
    }
    result_ = std::move(*target);
}

std::string tunnel_established() { return "HTTP/1.1 200 Connection established\r\n\r\n"; }

std::string error_reply(const Rejection& rejection) {
    return response(rejection.status, "text/plain; charset=utf-8", "vmgate: " + rejection.detail + "\n", "CONNECT");
}

}  // namespace vmgate::http
