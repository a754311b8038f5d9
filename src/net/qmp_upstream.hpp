// Upstream display connections handed over by QEMU's QMP monitor (qmp: upstreams): for each
// SPICE channel or VNC session vmgate makes a socketpair, passes one end to QEMU with getfd
// (SCM_RIGHTS) and has QEMU serve it with add_client skipauth=true, so QEMU's display needs no
// password and no listening socket of its own.
//
// One QMP connection per QEMU (per QMP socket path), shared by every worker thread and used by
// one request at a time: getfd takes the descriptor that arrived last, so a second pair in
// flight could hand QEMU the wrong one. A connection that QEMU closed (it stopped or restarted)
// is dropped and the next request connects again; every request has a deadline, so a QEMU that
// hangs delays a client by at most that long.
#pragma once

#include "core/config.hpp"
#include "core/owned_fd.hpp"

#include <asio/awaitable.hpp>
#include <asio/thread_pool.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

namespace vmgate::net {

using core::OwnedFd;

class QmpUpstreams {
public:
    static constexpr std::chrono::milliseconds default_request_timeout{5000};

    explicit QmpUpstreams(std::chrono::milliseconds request_timeout = default_request_timeout);
    // Stops the QMP thread; requests still in progress end without completing. Destroy this
    // before the io_contexts of the coroutines that wait on it.
    ~QmpUpstreams();
    QmpUpstreams(const QmpUpstreams&) = delete;
    QmpUpstreams& operator=(const QmpUpstreams&) = delete;

    // A new connection to the `display` server of the QEMU whose QMP socket is `qmp_path`:
    // vmgate's end of a socketpair whose other end QEMU serves without authentication. From any
    // thread; resumes on the caller's executor within the request timeout. Throws
    // std::runtime_error with the problem in words (QEMU's own `desc` when it refused).
    asio::awaitable<OwnedFd> connect_display(std::string qmp_path, core::Protocol display);

private:
    class Monitor;

    asio::awaitable<OwnedFd> connect_on_qmp_thread(std::string qmp_path, core::Protocol display);

    // Every Monitor lives and runs on this one thread, so they need no locks. Declared first:
    // it must outlive the monitors whose sockets it serves.
    asio::thread_pool qmp_thread_{1};
    const std::chrono::milliseconds request_timeout_;
    std::map<std::string, std::shared_ptr<Monitor>> monitors_;  // by QMP socket path
    std::uint64_t next_fd_name_ = 1;
};

}  // namespace vmgate::net
