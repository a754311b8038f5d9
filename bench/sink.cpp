#include "sink.hpp"

#include "bench_wire.hpp"

#include "auth/ticket_key.hpp"
#include "spice/downstream_link.hpp"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <system_error>
#include <unordered_map>
#include <vector>

namespace vmgate::bench {
namespace {

// Large reads keep the sink far cheaper per GiB than any TLS terminator in front of it.
constexpr std::size_t read_size = 256 * 1024;
constexpr int listen_backlog = 4096;
constexpr int max_events = 256;

std::system_error errno_failure(const std::string& what) {
    return std::system_error(errno, std::generic_category(), what);
}

// Counts down the bulk transfers of one connection (bench_wire.hpp): header, body, ack.
class BulkReceiver {
public:
    // How many transfers `data` completed.
    std::size_t consume(std::span<const std::uint8_t> data) {
        std::size_t completed = 0;
        while (!data.empty()) {
            if (header_fill_ < header_.size()) {
                const std::size_t n = std::min(header_.size() - header_fill_, data.size());
                std::copy_n(data.begin(), n, header_.begin() + static_cast<std::ptrdiff_t>(header_fill_));
                header_fill_ += n;
                data = data.subspan(n);
                if (header_fill_ < header_.size()) break;
                remaining_ = parse_bulk_header(header_);
            }
            const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, data.size()));
            remaining_ -= n;
            data = data.subspan(n);
            if (remaining_ == 0) {
                header_fill_ = 0;
                ++completed;
            }
        }
        return completed;
    }

private:
    std::array<std::uint8_t, bulk_header_size> header_{};
    std::size_t header_fill_ = 0;
    std::uint64_t remaining_ = 0;
};

struct Connection {
    int fd = -1;
    std::optional<spice::DownstreamLink> link;  // until the SPICE login is done
    bool main_channel = false;
    std::vector<std::uint8_t> out;
    std::size_t out_sent = 0;
    std::uint32_t events = 0;  // current epoll interest
    BulkReceiver bulk;
};

class Sink {
public:
    explicit Sink(SinkOptions options);
    [[noreturn]] void run();

private:
    void listen();
    void accept_all();
    void serve(Connection& c, std::uint32_t events);
    bool on_readable(Connection& c);
    bool handle_link(Connection& c, std::span<const std::uint8_t> data);
    void answer_link(Connection& c, const spice::LinkMess& link);
    void handle_data(Connection& c, std::span<const std::uint8_t> data);
    bool flush(Connection& c);
    void watch(Connection& c, std::uint32_t events);
    void close(Connection& c);

    const SinkOptions options_;
    int listen_fd_ = -1;
    int epoll_fd_ = -1;
    // One key for every link: QEMU makes one per link, but here that would burn the CPU the
    // terminator being measured needs. Nothing is ever decrypted with it.
    std::optional<auth::TicketKey> key_;
    std::unordered_map<int, std::unique_ptr<Connection>> connections_;
    std::vector<std::uint8_t> buffer_ = std::vector<std::uint8_t>(read_size);
    std::uint32_t next_session_id_ = 1;
};

Sink::Sink(SinkOptions options) : options_(std::move(options)) {
    if (options_.spice) key_.emplace(auth::TicketKey::generate());
    epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0) throw errno_failure("epoll_create1");
    listen();
}

void Sink::listen() {
    sockaddr_un address{};
    if (options_.unix_path.size() >= sizeof address.sun_path)
        throw std::system_error(std::make_error_code(std::errc::filename_too_long), options_.unix_path);
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, options_.unix_path.data(), options_.unix_path.size());
    ::unlink(options_.unix_path.c_str());  // a socket left by an earlier run
    listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0) throw errno_failure("socket");
    if (::bind(listen_fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0)
        throw errno_failure("bind " + options_.unix_path);
    if (::listen(listen_fd_, listen_backlog) != 0) throw errno_failure("listen");
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.fd = listen_fd_;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &event) != 0) throw errno_failure("epoll_ctl");
}

void Sink::run() {
    std::array<epoll_event, max_events> events{};
    for (;;) {
        const int n = ::epoll_wait(epoll_fd_, events.data(), max_events, -1);
        if (n < 0 && errno != EINTR) throw errno_failure("epoll_wait");
        for (int i = 0; i < n; ++i) {
            const auto& event = events[static_cast<std::size_t>(i)];
            if (event.data.fd == listen_fd_) {
                accept_all();
            } else if (auto it = connections_.find(event.data.fd); it != connections_.end()) {
                serve(*it->second, event.events);
            }
        }
    }
}

