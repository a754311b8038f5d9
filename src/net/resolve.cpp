#include "net/resolve.hpp"

#include <asio/io_context.hpp>

#include <stdexcept>

namespace vmgate::net {

asio::ip::tcp::endpoint resolve_endpoint(const std::string& host, std::uint16_t port, const std::string& what) {
    std::error_code ec;
    const auto address = asio::ip::make_address(host, ec);
    if (!ec) return {address, port};
    asio::io_context io;
    asio::ip::tcp::resolver resolver(io);
    const auto results = resolver.resolve(host, std::to_string(port), ec);
    if (ec || results.empty()) throw std::runtime_error(what + ": cannot resolve \"" + host + "\"");
    return *results.begin();
}

}  // namespace vmgate::net
