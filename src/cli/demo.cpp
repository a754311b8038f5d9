#include "cli/demo.hpp"

#include "auth/random_text.hpp"
#include "auth/sasldb.hpp"
#include "cli/demo_pki.hpp"
#include "cli/demo_qemu.hpp"
#include "core/config.hpp"
#include "net/gateway.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace vmgate::cli {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;  // keeps demo.json in the documented key order

constexpr std::size_t password_length = 12;
constexpr std::string_view password_alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
constexpr int port_block_attempts = 50;
constexpr std::size_t ports_per_vm = 4;

struct DemoUser {
    std::string name;
    std::vector<std::string> vms;
    std::string password;
};

struct DemoVm {
    std::string name;
    std::uint16_t tls_port = 0;     // SASL or ticket, inside TLS
    std::uint16_t plain_port = 0;   // answers NEED_SECURED
    std::uint16_t ticket_port = 0;  // tickets only, inside TLS
    std::uint16_t vnc_port = 0;     // VeNCrypt: Plain or SASL password, or a ticket, inside TLS
    QemuSpec qemu;
};

struct DemoPaths {
    fs::path dir;
    fs::path pki_dir;
    fs::path sasldb;
    fs::path config;
    fs::path demo_json;
    fs::path audit_log;
    fs::path admin_socket;
    fs::path lock;
};

// What an earlier run left in demo.json and this run keeps: the passwords always, the ports
// while they are still free, so that the user's client commands keep working.
struct PreviousRun {
    std::map<std::string, std::string> passwords;
    std::map<std::string, std::array<std::uint16_t, ports_per_vm>> ports;
};

void progress(std::string_view text) { std::cerr << "vmgate demo: " << text << '\n'; }

std::string join(const std::vector<std::string>& items) {
    std::string text;
    for (const std::string& item : items) text += (text.empty() ? "" : ", ") + item;
    return text;
}

DemoPaths demo_paths(const fs::path& dir) {
    return {dir,
            dir / "pki",
            dir / "sasldb2",
            dir / "vmgate.toml",
            dir / "demo.json",
            dir / "audit.jsonl",
            dir / "admin.sock",
            dir / "demo.lock"};
}

std::vector<DemoUser> demo_users() {
    return {{"alice", {"vm1"}, {}},
            {"bob", {"vm2"}, {}},
            {"carol", {"vm1", "vm2"}, {}},
            {"mallory", {}, {}}};
}

std::vector<DemoVm> demo_vms(const fs::path& dir, const std::string& qemu_binary) {
    std::vector<DemoVm> vms;
    for (const std::string name : {"vm1", "vm2"}) {
        const QemuSpec qemu{qemu_binary, name, dir / (name + ".spice.sock"),
                            dir / (name + ".vnc.sock"), dir / (name + ".log"),
                            dir / (name + ".pid")};
        vms.push_back(DemoVm{name, 0, 0, 0, 0, qemu});
    }
    return vms;
}

std::vector<std::string> users_of(const std::string& vm, const std::vector<DemoUser>& users) {
    std::vector<std::string> names;
    for (const DemoUser& user : users)
        if (std::find(user.vms.begin(), user.vms.end(), vm) != user.vms.end())
            names.push_back(user.name);
    return names;
}

// --- state directory ---------------------------------------------------------------------------

// Two demos on one state directory would remove each other's sockets and fight over the ports.
class StateDirLock {
public:
    explicit StateDirLock(const fs::path& file) {
        fd_ = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd_ < 0)
            throw std::system_error(errno, std::generic_category(), "cannot open " + file.string());
        if (::flock(fd_, LOCK_EX | LOCK_NB) == 0) return;
        const int error = errno;
        ::close(fd_);
        if (error == EWOULDBLOCK)
            throw std::runtime_error("another vmgate demo is running with the state directory " +
                                     file.parent_path().string());
        throw std::system_error(error, std::generic_category(), "cannot lock " + file.string());
    }
    ~StateDirLock() { ::close(fd_); }
    StateDirLock(const StateDirLock&) = delete;
    StateDirLock& operator=(const StateDirLock&) = delete;

private:
    int fd_ = -1;
};

void check_socket_path(const fs::path& socket) {
    constexpr std::size_t limit = sizeof(sockaddr_un::sun_path) - 1;
    const std::size_t length = socket.string().size();
    if (length > limit)
        throw std::runtime_error(fmt::format(
            "{} is {} bytes long, but a unix socket path can have at most {}: choose a shorter "
            "--state-dir",
            socket.string(), length, limit));
}

