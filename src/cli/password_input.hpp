// A new password for `vmgate users add|passwd`, always from standard input: a password in argv
// would be visible to every local user (ps, /proc/PID/cmdline) and kept in shell histories.
#pragma once

#include <optional>
#include <string>

namespace vmgate::cli {

// Standard input a terminal: prompts on stderr twice with echo off, and the two must match.
// Otherwise (a pipe, a file): the first line, without its line ending. An empty password is
// refused. nullopt with error in words when there is no usable password.
std::optional<std::string> read_new_password(std::string& error);

}  // namespace vmgate::cli
