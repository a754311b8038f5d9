// A running vmgate: listeners, worker threads, the admin socket, and the state connections
// share. One io_context per worker thread; a connection lives on one thread.
#pragma once

#include "core/config.hpp"

#include <memory>

namespace vmgate::net {

class Gateway {
public:
    explicit Gateway(core::Config config);
    ~Gateway();
    Gateway(const Gateway&) = delete;
    Gateway& operator=(const Gateway&) = delete;

    // Opens the audit log, loads TLS and SASL, binds every listener and the admin socket, starts
    // the workers. Throws std::runtime_error with a message an admin can act on.
    void start();
    // Serves until SIGINT or SIGTERM (or stop()), then ends every connection and returns 0.
    int run_until_signal();
    // Thread-safe: begin an orderly shutdown.
    void stop();

private:
    struct State;
    std::unique_ptr<State> state_;
};

}  // namespace vmgate::net
