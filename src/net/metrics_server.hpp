// The Prometheus endpoint: HTTP/1.1 on [gateway] metrics, GET /metrics answered with the
// registry's text, one request per connection. Runs on the gateway's main io_context.
// Scrapers are trusted no more than anyone: requests are bounded in size and time, and only a
// few are served at once.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include <functional>
#include <memory>
#include <string>

namespace vmgate::net {

class MetricsServer {
public:
    using Render = std::function<std::string()>;

    // Binds `address` ("HOST:PORT", as checked by the configuration) and starts serving.
    // Throws std::runtime_error naming the address when it cannot listen there.
    MetricsServer(asio::io_context& io, std::string address, Render render);
    ~MetricsServer();
    MetricsServer(const MetricsServer&) = delete;
    MetricsServer& operator=(const MetricsServer&) = delete;

    const std::string& address() const { return address_; }
    // Closes the listening socket; requests being answered finish on their own.
    void stop();

private:
    struct Shared;
    asio::awaitable<void> accept_loop(std::shared_ptr<Shared> shared);
    static asio::awaitable<void> serve(std::shared_ptr<Shared> shared, asio::ip::tcp::socket socket);

    std::string address_;
    std::shared_ptr<Shared> shared_;
};

}  // namespace vmgate::net
