#include "net/metrics_server.hpp"

#include "core/config.hpp"
#include "metrics/exposition.hpp"
#include "metrics/http.hpp"
#include "net/resolve.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/read_until.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/streambuf.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <spdlog/spdlog.h>

#include <chrono>
#include <stdexcept>

namespace vmgate::net {
namespace {

// A scrape request is one line and a few headers; Prometheus sends well under 1 KiB.
constexpr std::size_t max_request_head = 8 * 1024;
// Time a client gets to send its request and read the answer.
constexpr auto request_deadline = std::chrono::seconds(10);
// Scrapes served at once; more connections are closed at accept.
constexpr int max_concurrent_requests = 8;

constexpr std::string_view text_plain = "text/plain; charset=utf-8";

std::string body_for(http::Status status) {
    switch (status) {
    case http::Status::not_found: return "not found: the metrics are at /metrics\n";
    case http::Status::method_not_allowed: return "method not allowed: use GET /metrics\n";
    case http::Status::request_header_fields_too_large: return "request header too large\n";
    default: return "bad request: expected GET /metrics HTTP/1.1\n";
    }
}

}  // namespace

struct MetricsServer::Shared {
    Shared(asio::io_context& io, Render r) : acceptor(io), render(std::move(r)) {}
    asio::ip::tcp::acceptor acceptor;
    Render render;
    int active = 0;  // on the io_context's thread only
};

MetricsServer::MetricsServer(asio::io_context& io, std::string address, Render render)
    : address_(std::move(address)), shared_(std::make_shared<Shared>(io, std::move(render))) {
    // The configuration checked the form.
    const auto host_port = core::split_host_port(address_).value();
    const auto endpoint = resolve_endpoint(host_port.host, host_port.port, "gateway.metrics " + address_);
    auto& acceptor = shared_->acceptor;
    std::error_code ec;
    acceptor.open(endpoint.protocol(), ec);
    if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor.bind(endpoint, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
        throw std::runtime_error("cannot serve metrics on " + address_ + " (gateway.metrics): " + ec.message() +
                                 "; choose a free address or set metrics = \"\"");
    asio::co_spawn(io, accept_loop(shared_), asio::detached);
    spdlog::info("metrics on http://{}/metrics", address_);
}

MetricsServer::~MetricsServer() { stop(); }

void MetricsServer::stop() {
    std::error_code ignored;
    shared_->acceptor.close(ignored);
}

asio::awaitable<void> MetricsServer::accept_loop(std::shared_ptr<Shared> shared) {
    for (;;) {
        std::error_code ec;
        auto socket = co_await shared->acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
        if (ec == asio::error::operation_aborted || !shared->acceptor.is_open()) co_return;
        if (ec) {
            // Out of descriptors: back off instead of spinning on the same error.
            asio::steady_timer pause(shared->acceptor.get_executor(), std::chrono::milliseconds(100));
            co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
            continue;
        }
        if (shared->active >= max_concurrent_requests) continue;  // closed here, unanswered
        asio::co_spawn(shared->acceptor.get_executor(), serve(shared, std::move(socket)), asio::detached);
    }
}

asio::awaitable<void> MetricsServer::serve(std::shared_ptr<Shared> shared, asio::ip::tcp::socket socket) {
    ++shared->active;
    asio::steady_timer deadline(socket.get_executor(), request_deadline);
    deadline.async_wait([&socket](std::error_code ec) {
        if (ec) return;
        std::error_code ignored;
        socket.close(ignored);  // a slow client: its pending read or write fails
    });
    std::error_code ec;
    asio::streambuf buffer(max_request_head);
    co_await asio::async_read_until(socket, buffer, "\r\n\r\n", asio::redirect_error(asio::use_awaitable, ec));
    if (!ec || ec == asio::error::not_found) {
        const std::string head(asio::buffers_begin(buffer.data()), asio::buffers_end(buffer.data()));
        const auto status = ec ? http::Status::request_header_fields_too_large : metrics::answer_for(head);
        const std::string response =
            status == http::Status::ok
                ? http::response(status, metrics::exposition_content_type, shared->render(), "GET")
                : http::response(status, text_plain, body_for(status), "GET");
        co_await asio::async_write(socket, asio::buffer(response), asio::redirect_error(asio::use_awaitable, ec));
        socket.shutdown(asio::ip::tcp::socket::shutdown_send, ec);
    }
    deadline.cancel();
    --shared->active;
}

}  // namespace vmgate::net
