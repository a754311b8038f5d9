// The admin socket: a unix socket for the daemon's user and group only (mode 0660), speaking one
// JSON object per line in each direction. The CLI (`vmgate ticket`, `sessions`, `reload`) talks
// to the running daemon through it; anyone who can open it can mint tickets and end sessions,
// hence the mode: admins are the daemon's user and the members of its group.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <asio/local/stream_protocol.hpp>
#include <nlohmann/json.hpp>

#include <sys/types.h>

#include <functional>
#include <string>

namespace vmgate::admin {

class AdminServer {
public:
    // A coroutine: some answers wait on other things (`vms` tries every upstream).
    using Handler = std::function<asio::awaitable<nlohmann::json>(const nlohmann::json& request)>;

    // Binds PATH (replacing a stale socket, refusing a live one). Throws std::runtime_error.
    AdminServer(asio::io_context& io, std::string path, Handler handler);
    ~AdminServer();
    AdminServer(const AdminServer&) = delete;
    AdminServer& operator=(const AdminServer&) = delete;

    void stop();

private:
    asio::awaitable<void> accept_loop();
    asio::awaitable<void> serve(asio::local::stream_protocol::socket socket);

    std::string path_;
    Handler handler_;
    ino_t inode_ = 0;  // of the socket we bound: a successor's socket at the same path is not ours
    asio::local::stream_protocol::acceptor acceptor_;
};

// Sends one request to the daemon's admin socket and returns its reply.
// Throws std::runtime_error with a message that says what to check.
nlohmann::json call(const std::string& socket_path, const nlohmann::json& request);

}  // namespace vmgate::admin
