#include "net/qmp_upstream.hpp"

#include "qmp/client.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <deque>
#include <functional>
#include <optional>
#include <span>
#include <stdexcept>
#include <system_error>

namespace vmgate::net {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t qmp_read_size = 4096;

// The QMP connection failed: closed, unreadable, not QMP, or given up at a deadline.
struct LinkLost : std::runtime_error {
    using std::runtime_error::runtime_error;
};

std::string duration_text(std::chrono::milliseconds d) {
    if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + " s";
    return std::to_string(d.count()) + " ms";
}

// The two ends of a new display connection.
struct DisplaySocketPair {
    OwnedFd vmgate_end;
    OwnedFd qemu_end;
};

// CLOEXEC so that no process vmgate starts (the demo's QEMUs) inherits a console connection.
DisplaySocketPair display_socket_pair() {
    std::array<int, 2> fds{};
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds.data()) != 0)
        throw std::system_error(errno, std::generic_category(), "socketpair");
    return {OwnedFd(fds[0]), OwnedFd(fds[1])};
}

// One sendmsg of `bytes` carrying `fd` as SCM_RIGHTS; returns what sendmsg returns.
ssize_t send_with_descriptor(int socket, std::span<const std::uint8_t> bytes, int fd) {
    iovec data{const_cast<std::uint8_t*>(bytes.data()), bytes.size()};
    alignas(cmsghdr) std::array<unsigned char, CMSG_SPACE(sizeof(int))> control{};
    msghdr message{};
    message.msg_iov = &data;
    message.msg_iovlen = 1;
    message.msg_control = control.data();
    message.msg_controllen = control.size();
    cmsghdr* rights = CMSG_FIRSTHDR(&message);
    rights->cmsg_level = SOL_SOCKET;
    rights->cmsg_type = SCM_RIGHTS;
    rights->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(rights), &fd, sizeof(int));
    return ::sendmsg(socket, &message, MSG_DONTWAIT | MSG_NOSIGNAL);
}

}  // namespace

// ---- one QEMU's monitor ----------------------------------------------------------------------

class QmpUpstreams::Monitor : public std::enable_shared_from_this<Monitor> {
public:
    Monitor(asio::any_io_executor executor, std::string path, std::chrono::milliseconds timeout)
        : executor_(std::move(executor)), path_(std::move(path)), timeout_(timeout) {}

    // getfd + add_client for one display connection, after the requests that came before it.
    asio::awaitable<OwnedFd> connect_display(core::Protocol display, std::string fd_name, Clock::time_point deadline);

private:
    // One QMP connection. Dropped as a whole when it fails; the next request makes a new one.
    struct Link {
        explicit Link(const asio::any_io_executor& executor) : socket(executor) {}
        asio::local::stream_protocol::socket socket;
        qmp::Client machine;
        std::map<qmp::CommandId, qmp::Reply> replies;
        bool ready = false;
        bool has_vnc_display = false;          // query-vnc-servers found one on this connection
        std::optional<std::string> lost;       // why it is of no more use
        asio::steady_timer* waiter = nullptr;  // the request waiting for QEMU, woken by the reader
    };

    // What the running request is doing, for its deadline to say and to stop.
    struct Progress {
        explicit Progress(Clock::time_point d) : deadline(d) {}
        const Clock::time_point deadline;
        std::weak_ptr<Link> link;
        bool reused_link = false;  // made by an earlier request
        std::string step;
        bool finished = false;
    };

    struct Turn {
        Turn(const asio::any_io_executor& executor, Clock::time_point deadline) : timer(executor, deadline) {}
        asio::steady_timer timer;
        bool granted = false;
    };

    asio::awaitable<void> take_turn(Clock::time_point deadline);
    void end_turn();
    void watch_deadline(asio::steady_timer& deadline, const std::shared_ptr<Progress>& progress);
    asio::awaitable<OwnedFd> exchange_retrying_stale(core::Protocol display, const std::string& fd_name,
                                                     Progress& progress);
    asio::awaitable<OwnedFd> exchange(core::Protocol display, const std::string& fd_name, Progress& progress);
    asio::awaitable<std::shared_ptr<Link>> current_link(Progress& progress);
    asio::awaitable<void> require_vnc_display(Link& link, Progress& progress);
    asio::awaitable<void> read_loop(std::shared_ptr<Link> link);
    void take_event(Link& link, qmp::Event event);
    asio::awaitable<qmp::Reply> call(Link& link, std::string_view command, nlohmann::json arguments,
                                     OwnedFd passed = {});
    asio::awaitable<void> send_passing(Link& link, std::span<const std::uint8_t> bytes, const OwnedFd& passed);
    asio::awaitable<void> send(Link& link, std::span<const std::uint8_t> bytes);
    asio::awaitable<void> wait_for(Link& link, std::function<bool()> done);
    [[noreturn]] void fail_link(Link& link, const std::string& why);
    void drop(Link& link, const std::string& why);

