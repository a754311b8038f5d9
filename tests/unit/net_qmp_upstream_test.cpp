// QmpUpstreams against a stand-in for QEMU's QMP monitor on a real unix socket: descriptors
// passed with SCM_RIGHTS on getfd, add_client, QEMU's refusals in words, one request at a time
// per QEMU, deadlines for a QEMU that hangs, and a new connection after QEMU went away.
#include "net/qmp_upstream.hpp"

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/use_future.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace vmgate::net {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

constexpr auto short_timeout = 300ms;

// What the stand-in does with the requests it gets.
enum class Behaviour {
    normal,             // answers like QEMU, with an event before each reply
    refuse_add_client,  // add_client fails as QEMU without SPICE does
    hang_on_getfd,      // takes the descriptor and never answers
    no_greeting,        // accepts and stays silent, as a monitor busy with another client
    garbage,            // answers qmp_capabilities with something that is not JSON
    no_vnc,             // has no VNC display (no -vnc option)
};

// One client at a time, as a -qmp socket serves. A descriptor received with SCM_RIGHTS waits
// for the next getfd, replacing any earlier one, as QEMU keeps it.
class FakeQmp {
public:
    explicit FakeQmp(std::string path) : path_(std::move(path)) {}
    ~FakeQmp() { stop(); }

    void start(Behaviour behaviour) {
        behaviour_ = behaviour;
        listener_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        std::strncpy(address.sun_path, path_.c_str(), sizeof(address.sun_path) - 1);
        ::unlink(path_.c_str());
        ASSERT_EQ(::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0) << std::strerror(errno);
        ASSERT_EQ(::listen(listener_, 8), 0);
        thread_ = std::thread([this] { serve(); });
    }

    // QEMU exiting: the connection and the listening socket close and the path goes.
    void stop() {
        if (!thread_.joinable()) return;
        ::shutdown(listener_, SHUT_RDWR);
        drop_connection();
        thread_.join();
        ::close(listener_);
        ::unlink(path_.c_str());
    }

    // QEMU closing the monitor connection (e.g. reset by an admin), still listening.
    void drop_connection() {
        std::lock_guard lock(mutex_);
        if (connection_ >= 0) ::shutdown(connection_, SHUT_RDWR);
    }

    void set_behaviour(Behaviour b) { behaviour_ = b; }
    int connections() const { return connections_; }
    std::vector<nlohmann::json> commands() {
        std::lock_guard lock(mutex_);
        return commands_;
    }

private:
    void serve() {
        for (;;) {
            const int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
            if (fd < 0) return;
            {
                std::lock_guard lock(mutex_);
                connection_ = fd;
            }
            ++connections_;
            converse(fd);
            {
                std::lock_guard lock(mutex_);
                connection_ = -1;
            }
            ::close(fd);
        }
    }

    void converse(int fd) {
        if (behaviour_ != Behaviour::no_greeting)
            say(fd, R"({"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""}, "capabilities": ["oob"]}})");
        std::string input;
        int received_fd = -1;
        std::map<std::string, int> named_fds;
        for (;;) {
            std::array<char, 512> buffer;
            alignas(cmsghdr) std::array<unsigned char, CMSG_SPACE(sizeof(int) * 4)> control{};
            iovec data{buffer.data(), buffer.size()};
            msghdr message{};
            message.msg_iov = &data;
            message.msg_iovlen = 1;
            message.msg_control = control.data();
            message.msg_controllen = control.size();
            const ssize_t n = ::recvmsg(fd, &message, MSG_CMSG_CLOEXEC);
            if (n <= 0) break;
            for (cmsghdr* c = CMSG_FIRSTHDR(&message); c; c = CMSG_NXTHDR(&message, c)) {
                if (c->cmsg_type != SCM_RIGHTS) continue;
                if (received_fd >= 0) ::close(received_fd);
                std::memcpy(&received_fd, CMSG_DATA(c), sizeof(int));
            }
            input.append(buffer.data(), static_cast<std::size_t>(n));
            for (auto end = input.find('\n'); end != std::string::npos; end = input.find('\n')) {
                const auto command = nlohmann::json::parse(input.substr(0, end));
                input.erase(0, end + 1);
                {
                    std::lock_guard lock(mutex_);
                    commands_.push_back(command);
                }
                answer(fd, command, received_fd, named_fds);
            }
        }
        if (received_fd >= 0) ::close(received_fd);
        for (auto& [name, named] : named_fds) ::close(named);
    }

    void answer(int fd, const nlohmann::json& command, int& received_fd, std::map<std::string, int>& named_fds) {
        const std::string execute = command.at("execute");
        const std::string id = command.at("id").dump();
        const std::string ok = R"({"return": {}, "id": )" + id + "}";
        std::this_thread::sleep_for(5ms);  // replies take a moment, so overlapping requests would show
        if (execute == "qmp_capabilities") {
            say(fd, behaviour_ == Behaviour::garbage ? "this is not JSON" : ok);
        } else if (execute == "query-vnc-servers") {
            const std::string servers = behaviour_ == Behaviour::no_vnc ? "[]" : R"([{"id": "default", "clients": []}])";
            say(fd, R"({"return": )" + servers + R"(, "id": )" + id + "}");
        } else if (execute == "getfd") {
            if (received_fd < 0) return say(fd, error_reply("No file descriptor supplied via SCM_RIGHTS", id));
            named_fds[command.at("arguments").at("fdname")] = std::exchange(received_fd, -1);
            if (behaviour_ != Behaviour::hang_on_getfd) say(fd, ok);
        } else if (execute == "add_client") {
            const auto& arguments = command.at("arguments");
            const int display = named_fds.at(arguments.at("fdname"));
            named_fds.erase(arguments.at("fdname"));
            if (behaviour_ == Behaviour::refuse_add_client) {
                ::close(display);
                return say(fd, error_reply("SPICE is not in use", id));
            }
            const std::string hello = "hello " + arguments.at("protocol").get<std::string>() + "\n";
            EXPECT_EQ(::write(display, hello.data(), hello.size()), static_cast<ssize_t>(hello.size()));
            ::close(display);
            say(fd, R"({"timestamp": {"seconds": 1, "microseconds": 0}, "event": "VNC_CONNECTED", "data": {}})");
            say(fd, ok);
        }
    }

    static std::string error_reply(const std::string& desc, const std::string& id) {
        return R"({"error": {"class": "GenericError", "desc": ")" + desc + R"("}, "id": )" + id + "}";
    }

    static void say(int fd, const std::string& line) {
        const std::string text = line + "\r\n";
        ::send(fd, text.data(), text.size(), MSG_NOSIGNAL);
    }

    const std::string path_;
    std::atomic<Behaviour> behaviour_{Behaviour::normal};
    int listener_ = -1;
    std::thread thread_;
    std::mutex mutex_;
    int connection_ = -1;
    std::atomic<int> connections_{0};
    std::vector<nlohmann::json> commands_;
};

