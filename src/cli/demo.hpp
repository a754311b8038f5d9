// `vmgate demo` (what `make demo` runs): a complete gateway on this machine in one command — a
// CA and server certificate, demo users in a sasldb, two disk-less QEMUs, a commented config
// file, and the gateway in front of them — plus the exact client commands to try it.
#pragma once

#include <string>

namespace vmgate::cli {

struct DemoOptions {
    // Kept across runs: the CA (so a client that trusts it keeps working), the passwords, the
    // ports when still free.
    std::string state_dir = "./vmgate-demo";
    std::string qemu_binary = "qemu-system-x86_64";
};

// Blocks until SIGINT or SIGTERM, then stops the gateway and the QEMUs. Progress and errors go
// to stderr, the guide to stdout. Returns the process exit code: 0 after a clean stop, 1 with
// an error message when a step fails (everything already started is stopped again).
int run_demo(const DemoOptions& options);

}  // namespace vmgate::cli
