#include "http/response.hpp"

namespace vmgate::http {

std::string_view reason_phrase(Status status) {
    switch (status) {
        case Status::ok: return "OK";
        case Status::bad_request: return "Bad Request";
        case Status::not_found: return "Not Found";
        case Status::method_not_allowed: return "Method Not Allowed";
        case Status::request_header_fields_too_large: return "Request Header Fields Too Large";
        case Status::http_version_not_supported: return "HTTP Version Not Supported";
    }
    return "Error";
}

std::string response(Status status, std::string_view content_type, std::string_view body, std::string_view allow) {
    std::string out = "HTTP/1.1 " + std::to_string(static_cast<unsigned>(status)) + " ";
    out += reason_phrase(status);
    out += "\r\nContent-Type: ";
    out += content_type;
    out += "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    if (status == Status::method_not_allowed) {
        out += "Allow: ";
        out += allow;
        out += "\r\n";
    }
    out += "Connection: close\r\n\r\n";
    out += body;
    return out;
}

}  // namespace vmgate::http
