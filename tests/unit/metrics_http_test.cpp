// What the /metrics endpoint answers to which request.
#include "metrics/http.hpp"

#include <gtest/gtest.h>

namespace vmgate::metrics {
namespace {

TEST(MetricsHttp, GetMetricsIsServed) {
    EXPECT_EQ(answer_for("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), HttpStatus::ok);
    EXPECT_EQ(answer_for("GET /metrics?name[]=x HTTP/1.0\r\n\r\n"), HttpStatus::ok);
}

TEST(MetricsHttp, OtherPathsAreNotFound) {
    EXPECT_EQ(answer_for("GET / HTTP/1.1\r\n\r\n"), HttpStatus::not_found);
    EXPECT_EQ(answer_for("GET /metricsx HTTP/1.1\r\n\r\n"), HttpStatus::not_found);
    EXPECT_EQ(answer_for("POST /other HTTP/1.1\r\n\r\n"), HttpStatus::not_found);
}

TEST(MetricsHttp, OtherMethodsOnMetricsAreNotAllowed) {
    EXPECT_EQ(answer_for("POST /metrics HTTP/1.1\r\n\r\n"), HttpStatus::method_not_allowed);
    EXPECT_EQ(answer_for("DELETE /metrics HTTP/1.1\r\n\r\n"), HttpStatus::method_not_allowed);
}

TEST(MetricsHttp, MalformedRequestLinesAreBadRequests) {
    EXPECT_EQ(answer_for("GET /metrics\r\n\r\n"), HttpStatus::bad_request);
    EXPECT_EQ(answer_for("GET /metrics SPDY/3\r\n\r\n"), HttpStatus::bad_request);
    EXPECT_EQ(answer_for("G\"T /metrics HTTP/1.1\r\n\r\n"), HttpStatus::bad_request);
    EXPECT_EQ(answer_for("GET  /metrics HTTP/1.1\r\n\r\n"), HttpStatus::bad_request);
    EXPECT_EQ(answer_for(""), HttpStatus::bad_request);
}

TEST(MetricsHttp, ResponsesCarryLengthAndClose) {
    EXPECT_EQ(http_response(HttpStatus::ok, "text/plain", "abc"),
              "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc");
}

TEST(MetricsHttp, MethodNotAllowedNamesTheAllowedMethod) {
    const auto r = http_response(HttpStatus::method_not_allowed, "text/plain", "");
    EXPECT_TRUE(r.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"));
    EXPECT_NE(r.find("\r\nAllow: GET\r\n"), std::string::npos);
}

}  // namespace
}  // namespace vmgate::metrics
