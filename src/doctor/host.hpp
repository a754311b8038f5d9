// The thin layer of `vmgate doctor` that reads the host (files, their owners and modes, /proc,
// libvirt) and hands the facts to the pure checks. Every host path can come from a fixture tree.
#pragma once

#include "core/config.hpp"
#include "doctor/file_checks.hpp"
#include "doctor/finding.hpp"

#include <chrono>
#include <optional>
#include <string>

namespace vmgate::doctor {

struct HostOptions {
    std::string root;         // "" = this host; else every absolute host path is read under it
    Account account;          // the user vmgate runs as
    std::string libvirt_uri;  // "" = no libvirt connection; else read domains from it (read-only)
    std::chrono::system_clock::time_point now = std::chrono::system_clock::now();
};

// ROOT + path for an absolute path, the path itself otherwise.
std::string host_path(const std::string& root, const std::string& path);

// The account called `name`; "" = the `vmgate` user if there is one, else the current user.
// nullopt with `error` set when there is no such user.
std::optional<Account> find_account(const std::string& name, std::string& error);

// Every check, on this host (or the tree under options.root), for this configuration.
Report examine_host(const core::Config& config, const HostOptions& options);

}  // namespace vmgate::doctor
