// Whole HTTP responses: what the CONNECT proxy and the /metrics endpoint send.
#include "http/response.hpp"

#include <gtest/gtest.h>

namespace vmgate::http {
namespace {

TEST(HttpResponse, CarriesTypeLengthAndClose) {
    EXPECT_EQ(response(Status::ok, "text/plain", "abc", "GET"),
              "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc");
}

TEST(HttpResponse, MethodNotAllowedNamesTheMethodsServed) {
    const auto r = response(Status::method_not_allowed, "text/plain", "", "CONNECT");
    EXPECT_TRUE(r.starts_with("HTTP/1.1 405 Method Not Allowed\r\n")) << r;
    EXPECT_NE(r.find("\r\nAllow: CONNECT\r\n"), std::string::npos) << r;
}

TEST(HttpResponse, OnlyA405CarriesAllow) {
    EXPECT_EQ(response(Status::not_found, "text/plain", "x", "GET").find("Allow:"), std::string::npos);
}

TEST(HttpResponse, EveryStatusHasItsReasonPhrase) {
    EXPECT_EQ(reason_phrase(Status::bad_request), "Bad Request");
    EXPECT_EQ(reason_phrase(Status::request_header_fields_too_large), "Request Header Fields Too Large");
    EXPECT_EQ(reason_phrase(Status::http_version_not_supported), "HTTP Version Not Supported");
}

}  // namespace
}  // namespace vmgate::http
