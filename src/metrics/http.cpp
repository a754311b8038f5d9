#include "metrics/http.hpp"

#include <fmt/format.h>

namespace vmgate::metrics {
namespace {

constexpr std::string_view metrics_path = "/metrics";

// RFC 9110 token characters, enough to tell a method from garbage.
bool token(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s)
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return false;
    return true;
}

}  // namespace

std::string_view reason_phrase(HttpStatus status) {
    switch (status) {
    case HttpStatus::ok: return "OK";
    case HttpStatus::bad_request: return "Bad Request";
    case HttpStatus::not_found: return "Not Found";
    case HttpStatus::method_not_allowed: return "Method Not Allowed";
    case HttpStatus::header_too_large: return "Request Header Fields Too Large";
    }
    return "Error";
}

HttpStatus answer_for(std::string_view head) {
    const auto end = head.find("\r\n");
    const std::string_view line = head.substr(0, end);
    const auto first_space = line.find(' ');
    const auto last_space = line.rfind(' ');
    if (first_space == std::string_view::npos || first_space == last_space) return HttpStatus::bad_request;
    const std::string_view method = line.substr(0, first_space);
    std::string_view target = line.substr(first_space + 1, last_space - first_space - 1);
    const std::string_view version = line.substr(last_space + 1);
    if (!token(method) || target.empty() || target.find(' ') != std::string_view::npos ||
        !(version == "HTTP/1.1" || version == "HTTP/1.0"))
        return HttpStatus::bad_request;
    target = target.substr(0, target.find('?'));
    if (target != metrics_path) return HttpStatus::not_found;
    if (method != "GET") return HttpStatus::method_not_allowed;
    return HttpStatus::ok;
}

std::string http_response(HttpStatus status, std::string_view content_type, std::string_view body) {
    const int code = static_cast<int>(status);
    std::string allow = status == HttpStatus::method_not_allowed ? "Allow: GET\r\n" : "";
    return fmt::format("HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{}Connection: close\r\n\r\n{}",
                       code, reason_phrase(status), content_type, body.size(), allow, body);
}

}  // namespace vmgate::metrics
