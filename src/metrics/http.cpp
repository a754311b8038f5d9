#include "metrics/http.hpp"

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

http::Status answer_for(std::string_view head) {
    const auto end = head.find("\r\n");
    const std::string_view line = head.substr(0, end);
    const auto first_space = line.find(' ');
    const auto last_space = line.rfind(' ');
    if (first_space == std::string_view::npos || first_space == last_space) return http::Status::bad_request;
    const std::string_view method = line.substr(0, first_space);
    std::string_view target = line.substr(first_space + 1, last_space - first_space - 1);
    const std::string_view version = line.substr(last_space + 1);
    if (!token(method) || target.empty() || target.find(' ') != std::string_view::npos ||
        !(version == "HTTP/1.1" || version == "HTTP/1.0"))
        return http::Status::bad_request;
    target = target.substr(0, target.find('?'));
    if (target != metrics_path) return http::Status::not_found;
    if (method != "GET") return http::Status::method_not_allowed;
    return http::Status::ok;
}

}  // namespace vmgate::metrics
