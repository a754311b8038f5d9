// What the /metrics endpoint answers to which request.
#include "metrics/http.hpp"

#include <gtest/gtest.h>

namespace vmgate::metrics {
namespace {

TEST(MetricsHttp, GetMetricsIsServed) {
    EXPECT_EQ(answer_for("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), http::Status::ok);
    EXPECT_EQ(answer_for("GET /metrics?name[]=x HTTP/1.0\r\n\r\n"), http::Status::ok);
}

TEST(MetricsHttp, OtherPathsAreNotFound) {
    EXPECT_EQ(answer_for("GET / HTTP/1.1\r\n\r\n"), http::Status::not_found);
    EXPECT_EQ(answer_for("GET /metricsx HTTP/1.1\r\n\r\n"), http::Status::not_found);
    EXPECT_EQ(answer_for("POST /other HTTP/1.1\r\n\r\n"), http::Status::not_found);
}

TEST(MetricsHttp, OtherMethodsOnMetricsAreNotAllowed) {
    EXPECT_EQ(answer_for("POST /metrics HTTP/1.1\r\n\r\n"), http::Status::method_not_allowed);
    EXPECT_EQ(answer_for("DELETE /metrics HTTP/1.1\r\n\r\n"), http::Status::method_not_allowed);
}

TEST(MetricsHttp, MalformedRequestLinesAreBadRequests) {
    EXPECT_EQ(answer_for("GET /metrics\r\n\r\n"), http::Status::bad_request);
    EXPECT_EQ(answer_for("GET /metrics SPDY/3\r\n\r\n"), http::Status::bad_request);
    EXPECT_EQ(answer_for("G\"T /metrics HTTP/1.1\r\n\r\n"), http::Status::bad_request);
    EXPECT_EQ(answer_for("GET  /metrics HTTP/1.1\r\n\r\n"), http::Status::bad_request);
    EXPECT_EQ(answer_for(""), http::Status::bad_request);
}

}  // namespace
}  // namespace vmgate::metrics
