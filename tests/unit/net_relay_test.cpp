// The relay over real unix socket pairs: byte-exact both ways, half-close, and a stalled reader
// on one relay never stalls another relay on the same thread.
#include "net/relay.hpp"
#include "net/socket_stream.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/local/connect_pair.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/read.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

namespace vmgate::net {
namespace {

using Socket = asio::local::stream_protocol::socket;

// One relay between two socket pairs: test code drives `client_end` and `upstream_end`.
struct RelayFixture {
    explicit RelayFixture(asio::io_context& io)
        : client_end(io), upstream_end(io) {
        Socket client_side(io), upstream_side(io);
        asio::local::connect_pair(client_end, client_side);
        asio::local::connect_pair(upstream_end, upstream_side);
        client = std::make_unique<SocketStream>(asio::generic::stream_protocol::socket(std::move(client_side)));
        upstream = std::make_unique<SocketStream>(asio::generic::stream_protocol::socket(std::move(upstream_side)));
        relay = std::make_unique<Relay>(io.get_executor(), *client, *upstream, counters);
        relay->start({}, [this](const std::string& why) {
            reason = why;
            done = true;
        });
    }

    Socket client_end;
    Socket upstream_end;
    std::unique_ptr<SocketStream> client;
    std::unique_ptr<SocketStream> upstream;
    session::Traffic counters;
    std::unique_ptr<Relay> relay;
    std::string reason;
    bool done = false;
};

std::vector<std::uint8_t> random_bytes(std::size_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::vector<std::uint8_t> v(n);
    for (auto& b : v) b = static_cast<std::uint8_t>(rng());
    return v;
}

// Writes `data` to `from`, half-closes it, and reads everything `to` receives until EOF.
asio::awaitable<std::vector<std::uint8_t>> send_and_collect(Socket& from, Socket& to,
                                                            const std::vector<std::uint8_t>& data) {
    auto writer = [&]() -> asio::awaitable<void> {
        co_await asio::async_write(from, asio::buffer(data), asio::use_awaitable);
        from.shutdown(asio::socket_base::shutdown_send);
    };
    asio::co_spawn(from.get_executor(), writer(), asio::detached);
    std::vector<std::uint8_t> got;
    std::array<std::uint8_t, 8192> buf;
    for (;;) {
        std::error_code ec;
        const std::size_t n = co_await to.async_read_some(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
        if (ec) break;
        got.insert(got.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
    }
    co_return got;
}

TEST(Relay, CopiesBothDirectionsByteExactAndEndsAfterBothHalfCloses) {
    asio::io_context io;
    RelayFixture f(io);
    const auto up = random_bytes(3 * 1024 * 1024 + 17, 1);
    const auto down = random_bytes(2 * 1024 * 1024 + 5, 2);
    std::vector<std::uint8_t> got_up, got_down;
    asio::co_spawn(io, [&]() -> asio::awaitable<void> { got_up = co_await send_and_collect(f.client_end, f.upstream_end, up); },
                   asio::detached);
    asio::co_spawn(io, [&]() -> asio::awaitable<void> { got_down = co_await send_and_collect(f.upstream_end, f.client_end, down); },
                   asio::detached);
    io.run_for(std::chrono::seconds(20));
    EXPECT_EQ(got_up, up);
    EXPECT_EQ(got_down, down);
    EXPECT_TRUE(f.done);
    EXPECT_EQ(f.counters.from_client(), up.size());
    EXPECT_EQ(f.counters.to_client(), down.size());
}

TEST(Relay, HalfCloseFromClientStillDeliversUpstreamData) {
    asio::io_context io;
    RelayFixture f(io);
    const std::string late = "upstream keeps talking after the client half-closed";
    std::string received;
    asio::co_spawn(io, [&]() -> asio::awaitable<void> {
        f.client_end.shutdown(asio::socket_base::shutdown_send);
        std::array<std::uint8_t, 16> buf;
        std::error_code ec;
        co_await f.upstream_end.async_read_some(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
        EXPECT_EQ(ec, asio::error::eof);  // the client's FIN reached upstream
        co_await asio::async_write(f.upstream_end, asio::buffer(late), asio::use_awaitable);
        f.upstream_end.shutdown(asio::socket_base::shutdown_send);
        std::array<char, 256> in;
        for (;;) {
            const std::size_t n = co_await f.client_end.async_read_some(asio::buffer(in), asio::redirect_error(asio::use_awaitable, ec));
            if (ec) break;
            received.append(in.data(), n);
        }
    }, asio::detached);
    io.run_for(std::chrono::seconds(10));
    EXPECT_EQ(received, late);
    EXPECT_TRUE(f.done);
    EXPECT_EQ(f.reason, "client closed");
}

TEST(Relay, StalledClientDoesNotStallAnotherRelayOnTheSameThread) {
    asio::io_context io;
    RelayFixture stalled(io);
    RelayFixture healthy(io);
    // Upstream floods a client that never reads: the relay must stop reading (backpressure)
    // instead of buffering without bound, and the other relay must keep flowing.
    auto flood = std::make_shared<std::vector<std::uint8_t>>(64 * 1024 * 1024, 0x5a);
    asio::co_spawn(io, [&, flood]() -> asio::awaitable<void> {
        std::error_code ec;
        co_await asio::async_write(stalled.upstream_end, asio::buffer(*flood), asio::redirect_error(asio::use_awaitable, ec));
    }, asio::detached);
    const auto data = random_bytes(1024 * 1024, 3);
    std::vector<std::uint8_t> got;
    asio::co_spawn(io, [&]() -> asio::awaitable<void> {
        got = co_await send_and_collect(healthy.upstream_end, healthy.client_end, data);
    }, asio::detached);
    io.run_for(std::chrono::seconds(5));
    EXPECT_EQ(got, data);
    // Only socket buffers plus at most one relay buffer in flight: far less than the flood.
    EXPECT_LT(stalled.counters.to_client(), 16u * 1024 * 1024);
    stalled.relay->stop("test over");
    io.run_for(std::chrono::seconds(1));
    EXPECT_TRUE(stalled.done);
    EXPECT_EQ(stalled.reason, "test over");
}

// A stop() may come between a direction reaching its end and the relay hearing of it (the
// session ended while the client was closing this channel): the relay still ends at once, not
// after the half-close linger. Stopping after every number of handler steps covers that gap.
TEST(Relay, StopWhileADirectionEndsEndsAtOnce) {
    for (int steps = 0; steps < 12; ++steps) {
        asio::io_context io;
        RelayFixture f(io);
        f.client_end.shutdown(asio::socket_base::shutdown_send);
        for (int i = 0; i < steps; ++i) io.run_one_for(std::chrono::milliseconds(100));
        f.relay->stop("stopped");
        io.run_for(std::chrono::seconds(1));
        EXPECT_TRUE(f.done) << "stopped after " << steps << " steps";
    }
}

}  // namespace
}  // namespace vmgate::net