// --- passwords ---------------------------------------------------------------------------------


PreviousRun read_previous_run(const fs::path& file) {
    PreviousRun previous;
    std::ifstream in(file);
    if (!in) return previous;  // the first run
    try {
        const Json state = Json::parse(in);
        for (const Json& user : state.at("users"))
            previous.passwords[user.at("name").get<std::string>()] =
                user.at("password").get<std::string>();
        for (const Json& vm : state.at("vms")) {
            // From a demo without VNC: its passwords stay, its ports give way to a new block.
            if (!vm.contains("vnc_port")) continue;
            previous.ports[vm.at("name").get<std::string>()] = {
                vm.at("spice_tls_port").get<std::uint16_t>(),
                vm.at("spice_port").get<std::uint16_t>(),
                vm.at("spice_ticket_port").get<std::uint16_t>(),
                vm.at("vnc_port").get<std::uint16_t>()};
        }
    } catch (const nlohmann::json::exception& e) {
        throw std::runtime_error(file.string() + ": " + e.what() +
                                 "; delete it to start over with new passwords");
    }
    return previous;
}

void assign_passwords(std::vector<DemoUser>& users, const PreviousRun& previous) {
    for (DemoUser& user : users) {
        const auto kept = previous.passwords.find(user.name);
        user.password = kept != previous.passwords.end() && !kept->second.empty()
                            ? kept->second
                            : auth::random_text(password_alphabet, password_length);
    }
}

// --- ports -------------------------------------------------------------------------------------

// Binds 127.0.0.1:PORT (0: a port the kernel picks) without SO_REUSEADDR, which is stricter
// than the gateway's own bind. Returns the bound port, or nullopt when PORT is taken.
std::optional<std::uint16_t> try_bind_loopback(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "socket");
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof address;
    const bool bound = ::bind(fd, reinterpret_cast<sockaddr*>(&address), size) == 0 &&
                       ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) == 0;
    ::close(fd);
    if (!bound) return std::nullopt;
    return ntohs(address.sin_port);
}

bool port_is_free(std::uint16_t port) { return port != 0 && try_bind_loopback(port).has_value(); }

// COUNT consecutive free ports: easy to read in the guide and to open in a firewall.
std::vector<std::uint16_t> free_port_block(std::size_t count) {
    for (int attempt = 0; attempt < port_block_attempts; ++attempt) {
        const std::optional<std::uint16_t> base = try_bind_loopback(0);
        if (!base || *base + count - 1 > UINT16_MAX) continue;
        std::vector<std::uint16_t> block(count);
        std::iota(block.begin(), block.end(), *base);
        if (std::all_of(block.begin(), block.end(), port_is_free)) return block;
    }
    throw std::runtime_error(
        fmt::format("no {} consecutive free ports found on 127.0.0.1", count));
}

std::vector<std::uint16_t> previous_ports(const std::vector<DemoVm>& vms,
                                          const PreviousRun& previous) {
    std::vector<std::uint16_t> ports;
    for (const DemoVm& vm : vms) {
        const auto kept = previous.ports.find(vm.name);
        if (kept == previous.ports.end()) return {};
        ports.insert(ports.end(), kept->second.begin(), kept->second.end());
    }
    return ports;
}

void assign_ports(std::vector<DemoVm>& vms, const PreviousRun& previous) {
    std::vector<std::uint16_t> ports = previous_ports(vms, previous);
    const auto taken = std::find_if_not(ports.begin(), ports.end(), port_is_free);
    if (taken != ports.end()) {
        progress(fmt::format("port 127.0.0.1:{} of the previous run is in use: picking new ports",
                             *taken));
        ports.clear();
    }
    if (ports.empty()) ports = free_port_block(vms.size() * ports_per_vm);
    for (std::size_t i = 0; i < vms.size(); ++i) {
        vms[i].tls_port = ports[i * ports_per_vm];
        vms[i].plain_port = ports[i * ports_per_vm + 1];
        vms[i].ticket_port = ports[i * ports_per_vm + 2];
        vms[i].vnc_port = ports[i * ports_per_vm + 3];
    }
}

// --- vmgate.toml -------------------------------------------------------------------------------

// A TOML basic string. JSON's escapes are a subset of TOML's, so nlohmann does the escaping.
std::string toml_string(const std::string& text) { return nlohmann::json(text).dump(); }