    asio::any_io_executor executor_;
    const std::string path_;
    const std::chrono::milliseconds timeout_;
    std::shared_ptr<Link> link_;  // ready for commands, or null
    bool busy_ = false;           // a request holds the turn
    std::deque<std::shared_ptr<Turn>> waiting_;
};

asio::awaitable<OwnedFd> QmpUpstreams::Monitor::connect_display(core::Protocol display, std::string fd_name,
                                                                Clock::time_point deadline) {
    co_await take_turn(deadline);
    auto progress = std::make_shared<Progress>(deadline);
    asio::steady_timer deadline_timer(executor_, deadline);
    watch_deadline(deadline_timer, progress);
    std::exception_ptr failure;
    OwnedFd display_end;
    try {
        display_end = co_await exchange_retrying_stale(display, fd_name, *progress);
    } catch (...) {
        failure = std::current_exception();
    }
    progress->finished = true;
    deadline_timer.cancel();
    end_turn();
    if (failure) std::rethrow_exception(failure);
    co_return display_end;
}

// Requests queue here in arrival order, each for no longer than its own deadline.
asio::awaitable<void> QmpUpstreams::Monitor::take_turn(Clock::time_point deadline) {
    if (!busy_) {
        busy_ = true;
        co_return;
    }
    auto turn = std::make_shared<Turn>(executor_, deadline);
    waiting_.push_back(turn);
    std::error_code ignored;  // a cancel is end_turn() granting the turn; expiry is the deadline
    co_await turn->timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    if (turn->granted && Clock::now() < deadline) co_return;
    if (turn->granted) end_turn();  // granted just as the deadline passed: it passes on at once
    else std::erase(waiting_, turn);
    throw std::runtime_error("the requests before this one to the same QEMU did not finish within " +
                             duration_text(timeout_));
}

void QmpUpstreams::Monitor::end_turn() {
    if (waiting_.empty()) {
        busy_ = false;
        return;
    }
    auto next = std::move(waiting_.front());
    waiting_.pop_front();
    next->granted = true;
    next->timer.cancel();
}

// When the deadline passes the connection is dropped: a QEMU that has not answered by then is
// hung or gone, and whatever it might still send would answer a request already given up.
void QmpUpstreams::Monitor::watch_deadline(asio::steady_timer& deadline, const std::shared_ptr<Progress>& progress) {
    deadline.async_wait([self = shared_from_this(), progress](std::error_code ec) {
        if (ec || progress->finished) return;
        if (auto link = progress->link.lock())
            self->drop(*link, "no answer from QEMU within " + duration_text(self->timeout_) + " (" + progress->step + ")");
    });
}

// A connection QEMU closed a moment ago can still look usable: its reader has not seen the close
// yet. A request that finds it dead gets one fresh connection within its deadline.
asio::awaitable<OwnedFd> QmpUpstreams::Monitor::exchange_retrying_stale(core::Protocol display,
                                                                        const std::string& fd_name,
                                                                        Progress& progress) {
    try {
        co_return co_await exchange(display, fd_name, progress);
    } catch (const LinkLost&) {
        if (!progress.reused_link || Clock::now() >= progress.deadline) throw;
    }
    co_return co_await exchange(display, fd_name, progress);
}

asio::awaitable<OwnedFd> QmpUpstreams::Monitor::exchange(core::Protocol display, const std::string& fd_name,
                                                         Progress& progress) {
    const auto link = co_await current_link(progress);
    if (display == core::Protocol::vnc) co_await require_vnc_display(*link, progress);
    DisplaySocketPair ends = display_socket_pair();
    // Arguments are built outside the co_await expressions: GCC 12 cannot keep an initializer
    // list alive across a suspension point.
    nlohmann::json getfd_arguments = {{"fdname", fd_name}};
    nlohmann::json add_client_arguments = {
        {"protocol", core::to_string(display)}, {"fdname", fd_name}, {"skipauth", true}, {"tls", false}};
    progress.step = "getfd";
    const auto fd_taken = co_await call(*link, "getfd", std::move(getfd_arguments), std::move(ends.qemu_end));
    if (const auto* refused = std::get_if<qmp::CommandError>(&fd_taken.outcome))
        throw std::runtime_error("QEMU refused getfd: " + refused->desc);
    progress.step = "add_client";
    const auto added = co_await call(*link, "add_client", std::move(add_client_arguments));
    if (const auto* refused = std::get_if<qmp::CommandError>(&added.outcome))
        throw std::runtime_error("QEMU refused add_client: " + refused->desc);
    co_return std::move(ends.vmgate_end);
}