class QmpUpstreamsTest : public ::testing::Test {
protected:
    void SetUp() override {
        char pattern[] = "/tmp/vmgate-qmp-test-XXXXXX";
        ASSERT_NE(::mkdtemp(pattern), nullptr);
        dir_ = pattern;
        path_ = dir_ + "/vm.qmp";
    }
    void TearDown() override {
        fake_.reset();
        std::filesystem::remove_all(dir_);
    }

    FakeQmp& fake(Behaviour behaviour = Behaviour::normal) {
        fake_ = std::make_unique<FakeQmp>(path_);
        fake_->start(behaviour);
        return *fake_;
    }

    // One request on a fresh io_context of the calling thread, as a worker makes it.
    static OwnedFd request(QmpUpstreams& qmp, const std::string& path, core::Protocol display) {
        asio::io_context io;
        auto result = asio::co_spawn(io, qmp.connect_display(path, display), asio::use_future);
        io.run();
        return result.get();
    }

    // The request's failure text and how long it took.
    static std::pair<std::string, std::chrono::milliseconds> failure(QmpUpstreams& qmp, const std::string& path,
                                                                     core::Protocol display = core::Protocol::spice) {
        const auto start = std::chrono::steady_clock::now();
        try {
            request(qmp, path, display);
        } catch (const std::runtime_error& e) {
            return {e.what(), std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start)};
        }
        ADD_FAILURE() << "the request succeeded";
        return {"", 0ms};
    }

    // The first line QEMU wrote on the display connection it was given.
    static std::string first_line(const OwnedFd& display) {
        std::string text;
        pollfd readable{display.get(), POLLIN, 0};
        while (text.find('\n') == std::string::npos && ::poll(&readable, 1, 2000) == 1) {
            char c;
            if (::read(display.get(), &c, 1) != 1) break;
            text += c;
        }
        return text;
    }

    std::string dir_;
    std::string path_;
    std::unique_ptr<FakeQmp> fake_;
};