std::string toml_strings(const std::vector<std::string>& texts) {
    std::string list;
    for (const std::string& text : texts) list += (list.empty() ? "" : ", ") + toml_string(text);
    return "[" + list + "]";
}

std::string global_sections(const DemoPaths& paths, const DemoPkiFiles& pki) {
    return fmt::format(
        R"(# vmgate demo configuration, written by `vmgate demo` on every run: copy it elsewhere
# before editing. Ports are per VM (SPICE: TLS, TLS with tickets only, plain; VNC over TLS);
# each [[vm]] names its QEMU display sockets and who may use it. A VM without an allow rule is
# reachable by nobody.

[gateway]
state_dir    = {}
audit_log    = {}   # a JSON line per accept, authentication, decision, close
admin_socket = {}   # `vmgate ticket` talks to the gateway here

[tls]
cert = {}   # CN=localhost, SAN DNS:localhost + IP:127.0.0.1, signed by the demo CA
key  = {}   # mode 0600: the gateway refuses a key that other users can read

[sasl]
mech_list      = ["SCRAM-SHA-256", "PLAIN"]   # only ever offered inside TLS
sasldb         = {}   # the demo users: sasldblistusers2 -f FILE
pwcheck_method = "auxprop"   # passwords are checked against sasldb
)",
        toml_string(paths.dir), toml_string(paths.audit_log), toml_string(paths.admin_socket),
        toml_string(pki.server_cert), toml_string(pki.server_key), toml_string(paths.sasldb));
}

std::string listener(std::string_view protocol, const DemoVm& vm, std::uint16_t port, bool tls,
                     std::string_view auth, std::string_view comment) {
    return fmt::format(R"(
[[listener]]   # {}
protocol = "{}"
address  = "127.0.0.1:{}"
tls      = {}
vm       = {}
{})",
                       comment, protocol, port, tls ? "true" : "false", toml_string(vm.name),
                       auth.empty() ? "" : fmt::format("auth     = {}\n", auth));
}

std::string vm_sections(const DemoVm& vm, const std::vector<DemoUser>& users) {
    return fmt::format(
        "\n# --- {} ---\n", vm.name) +
           listener("spice", vm, vm.tls_port, true, R"(["sasl", "ticket"])",
                    "TLS: user name + password (SASL), or a one-time ticket") +
           listener("spice", vm, vm.ticket_port, true, R"(["ticket"])",
                    "TLS, tickets only: spice-gtk always picks SASL when it is offered") +
           listener("spice", vm, vm.plain_port, false, "",
                    "plain: answers NEED_SECURED, the client moves to tls-port; never carries "
                    "data") +
           listener("vnc", vm, vm.vnc_port, true, "",
                    "VeNCrypt TLS, default auth: user name + password (Plain or SASL), or a "
                    "ticket") +
           fmt::format(R"(
[[vm]]
name  = {}
# QEMU asks no password on these sockets: they stay in the 0700 state directory
spice = {}
vnc   = {}
seat  = "takeover"   # a newcomer takes the console over, as with QEMU alone
  [[vm.allow]]
  users = {}
)",
                       toml_string(vm.name), toml_string("unix:" + vm.qemu.spice_socket.string()),
                       toml_string("unix:" + vm.qemu.vnc_socket.string()),
                       toml_strings(users_of(vm.name, users)));
}

core::Config load_generated_config(const fs::path& file) {
    core::ConfigResult result = core::load_config_file(file.string());
    if (result.config) return std::move(*result.config);
    for (const core::ConfigError& error : result.errors)
        std::cerr << "  " << error.to_string() << '\n';
    throw std::runtime_error(fmt::format("{}: {} error(s) in the generated configuration",
                                         file.string(), result.errors.size()));
}

core::Config write_config(const DemoPaths& paths, const DemoPkiFiles& pki,
                          const std::vector<DemoUser>& users, const std::vector<DemoVm>& vms) {
    std::string text = global_sections(paths, pki);
    for (const DemoVm& vm : vms) text += vm_sections(vm, users);
    write_file_atomically(paths.config, text, 0600);
    core::Config config = load_generated_config(paths.config);
    progress("config " + paths.config.string());
    return config;
}

// --- users, QEMUs ------------------------------------------------------------------------------

