#include "load.hpp"

#include "bench_wire.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <iostream>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>

namespace vmgate::bench {
namespace {

using Clock = std::chrono::steady_clock;

// Large writes: OpenSSL cuts them into full 16 KiB records, as a busy display stream would.
constexpr std::size_t bulk_write_size = 256 * 1024;
constexpr double bytes_per_mib = 1024.0 * 1024.0;
// Round trips before timing starts: page faults, lazy allocations and CPU frequency settle.
constexpr std::size_t warmup_round_trips = 200;

using Ping = std::array<std::uint8_t, ping_size>;
const Ping spice_ping = make_ping();
const Ping rfb_ping = rfb::make_ping();

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

nlohmann::json tls_json(const TlsParameters& tls) {
    if (tls.version.empty()) return nullptr;
    return {{"version", tls.version}, {"cipher", tls.cipher}, {"group", tls.group}};
}

// A channel in its data phase: connected, TLS done, and logged in when the login says so.
Channel open_stream(const Target& target, const Login& login) {
    if (login.vnc) return vnc_connect(target, *login.vnc);
    Channel channel = Channel::connect(target);
    if (!login.spice_ticket.empty()) spice_main_login(channel, login.spice_ticket);
    return channel;
}

void ping(Channel& channel, const Ping& message) {
    channel.write_all(message);
    Ping echo{};
    channel.read_exact(echo);
    if (echo != message) throw std::runtime_error("the echo differs from the ping");
}

// The bulk stream as it is: the byte count, then the bytes in large writes.
void send_bulk(Channel& channel, std::uint64_t bytes) {
    const std::vector<std::uint8_t> chunk(bulk_write_size, 0x5a);  // AES-GCM costs the same for any content
    channel.write_all(bulk_header(bytes));
    for (std::uint64_t left = bytes; left > 0;) {
        const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(left, chunk.size()));
        channel.write_all(std::span(chunk).first(n));
        left -= n;
    }
}

// The same stream in ClientCutText texts: the count in a message of its own, then one message
// per write, of the same size as send_bulk's writes.
void send_bulk_rfb(Channel& channel, std::uint64_t bytes) {
    static_assert(bulk_write_size - rfb::cut_text_header_size <= vnc::max_client_cut_text_len);  // vmgate refuses more
    channel.write_all(rfb::client_cut_text(bulk_header(bytes)));
    std::vector<std::uint8_t> message(bulk_write_size, 0x5a);
    for (std::uint64_t left = bytes; left > 0;) {
        const auto n = static_cast<std::size_t>(
            std::min<std::uint64_t>(left, bulk_write_size - rfb::cut_text_header_size));
        const auto header = rfb::client_cut_text_header(n);
        std::copy(header.begin(), header.end(), message.begin());
        channel.write_all(std::span(message).first(header.size() + n));
        left -= n;
    }
}

void expect_ack(Channel& channel, const std::vector<std::uint8_t>& expected) {
    std::vector<std::uint8_t> ack(expected.size());
    channel.read_exact(ack);
    if (ack != expected) throw std::runtime_error("the sink's acknowledgement is malformed");
}

// Nearest-rank percentile of sorted samples.
double percentile(const std::vector<double>& sorted, double fraction) {
    const auto rank = static_cast<std::size_t>(std::ceil(fraction * static_cast<double>(sorted.size())));
    return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
}

// The first failure of a multi-threaded run, and how many there were.
class Failures {
public:
    void record(const std::exception& e) {
        const std::lock_guard lock(mutex_);
        if (count_++ == 0) first_ = e.what();
    }
    std::size_t count() const {
        const std::lock_guard lock(mutex_);
        return count_;
    }
    std::string first() const {
        const std::lock_guard lock(mutex_);
        return first_;
    }

private:
    mutable std::mutex mutex_;
    std::size_t count_ = 0;
    std::string first_;
};

// Runs body on `count` threads and waits for all of them.
template <typename Body>
void on_threads(unsigned count, Body body) {
    std::vector<std::jthread> threads;
    for (unsigned i = 0; i < count; ++i) threads.emplace_back(body);
}

void wait_for_stdin_eof() {
    std::array<char, 256> buffer{};
    for (;;) {
        const ssize_t n = ::read(STDIN_FILENO, buffer.data(), buffer.size());
        if (n == 0 || (n < 0 && errno != EINTR)) return;
    }
}

// A tickets-file line: "TICKET" logs in at the --connect target, "HOST:PORT TICKET" there.
struct TicketLogin {
    std::optional<Endpoint> endpoint;
    std::string ticket;
};

std::vector<TicketLogin> parse_ticket_lines(const std::vector<std::string>& lines) {
    std::vector<TicketLogin> logins;
    logins.reserve(lines.size());
    for (const std::string& line : lines) {
        const auto space = line.find(' ');
        if (space == std::string::npos) logins.push_back({std::nullopt, line});
        else logins.push_back({Endpoint::parse(std::string_view(line).substr(0, space)), line.substr(space + 1)});
    }
    return logins;
}

}  // namespace

