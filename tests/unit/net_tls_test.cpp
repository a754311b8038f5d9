// The gateway refuses a TLS key that every user on the host can read.
#include "net/tls.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

namespace vmgate::net {
namespace {

// A key file with the given mode in a directory removed when the test ends.
class TempKey {
public:
    explicit TempKey(mode_t mode) {
        char pattern[] = "/tmp/vmgate-tls-test.XXXXXX";
        dir_ = ::mkdtemp(pattern);
        path_ = dir_ / "key.pem";
        std::ofstream(path_) << "not a key\n";
        ::chmod(path_.c_str(), mode);
    }
    ~TempKey() { std::filesystem::remove_all(dir_); }
    std::string path() const { return path_.string(); }

private:
    std::filesystem::path dir_;
    std::filesystem::path path_;
};

TEST(TlsKeyPermissions, OwnerOnlyAndGroupReadableKeysAreAccepted) {
    EXPECT_EQ(private_key_permission_problem(TempKey(0600).path()), "");
    EXPECT_EQ(private_key_permission_problem(TempKey(0640).path()), "");  // a service group
}

TEST(TlsKeyPermissions, WorldReadableKeyIsRefusedWithTheFix) {
    const TempKey key(0644);
    const std::string path = key.path();
    const std::string problem = private_key_permission_problem(path);
    EXPECT_NE(problem.find("readable by every user (mode 644)"), std::string::npos) << problem;
    EXPECT_NE(problem.find("chmod o-rwx " + path), std::string::npos) << problem;
}

TEST(TlsKeyPermissions, MissingKeyIsNamed) {
    EXPECT_NE(private_key_permission_problem("/nonexistent/key.pem").find("/nonexistent/key.pem"), std::string::npos);
}

TEST(TlsKeyPermissions, ServerContextRefusesToStartWithAWorldReadableKey) {
    core::TlsConfig config;
    config.cert = "/nonexistent/cert.pem";
    const TempKey key(0644);
    config.key = key.path();
    try {
        TlsServerContext context(config);
        FAIL() << "a world-readable key was accepted";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("refusing to use the TLS key"), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace vmgate::net
