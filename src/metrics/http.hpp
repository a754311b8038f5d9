// The little HTTP the /metrics endpoint speaks: one request head in, one response out, then the
// connection closes. Pure text handling; the sockets are in net/metrics_server.
#pragma once

#include "http/response.hpp"

#include <string_view>

namespace vmgate::metrics {

// What to answer a request head (everything up to the blank line): 200 for GET /metrics (a
// query string is ignored), 404 for another path, 405 for another method, 400 when the request
// line is not "METHOD TARGET HTTP/1.x".
http::Status answer_for(std::string_view request_head);

}  // namespace vmgate::metrics
