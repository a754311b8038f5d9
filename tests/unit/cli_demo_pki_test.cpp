// The demo's PKI (real OpenSSL, temporary directories) and its QEMU process wrapper (real QEMU,
// which `make test` installs).
#include "cli/demo_pki.hpp"
#include "cli/demo_qemu.hpp"

#include <gtest/gtest.h>

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

namespace vmgate::cli {
namespace {

namespace fs = std::filesystem;

struct TempDir {
    fs::path path;
    TempDir() {
        std::string pattern = (fs::temp_directory_path() / "vmgate-demo-test-XXXXXX").string();
        path = ::mkdtemp(pattern.data());
    }
    ~TempDir() { fs::remove_all(path); }
};

struct X509Free {
    void operator()(X509* p) const { X509_free(p); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;

X509Ptr read_cert(const fs::path& file) {
    std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(file.c_str(), "r"), &std::fclose);
    if (!f) return X509Ptr(nullptr);
    return X509Ptr(PEM_read_X509(f.get(), nullptr, nullptr, nullptr));
}

std::string read_text(const fs::path& file) {
    std::ifstream in(file);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

mode_t mode_of(const fs::path& file) {
    struct stat st {};
    EXPECT_EQ(::stat(file.c_str(), &st), 0) << file;
    return st.st_mode & 07777;
}

// X509_verify_cert with the CA as the only trust anchor, as a client given --spice-ca-file.
int verify_error(X509* server, X509* ca) {
    X509_STORE* store = X509_STORE_new();
    X509_STORE_CTX* context = X509_STORE_CTX_new();
    X509_STORE_add_cert(store, ca);
    X509_STORE_CTX_init(context, store, server, nullptr);
    X509_STORE_CTX_set_purpose(context, X509_PURPOSE_SSL_SERVER);
    const int ok = X509_verify_cert(context);
    const int error = ok == 1 ? X509_V_OK : X509_STORE_CTX_get_error(context);
    X509_STORE_CTX_free(context);
    X509_STORE_free(store);
    return error;
}

TEST(DemoPki, ServerCertificateVerifiesAgainstTheCa) {
    TempDir dir;
    const DemoPki pki = ensure_demo_pki(dir.path / "pki");
    EXPECT_TRUE(pki.ca_created);
    EXPECT_TRUE(pki.server_created);

    X509Ptr ca = read_cert(pki.files.ca_cert);
    X509Ptr server = read_cert(pki.files.server_cert);
    ASSERT_TRUE(ca);
    ASSERT_TRUE(server);
    EXPECT_EQ(verify_error(server.get(), ca.get()), X509_V_OK);
    EXPECT_NE(X509_check_ca(ca.get()), 0);
    EXPECT_EQ(X509_check_ca(server.get()), 0);

    char common_name[64] = {};
    X509_NAME_get_text_by_NID(X509_get_subject_name(ca.get()), NID_commonName, common_name,
                              sizeof common_name);
    EXPECT_STREQ(common_name, "vmgate demo CA");
    X509_NAME_get_text_by_NID(X509_get_subject_name(server.get()), NID_commonName, common_name,
                              sizeof common_name);
    EXPECT_STREQ(common_name, "localhost");
}

TEST(DemoPki, ServerCertificateNamesLocalhostAndLoopbackInItsSan) {
    TempDir dir;
    const DemoPki pki = ensure_demo_pki(dir.path / "pki");
    X509Ptr server = read_cert(pki.files.server_cert);
    ASSERT_TRUE(server);
    // X509_CHECK_FLAG_NEVER_CHECK_SUBJECT: only the SAN counts, as in browsers and spice-gtk.
    EXPECT_EQ(X509_check_host(server.get(), "localhost", 0, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT,
                              nullptr),
              1);
    EXPECT_EQ(X509_check_ip_asc(server.get(), "127.0.0.1", 0), 1);
    EXPECT_EQ(X509_check_host(server.get(), "example.com", 0, 0, nullptr), 0);
}

TEST(DemoPki, KeysAndDirectoryArePrivate) {
    TempDir dir;
    const DemoPki pki = ensure_demo_pki(dir.path / "pki");
    EXPECT_EQ(mode_of(dir.path / "pki"), 0700u);
    EXPECT_EQ(mode_of(pki.files.server_key), 0600u);
    EXPECT_EQ(mode_of(pki.files.ca_key), 0600u);
    EXPECT_EQ(mode_of(pki.files.ca_cert), 0644u);
}

TEST(DemoPki, SecondRunReusesTheFiles) {
    TempDir dir;
    const DemoPki first = ensure_demo_pki(dir.path / "pki");
    const std::string ca = read_text(first.files.ca_cert);
    const std::string key = read_text(first.files.server_key);

    const DemoPki second = ensure_demo_pki(dir.path / "pki");
    EXPECT_FALSE(second.ca_created);
    EXPECT_FALSE(second.server_created);
    EXPECT_EQ(read_text(second.files.ca_cert), ca);
    EXPECT_EQ(read_text(second.files.server_key), key);
}

TEST(DemoPki, DamagedServerCertificateIsReissuedUnderTheSameCa) {
    TempDir dir;
    const DemoPki first = ensure_demo_pki(dir.path / "pki");
    const std::string ca = read_text(first.files.ca_cert);
    std::ofstream(first.files.server_cert) << "not a certificate\n";

    const DemoPki second = ensure_demo_pki(dir.path / "pki");
    EXPECT_FALSE(second.ca_created);
    EXPECT_TRUE(second.server_created);
    EXPECT_EQ(read_text(second.files.ca_cert), ca);
    X509Ptr server = read_cert(second.files.server_cert);
    ASSERT_TRUE(server);
    EXPECT_EQ(verify_error(server.get(), read_cert(second.files.ca_cert).get()), X509_V_OK);
}

TEST(DemoPki, NewCaReplacesAMissingCaKeyAndReissuesTheServer) {
    TempDir dir;
    const DemoPki first = ensure_demo_pki(dir.path / "pki");
    fs::remove(first.files.ca_key);

    const DemoPki second = ensure_demo_pki(dir.path / "pki");
    EXPECT_TRUE(second.ca_created);
    EXPECT_TRUE(second.server_created);
    X509Ptr server = read_cert(second.files.server_cert);
    EXPECT_EQ(verify_error(server.get(), read_cert(second.files.ca_cert).get()), X509_V_OK);
}

TEST(DemoPki, LooseKeyModeIsTightenedOnReuse) {
    TempDir dir;
    const DemoPki first = ensure_demo_pki(dir.path / "pki");
    fs::permissions(first.files.server_key, fs::perms(0644), fs::perm_options::replace);
    const DemoPki second = ensure_demo_pki(dir.path / "pki");
    EXPECT_FALSE(second.server_created);
    EXPECT_EQ(mode_of(second.files.server_key), 0600u);
}

TEST(DemoFiles, AtomicWriteSetsTheExactModeDespiteTheUmask) {
    TempDir dir;
    const mode_t old_umask = ::umask(077);
    write_file_atomically(dir.path / "a.txt", "hello\n", 0644);
    ::umask(old_umask);
    EXPECT_EQ(read_text(dir.path / "a.txt"), "hello\n");
    EXPECT_EQ(mode_of(dir.path / "a.txt"), 0644u);
    EXPECT_FALSE(fs::exists(dir.path / "a.txt.tmp"));
}

// --- QemuProcess -----------------------------------------------------------------------------

QemuSpec spec_for(const fs::path& dir, const std::string& name) {
    return QemuSpec{"qemu-system-x86_64", name, dir / (name + ".spice.sock"),
                    dir / (name + ".vnc.sock"), dir / (name + ".log"), dir / (name + ".pid")};
}

// Running, that is: a zombie waiting for its parent (or an orphan waiting for PID 1) has ended.
bool process_exists(pid_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(stat, line)) return false;
    const auto state_at = line.rfind(')') + 2;  // "pid (comm) S ..."
    return state_at < line.size() && line[state_at] != 'Z';
}

TEST(QemuProcess, MissingBinaryNamesTheDebianPackage) {
    TempDir dir;
    QemuSpec spec = spec_for(dir.path, "vm1");
    spec.binary = "qemu-system-x86_64-that-does-not-exist";
    try {
        QemuProcess qemu(spec);
        FAIL() << "expected an error";
    } catch (const std::runtime_error& e) {
        EXPECT_EQ(std::string(e.what()),
                  "qemu-system-x86_64-that-does-not-exist not found: install the Debian package "
                  "qemu-system-x86");
    }
}

TEST(QemuProcess, TwoQemusStartWithSocketsAndStopByPid) {
    TempDir dir;
    pid_t pids[2] = {};
    {
        QemuProcess vm1(spec_for(dir.path, "vm1"));
        QemuProcess vm2(spec_for(dir.path, "vm2"));
        vm1.wait_until_ready();
        vm2.wait_until_ready();
        pids[0] = vm1.pid();
        pids[1] = vm2.pid();
        for (const char* socket :
             {"vm1.spice.sock", "vm1.vnc.sock", "vm2.spice.sock", "vm2.vnc.sock"})
            EXPECT_TRUE(fs::is_socket(dir.path / socket)) << socket;
        EXPECT_TRUE(process_exists(pids[0]));
        EXPECT_TRUE(process_exists(pids[1]));
        vm1.stop();
        EXPECT_FALSE(process_exists(pids[0]));
        EXPECT_EQ(vm1.pid(), -1);
    }  // vm2: the destructor stops it
    EXPECT_FALSE(process_exists(pids[1]));
    for (const char* file :
         {"vm1.spice.sock", "vm1.vnc.sock", "vm2.spice.sock", "vm2.vnc.sock", "vm2.pid"})
        EXPECT_FALSE(fs::exists(dir.path / file)) << file;
}

// The gateway's upstream VNC handshake takes security None or VNC authentication only, so the
// demo's QEMU must offer exactly None (RFB 3.8: the version, then a list of one type, 1). The
// comma in the directory checks the option escaping.
TEST(QemuProcess, VncSocketOffersSecurityNone) {
    TempDir dir;
    const fs::path with_comma = dir.path / "a,b";
    fs::create_directory(with_comma);
    QemuProcess qemu(spec_for(with_comma, "vm1"));
    qemu.wait_until_ready();

    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    struct CloseOnExit {
        int fd;
        ~CloseOnExit() { ::close(fd); }
    } guard{fd};
    const timeval timeout{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    const std::string path = (with_comma / "vm1.vnc.sock").string();
    ASSERT_LT(path.size(), sizeof address.sun_path);
    path.copy(address.sun_path, path.size());
    ASSERT_EQ(::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address), 0)
        << std::strerror(errno);

    const auto read_exactly = [fd](std::size_t size) {
        std::string bytes(size, '\0');
        std::size_t got = 0;
        while (got < size) {
            const ssize_t n = ::read(fd, bytes.data() + got, size - got);
            if (n <= 0) break;
            got += static_cast<std::size_t>(n);
        }
        bytes.resize(got);
        return bytes;
    };
    EXPECT_EQ(read_exactly(12), "RFB 003.008\n");
    const std::string version = "RFB 003.008\n";
    ASSERT_EQ(::write(fd, version.data(), version.size()), static_cast<ssize_t>(version.size()));
    EXPECT_EQ(read_exactly(2), std::string("\x01\x01", 2));
}

TEST(QemuProcess, BadArgumentsReportQemusOwnMessage) {
    TempDir dir;
    // A socket in a missing directory: QEMU exits at once with its reason in the log.
    QemuSpec spec = spec_for(dir.path, "vm1");
    spec.spice_socket = dir.path / "missing" / "vm1.sock";
    QemuProcess qemu(spec);
    try {
        qemu.wait_until_ready();
        FAIL() << "expected an error";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("exited"), std::string::npos) << e.what();
    }
    EXPECT_EQ(qemu.pid(), -1);
}

TEST(QemuProcess, LeftoverQemuFromAnEarlierRunIsStopped) {
    TempDir dir;
    const QemuSpec spec = spec_for(dir.path, "vm1");
    // A QEMU that is not our child, with the pid file a killed vmgate would have left behind:
    // -daemonize returns once the socket exists and writes the same pid file format.
    std::string command;
    for (const std::string& arg : qemu_argv(spec)) command += " '" + arg + "'";
    command += " -daemonize -pidfile '" + spec.pid_file.string() + "'";
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
    const pid_t pid = std::stoi(read_text(spec.pid_file));
    // Not our child: if an assertion below fails, nothing else would ever stop it.
    struct KillOnExit {
        pid_t pid;
        ~KillOnExit() {
            if (process_exists(pid)) ::kill(pid, SIGKILL);
        }
    } guard{pid};
    ASSERT_TRUE(process_exists(pid));

    const std::optional<pid_t> stopped = stop_leftover_qemu(spec);
    ASSERT_TRUE(stopped.has_value());
    EXPECT_EQ(*stopped, pid);
    EXPECT_FALSE(process_exists(pid));
    EXPECT_FALSE(fs::exists(spec.spice_socket));
    EXPECT_FALSE(fs::exists(spec.vnc_socket));
    EXPECT_FALSE(stop_leftover_qemu(spec).has_value());
}

}  // namespace
}  // namespace vmgate::cli