TEST_F(QmpUpstreamsTest, EachRequestPassesASocketAndAddsItAsAClientWithoutAuthentication) {
    FakeQmp& qemu = fake();
    QmpUpstreams qmp;
    const OwnedFd spice = request(qmp, path_, core::Protocol::spice);
    const OwnedFd vnc = request(qmp, path_, core::Protocol::vnc);
    EXPECT_EQ(first_line(spice), "hello spice\n");
    EXPECT_EQ(first_line(vnc), "hello vnc\n");

    const OwnedFd vnc_again = request(qmp, path_, core::Protocol::vnc);
    EXPECT_EQ(first_line(vnc_again), "hello vnc\n");

    std::vector<std::string> executed;
    for (const auto& command : qemu.commands()) executed.push_back(command.at("execute"));
    EXPECT_EQ(executed, (std::vector<std::string>{"qmp_capabilities", "getfd", "add_client", "query-vnc-servers",
                                                  "getfd", "add_client", "getfd", "add_client"}));
    const auto commands = qemu.commands();
    EXPECT_EQ(commands[2].at("arguments"), (nlohmann::json{{"protocol", "spice"},
                                                           {"fdname", commands[1].at("arguments").at("fdname")},
                                                           {"skipauth", true},
                                                           {"tls", false}}));
    EXPECT_EQ(commands[5].at("arguments").at("protocol"), "vnc");
    EXPECT_NE(commands[1].at("arguments").at("fdname"), commands[4].at("arguments").at("fdname"));
    EXPECT_EQ(qemu.connections(), 1);  // one monitor connection for both
}

// add_client would accept the descriptor and leave it unanswered.
TEST_F(QmpUpstreamsTest, VncWithoutAVncDisplayIsRefusedBeforeAnyDescriptorIsPassed) {
    FakeQmp& qemu = fake(Behaviour::no_vnc);
    QmpUpstreams qmp;
    EXPECT_EQ(failure(qmp, path_, core::Protocol::vnc).first,
              "QEMU has no VNC display: start it with -vnc none (or -vnc unix:PATH)");
    EXPECT_EQ(qemu.commands().back().at("execute"), "query-vnc-servers");
    EXPECT_EQ(first_line(request(qmp, path_, core::Protocol::spice)), "hello spice\n");
}

TEST_F(QmpUpstreamsTest, QemusRefusalIsReportedInItsWordsAndTheConnectionStaysUsable) {
    FakeQmp& qemu = fake(Behaviour::refuse_add_client);
    QmpUpstreams qmp;
    EXPECT_EQ(failure(qmp, path_).first, "QEMU refused add_client: SPICE is not in use");
    qemu.set_behaviour(Behaviour::normal);
    EXPECT_EQ(first_line(request(qmp, path_, core::Protocol::spice)), "hello spice\n");
    EXPECT_EQ(qemu.connections(), 1);
}

