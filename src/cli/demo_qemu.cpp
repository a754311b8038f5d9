#include "cli/demo_qemu.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <deque>
#include <fstream>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <utility>

extern char** environ;

namespace vmgate::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// QEMU creates its socket within ~0.15 s on TCG (e2e-recipes.md §6); polling is simpler than
// inotify and costs nothing at this rate.
constexpr std::chrono::milliseconds poll_interval{20};
constexpr std::size_t log_tail_lines = 5;
// Signals whose disposition the gateway may have changed (ignored SIGPIPE, handled SIGINT);
// QEMU must start with the defaults, and an ignored disposition would survive exec.
constexpr int reset_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGCHLD};

// QEMU's option parser splits on ',' and reads ",," as a literal comma.
std::string escape_option_value(const std::string& value) {
    std::string escaped;
    for (const char c : value) {
        escaped += c;
        if (c == ',') escaped += ',';
    }
    return escaped;
}

std::string spice_option(const QemuSpec& spec) {
    return "unix=on,addr=" + escape_option_value(spec.spice_socket.string()) +
           ",disable-ticketing=on";
}

// No password, tls-creds or sasl option: QEMU offers security type None, which the gateway's
// upstream handshake takes; the state directory (0700) keeps everyone else off the socket.
std::string vnc_option(const QemuSpec& spec) {
    return "unix:" + escape_option_value(spec.vnc_socket.string());
}

std::array<fs::path, 2> display_sockets(const QemuSpec& spec) {
    return {spec.spice_socket, spec.vnc_socket};
}

bool display_sockets_exist(const QemuSpec& spec) {
    std::error_code ignored;
    const auto sockets = display_sockets(spec);
    return std::all_of(sockets.begin(), sockets.end(),
                       [&](const fs::path& socket) { return fs::is_socket(socket, ignored); });
}

int open_log(const fs::path& file) {
    const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        throw std::system_error(errno, std::generic_category(), "cannot create " + file.string());
    return fd;
}

// Returns posix_spawnp's error number (0 on success); glibc reports a failed exec there too.
int spawn(const std::vector<std::string>& argv, int log_fd, pid_t& pid) {
    std::vector<char*> args;
    for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attributes;
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attributes);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, log_fd, STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, log_fd, STDERR_FILENO);
    sigset_t mask;
    sigemptyset(&mask);  // the gateway may block signals in its threads; QEMU must not inherit that
    posix_spawnattr_setsigmask(&attributes, &mask);
    sigset_t defaults;
    sigemptyset(&defaults);
    for (const int signal : reset_signals) sigaddset(&defaults, signal);
    posix_spawnattr_setsigdefault(&attributes, &defaults);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

    const int error = ::posix_spawnp(&pid, args[0], &actions, &attributes, args.data(), environ);
    posix_spawnattr_destroy(&attributes);
    posix_spawn_file_actions_destroy(&actions);
    return error;
}

void remove_quietly(const fs::path& file) noexcept {
    std::error_code ignored;
    fs::remove(file, ignored);
}

void remove_display_sockets(const QemuSpec& spec) noexcept {
    for (const fs::path& socket : display_sockets(spec)) remove_quietly(socket);
}

std::string describe_status(int status) {
    if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status))
        return "was killed by signal " + std::to_string(WTERMSIG(status)) + " (" +
               ::strsignal(WTERMSIG(status)) + ")";
    return "ended";
}

std::string log_tail(const fs::path& file) {
    std::ifstream in(file);
    std::deque<std::string> lines;
    for (std::string line; std::getline(in, line);) {
        if (line.empty()) continue;
        lines.push_back(std::move(line));
        if (lines.size() > log_tail_lines) lines.pop_front();
    }
    std::string tail;
    for (const std::string& line : lines) tail += "\n  " + line;
    return tail;
}

std::optional<pid_t> read_pid_file(const fs::path& file) {
    std::ifstream in(file);
    long pid = 0;
    // PID 1 and below are never ours, whatever the file says.
    if (!(in >> pid) || pid <= 1) return std::nullopt;
    return static_cast<pid_t>(pid);
}

// The arguments of PID; empty once it has exited, including while it is a zombie.
std::vector<std::string> command_line(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
    std::vector<std::string> args;
    for (std::string arg; std::getline(in, arg, '\0');) args.push_back(arg);
    return args;
}

// Matching the exact -spice argument, socket path included, is what makes a reused PID safe.
bool runs_spec(pid_t pid, const QemuSpec& spec) {
    const std::vector<std::string> args = command_line(pid);
    return std::find(args.begin(), args.end(), spice_option(spec)) != args.end();
}