nlohmann::json run_bulk(const Target& target, const Login& login, std::uint64_t bytes) {
    Channel channel = open_stream(target, login);
    const auto start = Clock::now();
    if (login.vnc) send_bulk_rfb(channel, bytes);
    else send_bulk(channel, bytes);
    expect_ack(channel, login.vnc ? rfb::bulk_ack() : bulk_ack());
    const double seconds = seconds_since(start);
    return {{"bytes", bytes},
            {"seconds", seconds},
            {"mib_per_s", static_cast<double>(bytes) / bytes_per_mib / seconds},
            {"tls", tls_json(channel.tls_parameters())}};
}

nlohmann::json run_pingpong(const Target& target, const Login& login, std::size_t count) {
    if (count == 0) throw std::invalid_argument("--count must be positive");
    Channel channel = open_stream(target, login);
    const Ping& message = login.vnc ? rfb_ping : spice_ping;
    for (std::size_t i = 0; i < warmup_round_trips; ++i) ping(channel, message);
    std::vector<double> micros;
    micros.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
        const auto start = Clock::now();
        ping(channel, message);
        micros.push_back(seconds_since(start) * 1e6);
    }
    std::sort(micros.begin(), micros.end());
    return {{"round_trips", count},
            {"median_us", percentile(micros, 0.5)},
            {"p99_us", percentile(micros, 0.99)},
            {"max_us", micros.back()},
            {"tls", tls_json(channel.tls_parameters())}};
}

nlohmann::json run_handshakes(const Target& target, const std::vector<std::string>& ticket_lines,
                              std::chrono::duration<double> duration, unsigned concurrency, std::size_t limit) {
    const std::vector<TicketLogin> logins = parse_ticket_lines(ticket_lines);
    if (!logins.empty() && (limit == 0 || limit > logins.size())) limit = logins.size();
    std::atomic<unsigned> next_thread{0};
    std::atomic<std::size_t> completed{0};
    Failures failures;
    std::mutex tls_mutex;
    TlsParameters tls;
    const auto start = Clock::now();
    const auto deadline = start + std::chrono::duration_cast<Clock::duration>(duration);
    on_threads(concurrency, [&] {
        // Thread t takes lines t, t + concurrency, ...: when each thread's lines name a VM of
        // its own, no login takes over the console seat of another thread's session.
        for (std::size_t i = next_thread++; Clock::now() < deadline; i += concurrency) {
            if (limit != 0 && i >= limit) return;
            try {
                const TicketLogin* login = logins.empty() ? nullptr : &logins[i];
                const Target to = login && login->endpoint ? Target{*login->endpoint, target.tls} : target;
                Channel channel = Channel::connect(to);
                if (login) spice_main_login(channel, login->ticket); else ping(channel, spice_ping);
                ++completed;
                const std::lock_guard lock(tls_mutex);
                if (tls.version.empty()) tls = channel.tls_parameters();
            } catch (const std::exception& e) {
                failures.record(e);
            }
        }
    });
    const double seconds = seconds_since(start);
    return {{"handshakes", completed.load()},
            {"failures", failures.count()},
            {"first_error", failures.first()},
            {"seconds", seconds},
            {"per_second", static_cast<double>(completed.load()) / seconds},
            {"concurrency", concurrency},
            {"tls", tls_json(tls)}};
}

nlohmann::json run_idle(const Target& target, const std::string& ticket, std::size_t channels,
                        unsigned concurrency, bool hold) {
    std::vector<std::optional<Channel>> open(channels);
    const auto start = Clock::now();
    std::uint32_t session_id = 0;
    std::size_t first_secondary = 0;
    if (!ticket.empty() && channels > 0) {  // display channels join the main channel's session
        Channel main = Channel::connect(target);
        session_id = spice_main_login(main, ticket);
        ping(main, spice_ping);
        open[0] = std::move(main);
        first_secondary = 1;
    }
    std::atomic<std::size_t> next{first_secondary};
    Failures failures;
    on_threads(concurrency, [&] {
        for (std::size_t i = next++; i < channels && failures.count() == 0; i = next++) {
            try {
                Channel channel = Channel::connect(target);
                if (!ticket.empty()) spice_display_login(channel, ticket, session_id);
                ping(channel, spice_ping);
                open[i] = std::move(channel);
            } catch (const std::exception& e) {
                failures.record(e);
            }
        }
    });
    if (failures.count() > 0) throw std::runtime_error("opening idle channels: " + failures.first());
    const double seconds = seconds_since(start);
    std::cout << "ready" << std::endl;
    if (hold) wait_for_stdin_eof();
    return {{"channels", channels},
            {"seconds_to_open", seconds},
            {"tls", channels > 0 ? tls_json(open[0]->tls_parameters()) : nullptr}};
}

}  // namespace vmgate::bench