TEST_F(QmpUpstreamsTest, ConcurrentRequestsFromSeveralThreadsRunOneAtATime) {
    FakeQmp& qemu = fake();
    QmpUpstreams qmp;
    constexpr int threads = 3;
    constexpr int per_thread = 4;
    std::atomic<int> connected{0};
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
        workers.emplace_back([&] {
            asio::io_context io;
            std::vector<std::future<OwnedFd>> results;
            for (int i = 0; i < per_thread; ++i)
                results.push_back(asio::co_spawn(io, qmp.connect_display(path_, core::Protocol::vnc), asio::use_future));
            io.run();
            for (auto& r : results)
                if (first_line(r.get()) == "hello vnc\n") ++connected;
        });
    }
    for (auto& w : workers) w.join();
    EXPECT_EQ(connected, threads * per_thread);

    // After the one query-vnc-servers, getfd and add_client strictly alternate, each pair on its
    // own descriptor name.
    const auto commands = qemu.commands();
    ASSERT_EQ(commands.size(), 2u + 2u * threads * per_thread);
    EXPECT_EQ(commands[1].at("execute"), "query-vnc-servers");
    std::set<std::string> names;
    for (std::size_t i = 2; i < commands.size(); i += 2) {
        EXPECT_EQ(commands[i].at("execute"), "getfd") << i;
        EXPECT_EQ(commands[i + 1].at("execute"), "add_client") << i;
        EXPECT_EQ(commands[i].at("arguments").at("fdname"), commands[i + 1].at("arguments").at("fdname"));
        names.insert(commands[i].at("arguments").at("fdname").get<std::string>());
    }
    EXPECT_EQ(names.size(), static_cast<std::size_t>(threads * per_thread));
}

TEST_F(QmpUpstreamsTest, AHungQemuCostsARequestItsDeadlineAndTheNextRequestConnectsAgain) {
    FakeQmp& qemu = fake(Behaviour::hang_on_getfd);
    QmpUpstreams qmp(short_timeout);
    const auto [why, took] = failure(qmp, path_);
    EXPECT_EQ(why, "no answer from QEMU within 300 ms (getfd)");
    EXPECT_GE(took, short_timeout);
    EXPECT_LT(took, 2s);

    qemu.set_behaviour(Behaviour::normal);
    EXPECT_EQ(first_line(request(qmp, path_, core::Protocol::spice)), "hello spice\n");
    EXPECT_EQ(qemu.connections(), 2);  // the hung connection was given up
}

// The ones behind it give up waiting for their turn, or get it just before their deadline and
// find QEMU still hung: either way they end with their deadline, not one deadline per request.
TEST_F(QmpUpstreamsTest, RequestsQueuedBehindAHungOneEndByTheirOwnDeadlines) {
    fake(Behaviour::hang_on_getfd);
    QmpUpstreams qmp(short_timeout);
    asio::io_context io;
    std::vector<std::future<OwnedFd>> results;
    for (int i = 0; i < 3; ++i)
        results.push_back(asio::co_spawn(io, qmp.connect_display(path_, core::Protocol::spice), asio::use_future));
    const auto start = std::chrono::steady_clock::now();
    io.run();
    EXPECT_LT(std::chrono::steady_clock::now() - start, short_timeout + 500ms);
    std::vector<std::string> errors;
    for (auto& r : results) {
        try {
            r.get();
        } catch (const std::runtime_error& e) {
            errors.push_back(e.what());
        }
    }
    ASSERT_EQ(errors.size(), 3u);
    EXPECT_EQ(errors[0], "no answer from QEMU within 300 ms (getfd)");
    for (std::size_t i = 1; i < errors.size(); ++i)
        EXPECT_THAT(errors[i], ::testing::AnyOf("the requests before this one to the same QEMU did not finish within 300 ms",
                                                ::testing::StartsWith("no answer from QEMU within 300 ms")));
}

