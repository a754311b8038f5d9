// HTTP/1.1 status codes and whole responses, for the two places vmgate answers HTTP: the CONNECT
// proxy of route = "connect" listeners and the /metrics endpoint. Each answers one request and
// closes the connection.
#pragma once

#include <string>
#include <string_view>

namespace vmgate::http {

enum class Status : unsigned {
    ok = 200,
    bad_request = 400,
    not_found = 404,
    method_not_allowed = 405,
    request_header_fields_too_large = 431,
    http_version_not_supported = 505,
};

std::string_view reason_phrase(Status status);

// A complete response with Content-Type, Content-Length and Connection: close. `allow` names
// the methods served, in the Allow field a 405 must carry.
std::string response(Status status, std::string_view content_type, std::string_view body, std::string_view allow);

}  // namespace vmgate::http
