#include "sink.hpp"

#include "bench_wire.hpp"

#include "auth/ticket_key.hpp"
#include "spice/downstream_link.hpp"
#include "vnc/downstream_handshake.hpp"

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

void append(std::vector<std::uint8_t>& out, std::span<const std::uint8_t> bytes) {
    out.insert(out.end(), bytes.begin(), bytes.end());
}

// Moves bytes from the front of `data` into `field` until it is full; true once it is. Headers
// may arrive split across reads.
template <std::size_t N>
bool fill(std::array<std::uint8_t, N>& field, std::size_t& filled, std::span<const std::uint8_t>& data) {
    const std::size_t n = std::min(N - filled, data.size());
    std::copy_n(data.begin(), n, field.begin() + static_cast<std::ptrdiff_t>(filled));
    filled += n;
    data = data.subspan(n);
    return filled == N;
}

// Counts down the bulk transfers of one connection (bench_wire.hpp): header, body, ack.
class BulkReceiver {
public:
    // How many transfers `data` completed.
    std::size_t consume(std::span<const std::uint8_t> data) {
        std::size_t completed = 0;
        while (!data.empty()) {
            if (header_fill_ < header_.size()) {
                if (!fill(header_, header_fill_, data)) break;
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

// The texts of a stream of ClientCutText messages: what a VNC path's bulk transfers arrive in
// (bench_wire.hpp, rfb).
class CutTextReader {
public:
    // Calls on_text for each piece of text in `data`; false once a message is not a
    // ClientCutText of a length QEMU would take.
    template <typename OnText>
    bool consume(std::span<const std::uint8_t> data, OnText on_text) {
        while (!data.empty()) {
            if (header_fill_ < header_.size()) {
                if (!fill(header_, header_fill_, data)) break;
                if (!start_message()) return false;
            }
            const auto n = std::min<std::size_t>(text_left_, data.size());
            on_text(data.first(n));
            data = data.subspan(n);
            text_left_ -= n;
            if (text_left_ == 0) header_fill_ = 0;
        }
        return true;
    }

private:
    bool start_message() {
        if (header_[0] != static_cast<std::uint8_t>(vnc::ClientMessageType::client_cut_text)) return false;
        const std::uint32_t length = vnc::wire::get_u32(header_, rfb::cut_text_length_at);
        if (length > vnc::max_client_cut_text_len) return false;  // also a negative (extended) length
        text_left_ = length;
        return true;
    }

    std::array<std::uint8_t, rfb::cut_text_header_size> header_{};
    std::size_t header_fill_ = 0;
    std::size_t text_left_ = 0;
};

struct Connection {
    int fd = -1;
    std::optional<spice::DownstreamLink> link;    // until the SPICE login is done
    std::optional<vnc::DownstreamHandshake> rfb;  // until the VNC client's ClientInit
    bool main_channel = false;
    std::vector<std::uint8_t> out;
    std::size_t out_sent = 0;
    std::uint32_t events = 0;  // current epoll interest
    BulkReceiver bulk;
    CutTextReader cut_text;
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
    void greet_rfb(Connection& c);
    bool handle_rfb(Connection& c, std::span<const std::uint8_t> data);
    bool handle_data(Connection& c, std::span<const std::uint8_t> data);
    bool flush(Connection& c);
    void watch(Connection& c, std::uint32_t events);
    void close(Connection& c);

    const SinkOptions options_;
    int listen_fd_ = -1;
    int epoll_fd_ = -1;
    // One key for every link: QEMU makes one per link, but here that would burn the CPU the
    // terminator being measured needs. Nothing is ever decrypted with it.
    std::optional<auth::TicketKey> key_;
    const std::vector<std::uint8_t> ack_;  // a bulk acknowledgement, framed for the protocol
    std::unordered_map<int, std::unique_ptr<Connection>> connections_;
    std::vector<std::uint8_t> buffer_ = std::vector<std::uint8_t>(read_size);
    std::uint32_t next_session_id_ = 1;
};

Sink::Sink(SinkOptions options)
    : options_(std::move(options)), ack_(options_.protocol == SinkProtocol::rfb ? rfb::bulk_ack() : bulk_ack()) {
    if (options_.protocol == SinkProtocol::spice) key_.emplace(auth::TicketKey::generate());
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
        if (options_.protocol == SinkProtocol::spice) c->link.emplace();
        if (options_.protocol == SinkProtocol::rfb) greet_rfb(*c);
        Connection& connection = *connections_.emplace(fd, std::move(c)).first->second;
        if (!flush(connection)) close(connection);  // registers it with epoll
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
    bool ok = false;
    if (c.link) ok = handle_link(c, data);
    else if (c.rfb) ok = handle_rfb(c, data);
    else ok = handle_data(c, data);
    return ok && flush(c);
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
    append(c.out, c.link->take_output());
    if (c.link->closed()) return false;
    if (!c.link->done()) return true;
    if (c.main_channel) append(c.out, main_init(next_session_id_++));
    const auto excess = c.link->take_excess();
    c.link.reset();
    return handle_data(c, excess);
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

// What QEMU offers on a unix socket without a password: security None only (rfb-protocol.md
// §6.1). The server speaks first (§1.1).
void Sink::greet_rfb(Connection& c) {
    c.rfb.emplace(vnc::DownstreamOffer{{vnc::SecurityType::none}, {}, {}});
    append(c.out, c.rfb->take_output());
}

// Version, None, SecurityResult OK, the client's ClientInit; then the ServerInit QEMU would send.
bool Sink::handle_rfb(Connection& c, std::span<const std::uint8_t> data) {
    c.rfb->feed(data);
    while (auto event = c.rfb->next_event()) {
        if (std::holds_alternative<vnc::NoneChosen>(*event)) c.rfb->accept();
        else if (!std::holds_alternative<vnc::ClientInitReceived>(*event)) return false;  // a violation
    }
    append(c.out, c.rfb->take_output());
    if (c.rfb->closed()) return false;
    if (!c.rfb->done()) return true;
    append(c.out, rfb::server_init());
    const auto excess = c.rfb->take_excess();
    c.rfb.reset();
    return handle_data(c, excess);
}

// False when the client broke the framing: the connection is closed.
bool Sink::handle_data(Connection& c, std::span<const std::uint8_t> data) {
    if (options_.echo) {
        append(c.out, data);
        return true;
    }
    std::size_t done = 0;
    if (options_.protocol == SinkProtocol::rfb) {
        if (!c.cut_text.consume(data, [&](std::span<const std::uint8_t> text) { done += c.bulk.consume(text); }))
            return false;
    } else {
        done = c.bulk.consume(data);
    }
    for (; done > 0; --done) append(c.out, ack_);
    return true;
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
