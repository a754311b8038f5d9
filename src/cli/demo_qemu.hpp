// The demo's QEMUs: TCG, no disk (SeaBIOS stops on "No bootable device"), SPICE and VNC on unix
// sockets without a password, so the gateway is the only way in (e2e-recipes.md §1).
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace vmgate::cli {

struct QemuSpec {
    std::string binary = "qemu-system-x86_64";  // looked up in PATH unless it contains a '/'
    std::string name;                           // -name: remote-viewer shows it in its title
    std::filesystem::path spice_socket;
    std::filesystem::path vnc_socket;  // -vnc unix:PATH: QEMU's security type None
    std::filesystem::path log_file;  // QEMU's stdout and stderr
    // Holds the PID while QEMU runs, so that the next run can stop a QEMU this one left behind
    // when it was killed without a chance to clean up.
    std::filesystem::path pid_file;
};

std::vector<std::string> qemu_argv(const QemuSpec& spec);

// One QEMU child process. Constructing starts it; destroying stops it, so an error anywhere in
// the demo's startup leaves nothing running.
class QemuProcess {
public:
    static constexpr std::chrono::seconds ready_timeout{10};
    static constexpr std::chrono::seconds stop_grace{3};  // SIGTERM, then SIGKILL

    // Starts QEMU (stale socket files are removed first). Throws std::runtime_error, e.g.
    // "qemu-system-x86_64 not found: install the Debian package qemu-system-x86".
    explicit QemuProcess(QemuSpec spec);
    ~QemuProcess();
    QemuProcess(const QemuProcess&) = delete;
    QemuProcess& operator=(const QemuProcess&) = delete;

    // Returns once the SPICE and the VNC socket exist. Throws std::runtime_error when QEMU exits
    // first (with the end of its log) or TIMEOUT passes; QEMU is stopped in both cases.
    void wait_until_ready(std::chrono::milliseconds timeout = ready_timeout);

    // SIGTERM, SIGKILL after stop_grace, reaped with waitpid; removes the sockets and pid file.
    // Does nothing when already stopped.
    void stop() noexcept;

    pid_t pid() const { return pid_; }  // -1 once stopped or reaped
    const QemuSpec& spec() const { return spec_; }

private:
    bool reap(bool block) noexcept;  // true once the child is gone
    std::string exit_report() const;

    QemuSpec spec_;
    pid_t pid_ = -1;
    int exit_status_ = 0;  // waitpid status, valid once reaped
};

// A QEMU a previous, killed run left running: the PID in SPEC's pid file whose command line
// still names SPEC's SPICE socket. Stops it (SIGTERM, then SIGKILL) and returns its PID; nullopt
// when there is none. Never touches an unrelated process that happens to reuse the PID.
std::optional<pid_t> stop_leftover_qemu(const QemuSpec& spec);

}  // namespace vmgate::cli