// Takes the [sasl] section the gateway will use: Cyrus is initialised once per process, and
// the gateway's SASL context must find it initialised with exactly these options.
void create_sasl_users(const core::SaslConfig& sasl, const std::vector<DemoUser>& users) {
    std::vector<std::string> names;
    for (const DemoUser& user : users) {
        std::string error;
        if (!auth::set_password(sasl, user.name, "", user.password, error))
            throw std::runtime_error(fmt::format("{}: cannot set the password of {}: {}",
                                                 sasl.sasldb, user.name, error));
        names.push_back(user.name);
    }
    progress(fmt::format("sasldb {}: {}", sasl.sasldb, join(names)));
}

std::vector<std::unique_ptr<QemuProcess>> start_qemus(const std::vector<DemoVm>& vms) {
    std::vector<std::unique_ptr<QemuProcess>> qemus;
    for (const DemoVm& vm : vms) {
        if (const std::optional<pid_t> leftover = stop_leftover_qemu(vm.qemu))
            progress(fmt::format("{}: stopped QEMU pid {}, left running by an earlier demo",
                                 vm.name, *leftover));
        qemus.push_back(std::make_unique<QemuProcess>(vm.qemu));
    }
    // Both boot at the same time; the waits overlap.
    for (const auto& qemu : qemus) {
        qemu->wait_until_ready();
        progress(fmt::format("{}: QEMU pid {}, SPICE on {}, VNC on {} (log {})",
                             qemu->spec().name, qemu->pid(), qemu->spec().spice_socket.string(),
                             qemu->spec().vnc_socket.string(), qemu->spec().log_file.string()));
    }
    return qemus;
}

void stop_qemus(const std::vector<std::unique_ptr<QemuProcess>>& qemus) {
    for (const auto& qemu : qemus) {
        const pid_t pid = qemu->pid();
        qemu->stop();
        progress(fmt::format("{}: QEMU pid {} stopped", qemu->spec().name, pid));
    }
}

// --- demo.json and the guide -------------------------------------------------------------------

void write_demo_json(const DemoPaths& paths, const DemoPkiFiles& pki,
                     const std::vector<DemoUser>& users, const std::vector<DemoVm>& vms) {
    Json state;
    state["host"] = std::string(demo_server_host);
    state["ca_file"] = pki.ca_cert.string();
    state["vms"] = Json::array();
    for (const DemoVm& vm : vms)
        state["vms"].push_back({{"name", vm.name},
                                {"spice_tls_port", vm.tls_port},
                                {"spice_port", vm.plain_port},
                                {"spice_ticket_port", vm.ticket_port},
                                {"vnc_port", vm.vnc_port}});
    state["users"] = Json::array();
    for (const DemoUser& user : users)
        state["users"].push_back(
            {{"name", user.name}, {"password", user.password}, {"vms", user.vms}});
    // 0600: it holds the passwords.
    write_file_atomically(paths.demo_json, state.dump(2) + "\n", 0600);
}

// Single quotes, so that the printed commands can be pasted whatever the paths contain.
std::string shell_quote(const std::string& text) {
    const bool plain = std::all_of(text.begin(), text.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) ||
               std::string_view("/._-+=:,@%").find(c) != std::string_view::npos;
    });
    if (plain && !text.empty()) return text;
    std::string quoted = "'";
    for (const char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return quoted + "'";
}

// The binary the user ran: `make demo` runs build/vmgate, which is not on PATH.
std::string own_command() {
    std::error_code error;
    const fs::path self = fs::read_symlink("/proc/self/exe", error);
    return error ? "vmgate" : shell_quote(self.string());
}

void print_vm_guide(std::ostream& out, const DemoVm& vm, const std::vector<DemoUser>& users,
                    const DemoPaths& paths, const std::string& ca) {
    const std::vector<std::string> allowed = users_of(vm.name, users);
    const std::string& user = allowed.front();
    // VNC by address: the listener is on 127.0.0.1 alone, and the certificate names it too.
    out << fmt::format(
        "{} (allowed: {})\n"
        "  SPICE, user name + password (remote-viewer asks for the password):\n"
        "    remote-viewer --spice-ca-file={} 'spice://{}@{}?port={}&tls-port={}'\n"
        "  SPICE, one-time ticket (paste it when remote-viewer asks for the password):\n"
        "    {} ticket --config {} --user {} --vm {}\n"
        "    remote-viewer --spice-ca-file={} 'spice://{}?tls-port={}'\n"
        "  VNC, user name + password (remote-viewer picks SASL and asks for both):\n"
        "    remote-viewer vnc://{}:{}\n"
        "  VNC with TigerVNC (VeNCrypt Plain; it asks for both too):\n"
        "    vncviewer -SecurityTypes X509Plain -X509CA {} {}::{}\n\n",
        vm.name, join(allowed), ca, user, demo_server_host, vm.plain_port, vm.tls_port, own_command(),
        shell_quote(paths.config.string()), user, vm.name, ca, demo_server_host,
        vm.ticket_port, demo_server_ip, vm.vnc_port, ca, demo_server_ip, vm.vnc_port);
}