bool wait_until_gone(pid_t pid, const QemuSpec& spec, Clock::duration timeout) {
    const Clock::time_point deadline = Clock::now() + timeout;
    while (runs_spec(pid, spec)) {
        if (Clock::now() >= deadline) return false;
        std::this_thread::sleep_for(poll_interval);
    }
    return true;
}

}  // namespace

std::vector<std::string> qemu_argv(const QemuSpec& spec) {
    return {spec.binary,
            "-name", spec.name,
            "-machine", "pc,accel=tcg",
            "-m", "64",
            "-nodefaults", "-no-user-config",
            "-nic", "none",
            "-display", "none",
            "-vga", "qxl",
            "-spice", spice_option(spec),
            "-vnc", vnc_option(spec)};
}

QemuProcess::QemuProcess(QemuSpec spec) : spec_(std::move(spec)) {
    // Sockets left by a QEMU that crashed would make readiness look immediate.
    remove_display_sockets(spec_);
    const int log_fd = open_log(spec_.log_file);
    pid_t pid = -1;
    const int error = spawn(qemu_argv(spec_), log_fd, pid);
    ::close(log_fd);
    if (error == ENOENT)
        throw std::runtime_error(spec_.binary +
                                 " not found: install the Debian package qemu-system-x86");
    if (error != 0)
        throw std::system_error(error, std::generic_category(), "cannot start " + spec_.binary);
    pid_ = pid;

    std::ofstream pid_file(spec_.pid_file, std::ios::trunc);
    pid_file << pid_ << '\n';
    pid_file.close();
    if (!pid_file) {
        stop();  // the destructor does not run when a constructor throws
        throw std::runtime_error("cannot write " + spec_.pid_file.string());
    }
}

QemuProcess::~QemuProcess() { stop(); }

void QemuProcess::wait_until_ready(std::chrono::milliseconds timeout) {
    const Clock::time_point deadline = Clock::now() + timeout;
    while (!display_sockets_exist(spec_)) {
        if (reap(false)) throw std::runtime_error(exit_report());
        if (Clock::now() >= deadline) {
            stop();
            throw std::runtime_error(spec_.name + ": QEMU did not create " +
                                     spec_.spice_socket.string() + " and " +
                                     spec_.vnc_socket.string() + " within " +
                                     std::to_string(timeout.count()) + " ms; see " +
                                     spec_.log_file.string());
        }
        std::this_thread::sleep_for(poll_interval);
    }
}

void QemuProcess::stop() noexcept {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);  // QEMU shuts down cleanly on SIGTERM
    const Clock::time_point deadline = Clock::now() + stop_grace;
    while (!reap(false)) {
        if (Clock::now() >= deadline) {
            ::kill(pid_, SIGKILL);
            reap(true);
            return;
        }
        std::this_thread::sleep_for(poll_interval);
    }
}

bool QemuProcess::reap(bool block) noexcept {
    if (pid_ <= 0) return true;
    int status = 0;
    pid_t result = -1;
    do {
        result = ::waitpid(pid_, &status, block ? 0 : WNOHANG);
    } while (result < 0 && errno == EINTR);
    if (result == 0) return false;
    // result < 0 (ECHILD): SIGCHLD is ignored somewhere in the process and the kernel reaped it.
    exit_status_ = result == pid_ ? status : 0;
    pid_ = -1;
    remove_display_sockets(spec_);
    remove_quietly(spec_.pid_file);
    return true;
}

std::string QemuProcess::exit_report() const {
    const std::string tail = log_tail(spec_.log_file);
    return spec_.name + ": " + spec_.binary + " " + describe_status(exit_status_) +
           " before creating its display sockets; " +
           (tail.empty() ? spec_.log_file.string() + " is empty"
                         : "the end of " + spec_.log_file.string() + ":" + tail);
}

std::optional<pid_t> stop_leftover_qemu(const QemuSpec& spec) {
    const std::optional<pid_t> pid = read_pid_file(spec.pid_file);
    if (!pid || !runs_spec(*pid, spec)) {
        remove_quietly(spec.pid_file);
        return std::nullopt;
    }
    ::kill(*pid, SIGTERM);
    if (!wait_until_gone(*pid, spec, QemuProcess::stop_grace)) {
        ::kill(*pid, SIGKILL);
        if (!wait_until_gone(*pid, spec, QemuProcess::stop_grace))
            throw std::runtime_error("cannot stop the QEMU left over from an earlier run (pid " +
                                     std::to_string(*pid) + ")");
    }
    remove_quietly(spec.pid_file);
    remove_display_sockets(spec);
    return pid;
}

}  // namespace vmgate::cli
