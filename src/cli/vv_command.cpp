#include "cli/vv_command.hpp"

#include "cli/server_certificate.hpp"
#include "cli/vv_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>

namespace vmgate::cli {

namespace {

constexpr int kUsageError = 2;
// Owner only: the file may carry a ticket, and always says where the console is.
constexpr mode_t kOutputMode = 0600;

int failed(const std::string& error) {
    std::cerr << "vmgate: " << error << "\n";
    return 1;
}

bool write_all(int fd, const std::string& text) {
    std::size_t done = 0;
    while (done < text.size()) {
        const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        done += static_cast<std::size_t>(n);
    }
    return true;
}

// fchmod as well as the open mode: an existing file keeps its old mode through O_CREAT.
int write_file(const std::string& path, const std::string& text) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, kOutputMode);
    if (fd < 0) return failed("--out " + path + ": " + std::strerror(errno));
    const bool ok = ::fchmod(fd, kOutputMode) == 0 && write_all(fd, text);
    const int saved = errno;
    if (::close(fd) != 0 || !ok) return failed("--out " + path + ": " + std::strerror(ok ? errno : saved));
    return 0;
}

// The listener clients of args.vm use, or nullptr with error saying why there is none.
const core::ListenerConfig* listener_for(const core::Config& config, const std::string& config_path,
                                         const VvArgs& args, std::string& error) {
    const core::VmConfig* vm = config.find_vm(args.vm);
    if (vm == nullptr) error = "no VM named \"" + args.vm + "\" in " + config_path;
    else if (!vm->spice) error = "VM " + args.vm + " has no SPICE console (spice = ...) in " + config_path;
    else if (args.proxy && !usable_as_connect_host(args.vm))
        error = "--proxy: the VM name \"" + args.vm + "\" cannot be sent as a CONNECT host (letters, digits, '-', "
                "'.' and '_' only)";
    else return choose_listener(config, args.vm, args.ticket, args.proxy, error);
    return nullptr;
}

// Everything the file says that the configuration decides; nullopt after printing why not.
std::optional<VvFile> file_from_config(const std::string& config_path, const VvArgs& args) {
    const auto loaded = core::load_config_file(config_path);
    if (!loaded.config) {
        print_config_errors(loaded.errors, config_path);
        return std::nullopt;
    }
    std::string error;
    const core::ListenerConfig* listener = listener_for(*loaded.config, config_path, args, error);
    const auto cert = listener ? read_server_certificate(loaded.config->tls.cert, args.ca, error) : std::nullopt;
    const auto host = cert ? client_host(*listener, args.vm, args.host, cert->dns_name, error) : std::nullopt;
    if (!host) {
        failed(error);
        return std::nullopt;
    }
    VvFile file{*host, listener->port, cert->ca_pem, cert->host_subject, args.vm, args.user, "", ""};
    // Through the proxy the host is only the CONNECT host naming the VM: no DNS, and the
    // certificate is checked against host-subject, not against this name.
    if (listener->route == core::Route::connect) {
        file.proxy = proxy_url(*host, listener->port);
        file.host = args.vm;
    }
    return file;
}

}  // namespace

int run_vv(const AdminTarget& target, const VvArgs& args) {
    const auto ttl = core::parse_duration(args.ttl);
    if (!ttl) {
        std::cerr << "--ttl: expected a duration such as 60s, 5m or 1h, got \"" << args.ttl << "\"\n";
        return kUsageError;
    }
    auto file = file_from_config(target.config_path, args);
    if (!file) return 1;
    // Asked last: a ticket is only issued once everything else about the file is settled.
    if (args.ticket) {
        const auto ticket = request_ticket(target, TicketArgs{args.user, args.vm, args.ttl, "spice"}, *ttl);
        if (!ticket) return 1;
        file->password = *ticket;
    }
    const std::string text = render_vv(*file);
    if (!args.out.empty()) return write_file(args.out, text);
    std::cout << text;
    return 0;
}

}  // namespace vmgate::cli
