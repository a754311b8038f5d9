// The little HTTP the /metrics endpoint speaks: one request head in, one response out, then the
// connection closes. Pure text handling; the sockets are in net/metrics_server.
#pragma once

#include <string>
#include <string_view>

namespace vmgate::metrics {

enum class HttpStatus {
    ok = 200,
    bad_request = 400,
    not_found = 404,
    method_not_allowed = 405,
    header_too_large = 431,
};

std::string_view reason_phrase(HttpStatus status);

// What to answer a request head (everything up to the blank line): 200 for GET /metrics (a
// query string is ignored), 404 for another path, 405 for another method, 400 when the request
// line is not "METHOD TARGET HTTP/1.x".
HttpStatus answer_for(std::string_view request_head);

// A complete HTTP/1.1 response with Content-Length and Connection: close; a 405 names the one
// allowed method.
std::string http_response(HttpStatus status, std::string_view content_type, std::string_view body);

}  // namespace vmgate::metrics