void print_guide(std::ostream& out, const DemoPaths& paths, const DemoPkiFiles& pki,
                 const std::vector<DemoUser>& users, const std::vector<DemoVm>& vms) {
    const std::string ca = shell_quote(pki.ca_cert.string());
    out << "\nvmgate demo is running: two VMs behind the gateway, on 127.0.0.1 only.\n\n";
    // gtk-vnc has no option for a CA file: it reads this one fixed name, under /etc/pki first.
    out << fmt::format(
        "For VNC, remote-viewer (gtk-vnc) trusts only /etc/pki/CA/cacert.pem or, when that file\n"
        "does not exist, ~/.pki/CA/cacert.pem. Put the demo CA there first (this replaces a\n"
        "cacert.pem already in ~/.pki/CA):\n"
        "    mkdir -p ~/.pki/CA && cp {} ~/.pki/CA/cacert.pem\n\n",
        ca);
    for (const DemoVm& vm : vms) print_vm_guide(out, vm, users, paths, ca);
    out << fmt::format("{:<10}{:<16}{}\n", "user", "password", "VMs");
    for (const DemoUser& user : users) {
        std::string vm_list = join(user.vms);
        if (vm_list.empty()) vm_list = "none: signs in, then is refused (see the audit log)";
        out << fmt::format("{:<10}{:<16}{}\n", user.name, user.password, vm_list);
    }
    out << fmt::format(
        "\nAudit log: {}   (tail -f it to watch every decision)\n"
        "Config:    {}\nState:     {}/demo.json\n\nPress Ctrl-C to stop.\n",
        paths.audit_log.string(), paths.config.string(), paths.dir.string());
    out.flush();
}

void report_pki(const DemoPki& pki) {
    progress(fmt::format("CA {} ({})", pki.files.ca_cert.string(),
                         pki.ca_created ? "new: clients must trust this file" : "reused"));
    progress(fmt::format("server certificate {} ({})", pki.files.server_cert.string(),
                         pki.server_created ? "new" : "reused"));
}

// --- the run -----------------------------------------------------------------------------------

// Declaration order is teardown order in reverse: whatever step fails, the gateway stops
// before the QEMUs, the QEMUs before the lock is released.
int run(const DemoOptions& options) {
    const DemoPaths paths = demo_paths(fs::absolute(options.state_dir).lexically_normal());
    create_private_dir(paths.dir);
    const StateDirLock lock(paths.lock);
    progress("state directory " + paths.dir.string());

    std::vector<DemoVm> vms = demo_vms(paths.dir, options.qemu_binary);
    check_socket_path(paths.admin_socket);
    for (const DemoVm& vm : vms) {
        check_socket_path(vm.qemu.spice_socket);
        check_socket_path(vm.qemu.vnc_socket);
    }

    const DemoPki pki = ensure_demo_pki(paths.pki_dir);
    report_pki(pki);

    const PreviousRun previous = read_previous_run(paths.demo_json);
    std::vector<DemoUser> users = demo_users();
    assign_passwords(users, previous);
    assign_ports(vms, previous);

    const core::Config config = write_config(paths, pki.files, users, vms);
    create_sasl_users(config.sasl, users);
    const std::vector<std::unique_ptr<QemuProcess>> qemus = start_qemus(vms);

    net::Gateway gateway(config);
    gateway.start();
    progress("gateway started");

    write_demo_json(paths, pki.files, users, vms);
    print_guide(std::cout, paths, pki.files, users, vms);

    const int status = gateway.run_until_signal();
    progress("gateway stopped");
    stop_qemus(qemus);
    return status;
}

}  // namespace

int run_demo(const DemoOptions& options) {
    try {
        return run(options);
    } catch (const std::exception& e) {
        std::cerr << "vmgate demo: error: " << e.what() << '\n';
        return 1;
    }
}

}  // namespace vmgate::cli