TEST_F(QmpUpstreamsTest, AMonitorHeldByAnotherClientTimesOutNamingTheGreeting) {
    fake(Behaviour::no_greeting);
    QmpUpstreams qmp(short_timeout);
    const auto [why, took] = failure(qmp, path_);
    EXPECT_THAT(why, HasSubstr("no answer from QEMU within 300 ms (waiting for the QMP greeting"));
    EXPECT_THAT(why, HasSubstr("one client per -qmp socket"));
    EXPECT_LT(took, 2s);
}

TEST_F(QmpUpstreamsTest, SomethingThatIsNotQmpFailsWithTheDetail) {
    fake(Behaviour::garbage);
    QmpUpstreams qmp;
    EXPECT_THAT(failure(qmp, path_).first, HasSubstr("QEMU sent what is not QMP: malformed JSON from QEMU"));
}

TEST_F(QmpUpstreamsTest, NoQemuMeansCannotConnect) {
    QmpUpstreams qmp;
    EXPECT_EQ(failure(qmp, path_).first, "cannot connect: No such file or directory");
}

TEST_F(QmpUpstreamsTest, AfterQemuStopsAndStartsAgainTheNextRequestReconnects) {
    QmpUpstreams qmp;
    fake();
    EXPECT_EQ(first_line(request(qmp, path_, core::Protocol::spice)), "hello spice\n");
    fake_->stop();
    EXPECT_EQ(failure(qmp, path_).first, "cannot connect: No such file or directory");
    FakeQmp& restarted = fake();
    EXPECT_EQ(first_line(request(qmp, path_, core::Protocol::spice)), "hello spice\n");
    EXPECT_EQ(restarted.connections(), 1);
}

TEST_F(QmpUpstreamsTest, AConnectionQemuClosedWhileIdleIsReplaced) {
    FakeQmp& qemu = fake();
    QmpUpstreams qmp;
    EXPECT_EQ(first_line(request(qmp, path_, core::Protocol::vnc)), "hello vnc\n");
    qemu.drop_connection();
    std::this_thread::sleep_for(100ms);  // the reader notices the close between requests
    EXPECT_EQ(first_line(request(qmp, path_, core::Protocol::vnc)), "hello vnc\n");
    EXPECT_EQ(qemu.connections(), 2);
}

// Whether the reader has seen the close or the request finds the connection dead itself, the
// request gets a fresh connection and succeeds.
TEST_F(QmpUpstreamsTest, AConnectionQemuClosedJustNowIsReplacedWithinTheRequest) {
    FakeQmp& qemu = fake();
    QmpUpstreams qmp;
    for (int i = 0; i < 10; ++i) {
        EXPECT_EQ(first_line(request(qmp, path_, core::Protocol::spice)), "hello spice\n") << i;
        qemu.drop_connection();
    }
    EXPECT_EQ(first_line(request(qmp, path_, core::Protocol::spice)), "hello spice\n");
    EXPECT_EQ(qemu.connections(), 11);
}

TEST_F(QmpUpstreamsTest, EachQmpSocketHasItsOwnConnection) {
    FakeQmp& first = fake();
    const std::string other_path = dir_ + "/other.qmp";
    FakeQmp other(other_path);
    other.start(Behaviour::normal);
    QmpUpstreams qmp;
    EXPECT_EQ(first_line(request(qmp, path_, core::Protocol::spice)), "hello spice\n");
    EXPECT_EQ(first_line(request(qmp, other_path, core::Protocol::vnc)), "hello vnc\n");
    EXPECT_EQ(first.connections(), 1);
    EXPECT_EQ(other.connections(), 1);
}

}  // namespace
}  // namespace vmgate::net