// The connection in use, or a new one once QEMU has greeted it and accepted qmp_capabilities.
asio::awaitable<std::shared_ptr<QmpUpstreams::Monitor::Link>> QmpUpstreams::Monitor::current_link(Progress& progress) {
    progress.reused_link = link_ != nullptr;
    if (link_) {
        progress.link = link_;
        co_return link_;
    }
    auto link = std::make_shared<Link>(executor_);
    progress.link = link;
    progress.step = "connecting";
    std::error_code ec;
    co_await link->socket.async_connect(asio::local::stream_protocol::endpoint(path_),
                                        asio::redirect_error(asio::use_awaitable, ec));
    if (link->lost) throw LinkLost(*link->lost);
    if (ec) throw std::runtime_error("cannot connect: " + ec.message());
    asio::co_spawn(executor_, read_loop(link), asio::detached);
    progress.step = "waiting for the QMP greeting; QEMU serves one client per -qmp socket, and another may hold it";
    co_await wait_for(*link, [&] { return link->ready; });
    link_ = link;
    co_return link;
}

// add_client hands a VNC connection to QEMU's first VNC display, and when there is none it says
// nothing and leaves the connection unanswered: so ask first, once per QMP connection (displays
// are fixed when QEMU starts). `-vnc none` counts: a display that listens nowhere.
asio::awaitable<void> QmpUpstreams::Monitor::require_vnc_display(Link& link, Progress& progress) {
    if (link.has_vnc_display) co_return;
    progress.step = "query-vnc-servers";
    const auto reply = co_await call(link, "query-vnc-servers", nlohmann::json::object());
    const auto* servers = std::get_if<nlohmann::json>(&reply.outcome);
    if (!servers || !servers->is_array() || servers->empty())
        throw std::runtime_error("QEMU has no VNC display: start it with -vnc none (or -vnc unix:PATH)");
    link.has_vnc_display = true;
}

// Reads for as long as the connection lives, also between requests: QEMU's events would
// otherwise pile up in its memory, and a QEMU that stopped is noticed at once.
asio::awaitable<void> QmpUpstreams::Monitor::read_loop(std::shared_ptr<Link> link) {
    std::array<std::uint8_t, qmp_read_size> buffer;
    for (;;) {
        std::error_code ec;
        const std::size_t n =
            co_await link->socket.async_read_some(asio::buffer(buffer), asio::redirect_error(asio::use_awaitable, ec));
        if (link->lost) co_return;
        if (ec) {
            drop(*link, ec == asio::error::eof ? "QEMU closed the QMP connection" : "reading QMP: " + ec.message());
            co_return;
        }
        link->machine.feed(std::span(buffer.data(), n));
        while (auto event = link->machine.next_event()) take_event(*link, std::move(*event));
        if (link->lost) co_return;
        if (link->waiter) link->waiter->cancel();
    }
}

void QmpUpstreams::Monitor::take_event(Link& link, qmp::Event event) {
    if (const auto* ready = std::get_if<qmp::Ready>(&event)) {
        link.ready = true;
        spdlog::info("QMP {}: connected to QEMU {}", path_, ready->qemu_version);
    } else if (auto* reply = std::get_if<qmp::Reply>(&event)) {
        link.replies.emplace(reply->id, std::move(*reply));
    } else {
        drop(link, "QEMU sent what is not QMP: " + std::get<qmp::Failed>(event).detail);
    }
}

