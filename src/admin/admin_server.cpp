#include "admin/admin_server.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/read_until.hpp>
#include <asio/redirect_error.hpp>
#include <asio/streambuf.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace vmgate::admin {
namespace {

// A request line longer than this is not a legitimate CLI request.
constexpr std::size_t max_request_bytes = 64 * 1024;

sockaddr_un unix_address(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path)
        throw std::runtime_error("admin socket path too long (max " +
                                 std::to_string(sizeof addr.sun_path - 1) + " bytes): " + path);
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    return addr;
}

// True when something accepts connections on PATH.
bool socket_is_live(const std::string& path) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    const sockaddr_un addr = unix_address(path);
    const bool live = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return live;
}

void remove_stale_socket(const std::string& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) return;
    if (!S_ISSOCK(st.st_mode))
        throw std::runtime_error("admin socket path exists and is not a socket: " + path);
    if (socket_is_live(path))
        throw std::runtime_error("another vmgate is already serving the admin socket " + path);
    ::unlink(path.c_str());
}

asio::local::stream_protocol::acceptor bind_owner_only(asio::io_context& io, const std::string& path) {
    remove_stale_socket(path);
    // The umask makes the socket 0660 from the moment it exists: no window for a chmod race.
    const mode_t old_mask = ::umask(0117);
    std::error_code ec;
    asio::local::stream_protocol::acceptor acceptor(io);
    acceptor.open(asio::local::stream_protocol(), ec);
    if (!ec) acceptor.bind(asio::local::stream_protocol::endpoint(path), ec);
    ::umask(old_mask);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) throw std::runtime_error("cannot listen on admin socket " + path + ": " + ec.message());
    return acceptor;
}

}  // namespace

AdminServer::AdminServer(asio::io_context& io, std::string path, Handler handler)
    : path_(std::move(path)), handler_(std::move(handler)), acceptor_(bind_owner_only(io, path_)) {
    struct stat st {};
    if (::lstat(path_.c_str(), &st) == 0) inode_ = st.st_ino;
    asio::co_spawn(io, accept_loop(), asio::detached);
}

AdminServer::~AdminServer() {
    stop();
    struct stat st {};
    if (::lstat(path_.c_str(), &st) == 0 && st.st_ino == inode_) ::unlink(path_.c_str());
}

void AdminServer::stop() {
    std::error_code ignored;
    acceptor_.close(ignored);
}

asio::awaitable<void> AdminServer::accept_loop() {
    for (;;) {
        std::error_code ec;
        auto socket = co_await acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
        if (ec == asio::error::operation_aborted) co_return;
        if (ec) continue;
        asio::co_spawn(acceptor_.get_executor(), serve(std::move(socket)), asio::detached);
    }
}

asio::awaitable<void> AdminServer::serve(asio::local::stream_protocol::socket socket) {
    try {
        asio::streambuf buffer(max_request_bytes);
        for (;;) {
            const std::size_t n = co_await asio::async_read_until(socket, buffer, '\n', asio::use_awaitable);
            std::string line(asio::buffers_begin(buffer.data()),
                             asio::buffers_begin(buffer.data()) + static_cast<std::ptrdiff_t>(n));
            buffer.consume(n);
            nlohmann::json reply;
            try {
                reply = co_await handler_(nlohmann::json::parse(line));
            } catch (const nlohmann::json::exception& e) {
                reply = {{"ok", false}, {"error", std::string("malformed request: ") + e.what()}};
            }
            const std::string out = reply.dump() + "\n";
            co_await asio::async_write(socket, asio::buffer(out), asio::use_awaitable);
        }
    } catch (const std::system_error&) {
        // Client went away (or sent more than max_request_bytes without a newline).
    }
}

nlohmann::json call(const std::string& socket_path, const nlohmann::json& request) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
    const sockaddr_un addr = unix_address(socket_path);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
        const int err = errno;
        ::close(fd);
        throw std::runtime_error("cannot reach the vmgate daemon at " + socket_path + ": " +
                                 std::strerror(err) +
                                 (err == ENOENT || err == ECONNREFUSED ? " (is `vmgate serve` running?)"
                                  : err == EACCES ? " (the admin socket is for its owner and group only)" : ""));
    }
    const std::string out = request.dump() + "\n";
    std::size_t sent = 0;
    while (sent < out.size()) {
        const ssize_t n = ::write(fd, out.data() + sent, out.size() - sent);
        if (n <= 0) {
            ::close(fd);
            throw std::runtime_error("admin socket write failed");
        }
        sent += static_cast<std::size_t>(n);
    }
    std::string in;
    char buf[4096];
    while (in.find('\n') == std::string::npos) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) break;
        in.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    if (in.find('\n') == std::string::npos) throw std::runtime_error("the daemon closed the admin connection");
    return nlohmann::json::parse(in.substr(0, in.find('\n')));
}

}  // namespace vmgate::admin
