#include "cli/password_input.hpp"

#include <termios.h>
#include <unistd.h>

#include <array>
#include <csignal>
#include <iostream>

namespace vmgate::cli {

namespace {

// The terminal settings to put back if a signal ends the process while echo is off; read by the
// handler, hence plain globals.
termios g_saved_terminal{};
volatile std::sig_atomic_t g_echo_is_off = 0;

constexpr std::array<int, 4> kEndingSignals{SIGINT, SIGTERM, SIGHUP, SIGQUIT};

// Ctrl-C at the prompt must not leave the operator's terminal without echo: restore it, then
// die of the signal as the process would have.
void restore_terminal_and_reraise(int signal) {
    if (g_echo_is_off != 0) ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &g_saved_terminal);
    std::signal(signal, SIG_DFL);
    std::raise(signal);
}

// Echo off on the terminal for as long as it lives; the line the user ends with Enter is still
// delivered (canonical mode stays on). Switching flushes what was typed before the prompt, as
// getpass(3) does: a password is only read in answer to its prompt.
class EchoOff {
public:
    EchoOff() {
        if (::tcgetattr(STDIN_FILENO, &g_saved_terminal) != 0) return;
        struct sigaction action {};
        action.sa_handler = restore_terminal_and_reraise;
        for (std::size_t i = 0; i < kEndingSignals.size(); ++i) ::sigaction(kEndingSignals[i], &action, &previous_[i]);
        handlers_installed_ = true;
        termios quiet = g_saved_terminal;
        quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
        g_echo_is_off = ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0 ? 1 : 0;
    }
    ~EchoOff() {
        if (g_echo_is_off != 0) ::tcsetattr(STDIN_FILENO, TCSANOW, &g_saved_terminal);
        g_echo_is_off = 0;
        if (!handlers_installed_) return;
        for (std::size_t i = 0; i < kEndingSignals.size(); ++i) ::sigaction(kEndingSignals[i], &previous_[i], nullptr);
    }
    EchoOff(const EchoOff&) = delete;
    EchoOff& operator=(const EchoOff&) = delete;

private:
    std::array<struct sigaction, kEndingSignals.size()> previous_{};
    bool handlers_installed_ = false;
};

// One line of standard input without "\n" or "\r\n"; nullopt at end of input.
std::optional<std::string> read_line() {
    std::string line;
    if (!std::getline(std::cin, line)) return std::nullopt;
    if (line.ends_with('\r')) line.pop_back();
    return line;
}

// Echo goes off before the prompt appears, so nothing typed in answer to it is ever shown.
std::optional<std::string> prompt_without_echo(const char* prompt) {
    const EchoOff quiet;
    std::cerr << prompt << std::flush;
    auto line = read_line();
    std::cerr << "\n";  // the Enter the user typed was not echoed either
    return line;
}

std::optional<std::string> read_from_terminal(std::string& error) {
    auto first = prompt_without_echo("New password: ");
    if (!first) {
        error = "no password entered";
        return std::nullopt;
    }
    const auto again = prompt_without_echo("Again, to make sure: ");
    if (!again || *again != *first) {
        error = "the two passwords differ; nothing was changed";
        return std::nullopt;
    }
    return first;
}

}  // namespace

std::optional<std::string> read_new_password(std::string& error) {
    auto password = ::isatty(STDIN_FILENO) != 0 ? read_from_terminal(error) : read_line();
    if (!password && error.empty()) error = "no password on standard input (one line is read)";
    if (password && password->empty()) {
        error = "empty passwords are not accepted";
        return std::nullopt;
    }
    return password;
}

}  // namespace vmgate::cli