// Sends the command and waits for its reply. `passed` travels with it as SCM_RIGHTS and is closed
// once sent: QEMU has its own copy then.
asio::awaitable<qmp::Reply> QmpUpstreams::Monitor::call(Link& link, std::string_view command,
                                                        nlohmann::json arguments, OwnedFd passed) {
    const qmp::CommandId id = link.machine.command(command, std::move(arguments));
    const auto bytes = link.machine.take_output();
    if (passed) {
        co_await send_passing(link, bytes, passed);
        passed = OwnedFd();
    } else {
        co_await send(link, bytes);
    }
    co_await wait_for(link, [&] { return link.replies.contains(id); });
    auto reply = std::move(link.replies.extract(id).mapped());
    co_return reply;
}

// The descriptor rides on the first bytes of getfd, so that it is the one QEMU holds when it
// runs that command (it keeps the descriptor that came with the data it read last).
asio::awaitable<void> QmpUpstreams::Monitor::send_passing(Link& link, std::span<const std::uint8_t> bytes,
                                                          const OwnedFd& passed) {
    for (;;) {
        std::error_code ec;
        co_await link.socket.async_wait(asio::socket_base::wait_write, asio::redirect_error(asio::use_awaitable, ec));
        if (link.lost) throw LinkLost(*link.lost);
        if (ec) fail_link(link, "writing to QMP: " + ec.message());
        const ssize_t sent = send_with_descriptor(link.socket.native_handle(), bytes, passed.get());
        if (sent >= 0) {
            co_await send(link, bytes.subspan(static_cast<std::size_t>(sent)));
            co_return;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            fail_link(link, "passing the display socket to QEMU: " + std::system_category().message(errno));
    }
}

asio::awaitable<void> QmpUpstreams::Monitor::send(Link& link, std::span<const std::uint8_t> bytes) {
    if (bytes.empty()) co_return;
    std::error_code ec;
    co_await asio::async_write(link.socket, asio::buffer(bytes.data(), bytes.size()),
                               asio::redirect_error(asio::use_awaitable, ec));
    if (link.lost) throw LinkLost(*link.lost);
    if (ec) fail_link(link, "writing to QMP: " + ec.message());
}

// Until done() holds. What the machine queued meanwhile (qmp_capabilities after the greeting)
// is sent first: only the request holding the turn writes, so writes never interleave.
asio::awaitable<void> QmpUpstreams::Monitor::wait_for(Link& link, std::function<bool()> done) {
    asio::steady_timer wake(executor_);
    for (;;) {
        co_await send(link, link.machine.take_output());
        if (done()) co_return;
        if (link.lost) throw LinkLost(*link.lost);
        wake.expires_at(Clock::time_point::max());  // ends only by the reader's cancel()
        link.waiter = &wake;
        std::error_code ignored;
        co_await wake.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
        link.waiter = nullptr;
    }
}

void QmpUpstreams::Monitor::fail_link(Link& link, const std::string& why) {
    drop(link, why);
    throw LinkLost(*link.lost);
}

void QmpUpstreams::Monitor::drop(Link& link, const std::string& why) {
    if (link.lost) return;
    std::string text = why;
    const auto& events = link.machine.recent_async_events();
    if (!events.empty()) {
        text += " (QEMU's last events:";
        for (const auto& name : events) text += " " + name;
        text += ")";
    }
    link.lost = text;
    spdlog::warn("QMP {}: {}", path_, text);
    std::error_code ignored;
    link.socket.close(ignored);
    if (link.waiter) link.waiter->cancel();
    if (link_.get() == &link) link_.reset();
}

// ---- the registry ------------------------------------------------------------------------------

QmpUpstreams::QmpUpstreams(std::chrono::milliseconds request_timeout) : request_timeout_(request_timeout) {}

QmpUpstreams::~QmpUpstreams() {
    qmp_thread_.stop();
    qmp_thread_.join();
    monitors_.clear();
}

asio::awaitable<OwnedFd> QmpUpstreams::connect_display(std::string qmp_path, core::Protocol display) {
    co_return co_await asio::co_spawn(qmp_thread_, connect_on_qmp_thread(std::move(qmp_path), display),
                                      asio::use_awaitable);
}

asio::awaitable<OwnedFd> QmpUpstreams::connect_on_qmp_thread(std::string qmp_path, core::Protocol display) {
    auto& monitor = monitors_[qmp_path];
    if (!monitor) monitor = std::make_shared<Monitor>(qmp_thread_.get_executor(), qmp_path, request_timeout_);
    const auto keep = monitor;  // the map may grow while this request waits
    const std::string fd_name = "vmgate-" + std::to_string(next_fd_name_++);
    co_return co_await keep->connect_display(display, fd_name, Clock::now() + request_timeout_);
}

}  // namespace vmgate::net