void Sink::accept_all() {
    for (;;) {
        const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            // Out of descriptors: the listen queue holds the rest until some close.
            if (errno == EAGAIN || errno == EMFILE || errno == ENFILE || errno == ECONNABORTED) return;
            throw errno_failure("accept4");
        }
        auto c = std::make_unique<Connection>();
        c->fd = fd;
        if (options_.spice) c->link.emplace();
        watch(*c, EPOLLIN);
        connections_.emplace(fd, std::move(c));
    }
}

void Sink::serve(Connection& c, std::uint32_t events) {
    bool open = true;
    if (events & (EPOLLERR | EPOLLHUP)) open = false;
    else if (events & EPOLLOUT) open = flush(c);
    else if (events & EPOLLIN) open = on_readable(c);
    if (!open) close(c);
}

bool Sink::on_readable(Connection& c) {
    const ssize_t n = ::read(c.fd, buffer_.data(), buffer_.size());
    if (n < 0) return errno == EAGAIN || errno == EINTR;
    if (n == 0) return false;
    const std::span<const std::uint8_t> data(buffer_.data(), static_cast<std::size_t>(n));
    if (c.link) {
        if (!handle_link(c, data)) return false;
    } else {
        handle_data(c, data);
    }
    return flush(c);
}

bool Sink::handle_link(Connection& c, std::span<const std::uint8_t> data) {
    c.link->feed(data);
    while (auto event = c.link->next_event()) {
        if (auto* link = std::get_if<spice::LinkReceived>(&*event)) {
            answer_link(c, link->link);
        } else if (std::holds_alternative<spice::TicketReceived>(*event)) {
            c.link->finish(spice::LinkError::ok);
        } else {
            return false;  // a protocol violation, or SASL, which the sink never offers
        }
    }
    const auto output = c.link->take_output();
    c.out.insert(c.out.end(), output.begin(), output.end());
    if (c.link->closed()) return false;
    if (!c.link->done()) return true;
    if (c.main_channel) {
        const auto init = main_init(next_session_id_++);
        c.out.insert(c.out.end(), init.begin(), init.end());
    }
    const auto excess = c.link->take_excess();
    c.link.reset();
    handle_data(c, excess);
    return true;
}

// spice-server's reply (§2.4, §3.1): its ticket key, AUTH_SELECTION|AUTH_SPICE, MINI_HEADER as
// the client asked, and channel caps that agree with the client's.
void Sink::answer_link(Connection& c, const spice::LinkMess& link) {
    c.main_channel = link.channel_type == static_cast<std::uint8_t>(spice::ChannelType::main);
    spice::LinkReply reply;
    reply.pub_key = key_->public_spki();
    reply.common_caps.set(spice::CommonCap::auth_selection);
    reply.common_caps.set(spice::CommonCap::auth_spice);
    if (link.common_caps.has(spice::CommonCap::mini_header)) reply.common_caps.set(spice::CommonCap::mini_header);
    reply.channel_caps = link.channel_caps;
    c.link->accept_link(reply, "");
}

void Sink::handle_data(Connection& c, std::span<const std::uint8_t> data) {
    if (options_.echo) {
        c.out.insert(c.out.end(), data.begin(), data.end());
        return;
    }
    const auto ack = bulk_ack();
    for (std::size_t done = c.bulk.consume(data); done > 0; --done) c.out.insert(c.out.end(), ack.begin(), ack.end());
}

// Writes what it can; while output is pending the connection is not read (backpressure).
bool Sink::flush(Connection& c) {
    while (c.out_sent < c.out.size()) {
        const ssize_t n = ::send(c.fd, c.out.data() + c.out_sent, c.out.size() - c.out_sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) {
            watch(c, EPOLLOUT);
            return true;
        }
        if (n < 0) return false;
        c.out_sent += static_cast<std::size_t>(n);
    }
    c.out.clear();
    c.out_sent = 0;
    watch(c, EPOLLIN);
    return true;
}

void Sink::watch(Connection& c, std::uint32_t events) {
    if (c.events == events) return;
    epoll_event event{};
    event.events = events;
    event.data.fd = c.fd;
    const int op = c.events == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
    if (::epoll_ctl(epoll_fd_, op, c.fd, &event) != 0) throw errno_failure("epoll_ctl");
    c.events = events;
}

void Sink::close(Connection& c) {
    const int fd = c.fd;
    ::close(fd);  // also leaves the epoll set
    connections_.erase(fd);
}

}  // namespace

void run_sink(const SinkOptions& options) { Sink(options).run(); }

}  // namespace vmgate::bench
