// SaslServerSession against a real Cyrus SASL client in the same process, over memory, with a
// real sasldb written by the real saslpasswd2. Cyrus can be initialised once per process, so all
// tests share one SaslServerContext (sasl_world() below).
#include "auth/sasl_context.hpp"
#include "auth/sasl_server.hpp"
#include "auth/sasldb.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sasl/prop.h>
#include <sasl/sasl.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace vmgate::auth {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using Status = StepResult::Status;

constexpr unsigned kTlsBits = 256;

std::string run(const std::string& command, const std::string& input = "") {
    FILE* pipe = popen(command.c_str(), input.empty() ? "r" : "w");
    if (pipe == nullptr) throw std::runtime_error("popen " + command);
    std::string output;
    if (input.empty()) {
        char buffer[256];
        while (fgets(buffer, sizeof buffer, pipe) != nullptr) output += buffer;
    } else {
        fputs(input.c_str(), pipe);
    }
    if (pclose(pipe) != 0) throw std::runtime_error("failed: " + command);
    return output;
}

// The realm sasldblistusers2 shows for user ("alice@vm: userPassword" -> "vm").
std::string listed_realm(const std::string& db, const std::string& user) {
    const std::string listing = run("sasldblistusers2 -f " + db);
    const auto start = listing.find(user + "@");
    if (start == std::string::npos) return "(not listed)";
    const auto realm_start = start + user.size() + 1;
    return listing.substr(realm_start, listing.find(':', realm_start) - realm_start);
}

// What the whole binary shares: a temporary directory with a sasldb, a hostile Cyrus config file
// that must be ignored, and the one SaslServerContext.
struct SaslWorld {
    fs::path dir;
    std::string sasldb;
    core::SaslConfig config;
    std::shared_ptr<SaslServerContext> context;
    std::vector<std::string> log;
    std::mutex log_mutex;

    SaslWorld() {
        char pattern[] = "/tmp/vmgate-auth-XXXXXX";
        dir = mkdtemp(pattern);
        sasldb = (dir / "sasldb2").string();
        plant_hostile_config();
        run("saslpasswd2 -p -c -f " + sasldb + " -a spice alice", "alice-secret");
        run("saslpasswd2 -p -c -f " + sasldb + " -a spice -u EXAMPLE.ORG carol", "carol-secret");
        config.mech_list = {"SCRAM-SHA-256", "PLAIN"};
        config.sasldb = sasldb;
        std::string error;
        context = SaslServerContext::create(config, error);
        if (!context) throw std::runtime_error(error);
        context->set_logger([this](SaslLogLevel, std::string_view message) {
            std::lock_guard lock(log_mutex);
            log.emplace_back(message);
        });
        if (sasl_client_init(nullptr) != SASL_OK) throw std::runtime_error("sasl_client_init");
    }
    ~SaslWorld() { fs::remove_all(dir); }

    // Were it read, this file would offer DIGEST-MD5, point at a missing sasldb and log
    // passwords.
    void plant_hostile_config() {
        fs::create_directory(dir / "conf");
        std::ofstream(dir / "conf" / "vmgate.conf")
            << "mech_list: DIGEST-MD5 CRAM-MD5\nsasldb_path: /nonexistent\n"
               "pwcheck_method: saslauthd\nauxprop_plugin: ldapdb\nlog_level: 7\n";
        setenv("SASL_CONF_PATH", (dir / "conf").c_str(), 1);
    }
};

SaslWorld& sasl_world() {
    static SaslWorld world;
    return world;
}

SaslServerSession new_session(unsigned external_ssf = kTlsBits) {
    return SaslServerSession(sasl_world().context, "spice", "127.0.0.1;5900", "127.0.0.1;40000",
                             external_ssf);
}

// A Cyrus SASL client, as spice-gtk builds it over TLS (spice-protocol.md §5.3).
class Client {
public:
    Client(std::string user, std::string password)
        : user_(std::move(user)), secret_(make_secret(password)) {
        const std::array<sasl_callback_t, 4> callbacks{{
            {SASL_CB_AUTHNAME, erase(&simple), this},
            {SASL_CB_USER, erase(&simple), this},
            {SASL_CB_PASS, erase(&pass), this},
            {SASL_CB_LIST_END, nullptr, nullptr},
        }};
        callbacks_ = callbacks;
        sasl_conn_t* raw = nullptr;
        if (sasl_client_new("spice", "localhost", "127.0.0.1;40000", "127.0.0.1;5900",
                            callbacks_.data(), 0, &raw) != SASL_OK)
            throw std::runtime_error("sasl_client_new");
        conn_.reset(raw);
        const sasl_ssf_t ssf = kTlsBits;
        sasl_security_properties_t props{0, 0, 100000, 0, nullptr, nullptr};
        sasl_setprop(conn_.get(), SASL_SSF_EXTERNAL, &ssf);
        sasl_setprop(conn_.get(), SASL_SEC_PROPS, &props);
    }

    // Runs a whole exchange; returns the server's last answer.
    StepResult authenticate(SaslServerSession& server, const std::string& mechanism) {
        const char* out = nullptr;
        unsigned out_len = 0;
        const char* chosen = nullptr;
        const int rc =
            sasl_client_start(conn_.get(), mechanism.c_str(), nullptr, &out, &out_len, &chosen);
        if (rc != SASL_OK && rc != SASL_CONTINUE) throw std::runtime_error("sasl_client_start");
        StepResult result = server.start(chosen, token(out, out_len));
        while (result.status == Status::more) {
            client_step(result.server_out);
            result = server.step(token(last_out_, last_len_));
        }
        if (result.status == Status::ok && result.server_out) client_step(result.server_out);
        return result;
    }

    int last_rc() const { return last_rc_; }

private:
    struct ConnDeleter {
        void operator()(sasl_conn_t* conn) const { sasl_dispose(&conn); }
    };
    struct FreeDeleter {
        void operator()(sasl_secret_t* secret) const { std::free(secret); }
    };

    template <typename Function>
    static int (*erase(Function* function))() {
        return reinterpret_cast<int (*)()>(reinterpret_cast<void (*)()>(function));
    }

    static std::unique_ptr<sasl_secret_t, FreeDeleter> make_secret(const std::string& password) {
        auto* secret =
            static_cast<sasl_secret_t*>(std::malloc(sizeof(sasl_secret_t) + password.size()));
        secret->len = password.size();
        std::copy(password.begin(), password.end(), secret->data);
        return std::unique_ptr<sasl_secret_t, FreeDeleter>(secret);
    }

    static int simple(void* context, int id, const char** result, unsigned* len) {
        const auto* self = static_cast<Client*>(context);
        // SASL_CB_USER is the authorization id: none, so act as ourselves.
        *result = id == SASL_CB_AUTHNAME ? self->user_.c_str() : "";
        if (len != nullptr) *len = static_cast<unsigned>(std::strlen(*result));
        return SASL_OK;
    }

    static int pass(sasl_conn_t*, void* context, int, sasl_secret_t** secret) {
        *secret = static_cast<Client*>(context)->secret_.get();
        return SASL_OK;
    }

    static std::optional<std::span<const uint8_t>> token(const char* data, unsigned len) {
        if (data == nullptr) return std::nullopt;
        return std::span(reinterpret_cast<const uint8_t*>(data), len);
    }

    void client_step(const std::optional<std::vector<uint8_t>>& server_out) {
        const char* in = server_out ? reinterpret_cast<const char*>(server_out->data()) : nullptr;
        const auto in_len = server_out ? static_cast<unsigned>(server_out->size()) : 0U;
        last_rc_ = sasl_client_step(conn_.get(), in, in_len, nullptr, &last_out_, &last_len_);
    }

    std::string user_;
    std::unique_ptr<sasl_secret_t, FreeDeleter> secret_;
    std::array<sasl_callback_t, 4> callbacks_{};
    std::unique_ptr<sasl_conn_t, ConnDeleter> conn_;
    const char* last_out_ = nullptr;
    unsigned last_len_ = 0;
    int last_rc_ = SASL_OK;
};

StepResult login(const std::string& mechanism, const std::string& user, const std::string& password,
                 SaslServerSession& server) {
    Client client(user, password);
    return client.authenticate(server, mechanism);
}

StepResult login(const std::string& mechanism, const std::string& user,
                 const std::string& password) {
    auto server = new_session();
    return login(mechanism, user, password, server);
}

std::vector<uint8_t> bytes(std::string_view text) { return {text.begin(), text.end()}; }

class SaslTest : public ::testing::TestWithParam<std::string> {};

INSTANTIATE_TEST_SUITE_P(Mechanisms, SaslTest, ::testing::Values("PLAIN", "SCRAM-SHA-256"));

TEST_P(SaslTest, RightPasswordGivesIdentityInTheDefaultRealm) {
    auto server = new_session();
    const auto result = login(GetParam(), "alice", "alice-secret", server);
    ASSERT_EQ(result.status, Status::ok) << result.detail;
    EXPECT_EQ(server.identity().user, "alice");
    EXPECT_EQ(server.identity().realm, sasl_world().context->default_realm());
    EXPECT_EQ(server.identity().mechanism, GetParam());
}

TEST_P(SaslTest, RealmTypedByTheUserIsKept) {
    auto server = new_session();
    const auto result = login(GetParam(), "carol@EXAMPLE.ORG", "carol-secret", server);
    ASSERT_EQ(result.status, Status::ok) << result.detail;
    EXPECT_EQ(server.identity().user, "carol");
    EXPECT_EQ(server.identity().realm, "EXAMPLE.ORG");
}

TEST_P(SaslTest, WrongPasswordFails) {
    auto server = new_session();
    const auto result = login(GetParam(), "alice", "wrong", server);
    EXPECT_EQ(result.status, Status::failed);
    EXPECT_EQ(result.error, "authentication failed");
    EXPECT_FALSE(result.detail.empty());
    EXPECT_TRUE(server.identity().user.empty());
}

// The audit record of a failed attempt names the user whose password was tried.
TEST_P(SaslTest, FailedAttemptKeepsTheClaimedUserName) {
    auto server = new_session();
    EXPECT_EQ(login(GetParam(), "alice", "wrong", server).status, Status::failed);
    EXPECT_EQ(server.claimed_user(), "alice");
}

TEST_P(SaslTest, UnknownUserFailsWithTheSameError) {
    const auto wrong_password = login(GetParam(), "alice", "wrong");
    const auto unknown_user = login(GetParam(), "mallory", "alice-secret");
    EXPECT_EQ(unknown_user.status, Status::failed);
    EXPECT_EQ(unknown_user.error, wrong_password.error);
}

TEST_P(SaslTest, UserInAnotherRealmIsNotTheDefaultRealmUser) {
    EXPECT_EQ(login(GetParam(), "carol", "carol-secret").status, Status::failed);
}

TEST(Sasl, ScramClientAcceptsTheServerFinalMessage) {
    auto server = new_session();
    Client client("alice", "alice-secret");
    ASSERT_EQ(client.authenticate(server, "SCRAM-SHA-256").status, Status::ok);
    EXPECT_EQ(client.last_rc(), SASL_OK);  // server signature verified
}

// The gateway authenticates on several worker threads at once, one session per thread.
TEST(Sasl, ConcurrentLoginsOnManyThreads) {
    sasl_world();
    std::atomic<int> good{0};
    {
        std::vector<std::jthread> threads;
        for (int t = 0; t < 4; ++t)
            threads.emplace_back([&good] {
                for (int i = 0; i < 10; ++i)
                    for (const char* mech : {"PLAIN", "SCRAM-SHA-256"})
                        if (login(mech, "alice", "alice-secret").status == Status::ok) ++good;
            });
    }
    EXPECT_EQ(good, 4 * 10 * 2);
}

TEST(Sasl, PlainWireExampleFromTheSpec) {
    auto server = new_session();
    const auto client_in = bytes(std::string_view("\0alice\0alice-secret", 19));
    const auto result = server.start("PLAIN", client_in);
    ASSERT_EQ(result.status, Status::ok) << result.detail;
    EXPECT_FALSE(result.server_out.has_value());
    EXPECT_EQ(server.identity().user, "alice");
}

TEST(Sasl, ClaimedUserDecodesScramEscapes) {
    auto server = new_session();
    const auto client_in = bytes(std::string_view("n,,n=a=2Cb=3Dc,r=abcdefgh"));
    server.start("SCRAM-SHA-256", client_in);
    EXPECT_EQ(server.claimed_user(), "a,b=c");
}

TEST(Sasl, PlainCannotActAsAnotherUser) {
    auto server = new_session();
    const auto client_in = bytes(std::string_view("carol\0alice\0alice-secret", 24));
    EXPECT_EQ(server.start("PLAIN", client_in).status, Status::failed);
}

TEST(Sasl, MechanismsFollowMechListAndIgnoreCyrusConfigFiles) {
    EXPECT_EQ(new_session().mechanisms(), "SCRAM-SHA-256,PLAIN");
}

TEST(Sasl, MechanismOutsideMechListIsRefused) {
    auto server = new_session();
    EXPECT_EQ(server.start("DIGEST-MD5", std::nullopt).status, Status::failed);
}

TEST(Sasl, NothingIsOfferedWithoutTls) {
    auto server = new_session(0);
    EXPECT_EQ(server.mechanisms(), "");
    const auto result = server.start("PLAIN", bytes(std::string_view("\0alice\0alice-secret", 19)));
    EXPECT_EQ(result.status, Status::failed);
    EXPECT_EQ(result.error, "authentication failed");
    EXPECT_THAT(result.detail, HasSubstr("TLS"));
}

// VeNCrypt Plain: a whole user name and password, checked against the same sasldb.
TEST(Sasl, CheckPasswordGivesTheIdentityWithTheLabel) {
    auto server = new_session();
    const auto result = server.check_password("alice", "alice-secret", "X509Plain");
    ASSERT_EQ(result.status, Status::ok) << result.detail;
    EXPECT_EQ(server.identity().user, "alice");
    EXPECT_EQ(server.identity().realm, sasl_world().context->default_realm());
    EXPECT_EQ(server.identity().mechanism, "X509Plain");
}

TEST(Sasl, CheckPasswordKeepsATypedRealm) {
    auto server = new_session();
    ASSERT_EQ(server.check_password("carol@EXAMPLE.ORG", "carol-secret", "X509Plain").status, Status::ok);
    EXPECT_EQ(server.identity().to_string(), "carol@EXAMPLE.ORG");
}

TEST(Sasl, CheckPasswordRefusesWrongPasswordsUnknownUsersAndNoTls) {
    auto wrong = new_session();
    const auto refused = wrong.check_password("alice", "wrong", "X509Plain");
    EXPECT_EQ(refused.status, Status::failed);
    EXPECT_EQ(wrong.claimed_user(), "alice");
    EXPECT_TRUE(wrong.identity().user.empty());
    auto unknown = new_session();
    const auto unknown_user = unknown.check_password("mallory", "alice-secret", "X509Plain");
    EXPECT_EQ(unknown_user.status, Status::failed);
    EXPECT_EQ(unknown_user.error, refused.error);
    auto plain = new_session(0);
    EXPECT_EQ(plain.check_password("alice", "alice-secret", "X509Plain").status, Status::failed);
    auto twice = new_session();
    EXPECT_EQ(twice.check_password("alice", "wrong", "X509Plain").status, Status::failed);
    EXPECT_EQ(twice.check_password("alice", "alice-secret", "X509Plain").status, Status::failed);
}

TEST(Sasl, StepBeforeStartAndStartTwiceFail) {
    auto server = new_session();
    EXPECT_EQ(server.step(std::nullopt).status, Status::failed);
    auto other = new_session();
    ASSERT_EQ(other.start("SCRAM-SHA-256", std::nullopt).status, Status::more);
    EXPECT_EQ(other.start("PLAIN", std::nullopt).status, Status::failed);
}

TEST(Sasl, DefaultRealmIsTheRealmSaslpasswd2Uses) {
    auto& world = sasl_world();
    EXPECT_EQ(world.context->default_realm(), listed_realm(world.sasldb, "alice"));
}

TEST(Sasl, CreateWithSameOptionsReturnsTheSameContext) {
    auto& world = sasl_world();
    std::string error;
    EXPECT_EQ(SaslServerContext::create(world.config, error), world.context) << error;
}

TEST(Sasl, CreateWithOtherOptionsIsAnError) {
    auto config = sasl_world().config;
    config.mech_list = {"PLAIN"};
    std::string error;
    EXPECT_EQ(SaslServerContext::create(config, error), nullptr);
    EXPECT_THAT(error, HasSubstr("already initialised"));
}

TEST(Sasl, WeakMechanismsNeedExplicitConsent) {
    core::SaslConfig config;
    config.mech_list = {"DIGEST-MD5"};
    std::string error;
    EXPECT_EQ(SaslServerContext::create(config, error), nullptr);
    EXPECT_THAT(error, HasSubstr("allow_weak_mechanisms"));
}

TEST(Sasl, BadPwcheckMethodIsAnError) {
    auto config = sasl_world().config;
    config.pwcheck_method = "shadow";
    std::string error;
    EXPECT_EQ(SaslServerContext::create(config, error), nullptr);
    EXPECT_THAT(error, HasSubstr("sasl.pwcheck_method"));
}

TEST(Sasl, SetPasswordCreatesAUserSasldbListsAndCyrusAccepts) {
    auto& world = sasl_world();
    std::string error;
    ASSERT_TRUE(set_password(world.config, "dave", "", "dave-secret", error)) << error;
    EXPECT_EQ(listed_realm(world.sasldb, "dave"), world.context->default_realm());
    EXPECT_EQ(login("PLAIN", "dave", "dave-secret").status, Status::ok);
    EXPECT_EQ(login("SCRAM-SHA-256", "dave", "dave-secret").status, Status::ok);
}

TEST(Sasl, SetPasswordInAnotherRealm) {
    auto& world = sasl_world();
    std::string error;
    ASSERT_TRUE(set_password(world.config, "erin", "EXAMPLE.ORG", "erin-secret", error)) << error;
    EXPECT_EQ(listed_realm(world.sasldb, "erin"), "EXAMPLE.ORG");
    auto server = new_session();
    ASSERT_EQ(login("SCRAM-SHA-256", "erin@EXAMPLE.ORG", "erin-secret", server).status, Status::ok);
    EXPECT_EQ(server.identity().realm, "EXAMPLE.ORG");
}

TEST(Sasl, SetPasswordChangesAnExistingPassword) {
    auto& world = sasl_world();
    std::string error;
    ASSERT_TRUE(set_password(world.config, "frank", "", "first", error)) << error;
    ASSERT_TRUE(set_password(world.config, "frank", "", "second", error)) << error;
    EXPECT_EQ(login("PLAIN", "frank", "first").status, Status::failed);
    EXPECT_EQ(login("PLAIN", "frank", "second").status, Status::ok);
}

TEST(Sasl, Saslpasswd2CanChangeAUserSetPasswordCreated) {
    auto& world = sasl_world();
    std::string error;
    ASSERT_TRUE(set_password(world.config, "gina", "", "first", error)) << error;
    run("saslpasswd2 -p -f " + world.sasldb + " -a spice gina", "second");
    EXPECT_EQ(login("SCRAM-SHA-256", "gina", "second").status, Status::ok);
}

TEST(Sasl, CyrusMessagesReachTheLogger) {
    auto& world = sasl_world();
    std::string error;
    ASSERT_TRUE(set_password(world.config, "hugo", "", "pw", error)) << error;
    std::lock_guard lock(world.log_mutex);
    EXPECT_THAT(world.log, ::testing::Contains(HasSubstr("hugo")));
}

// A configured default_realm qualifies bare names. Cyrus is already initialised here with
// default_realm "", so this runs in a fresh process (a re-executed death-test child).
TEST(SaslDeathTest, ConfiguredDefaultRealmQualifiesBareNames) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_EXIT(
        {
            char pattern[] = "/tmp/vmgate-auth-XXXXXX";
            const fs::path dir = mkdtemp(pattern);
            core::SaslConfig config;
            config.sasldb = (dir / "sasldb2").string();
            config.default_realm = "CORP.EXAMPLE";
            run("saslpasswd2 -p -c -f " + config.sasldb + " -u CORP.EXAMPLE zoe", "zoe-secret");
            std::string error;
            auto context = SaslServerContext::create(config, error);
            SaslServerSession server(context, "spice", "", "", kTlsBits);
            const auto result =
                server.start("PLAIN", bytes(std::string_view("\0zoe\0zoe-secret", 15)));
            fs::remove_all(dir);
            const bool good = context && context->default_realm() == "CORP.EXAMPLE" &&
                              result.status == Status::ok && server.identity().user == "zoe" &&
                              server.identity().realm == "CORP.EXAMPLE";
            std::exit(good ? 0 : 1);
        },
        ::testing::ExitedWithCode(0), "");
}

TEST(Sasl, SetPasswordRefusesARealmInTheUserName) {
    std::string error;
    EXPECT_FALSE(set_password(sasl_world().config, "x@y", "", "pw", error));
}

// ---- SasldbUsers: `vmgate users` ----

SasldbUsers users() {
    std::string error;
    auto opened = SasldbUsers::open(sasl_world().config, error);
    if (!opened) throw std::runtime_error(error);
    return std::move(*opened);
}

bool listed(const std::string& principal) {
    return run("sasldblistusers2 -f " + sasl_world().sasldb).find(principal + ":") != std::string::npos;
}

// What a sasldb from older Cyrus versions may hold besides userPassword, written the way
// saslpasswd2 writes secrets: through the auxprop store.
void plant_property(const std::string& user, const std::string& property) {
    sasl_conn_t* conn = nullptr;
    ASSERT_EQ(sasl_server_new("spice", nullptr, nullptr, nullptr, nullptr, nullptr, 0, &conn), SASL_OK);
    propctx* ctx = prop_new(0);
    const char* names[] = {property.c_str(), nullptr};
    ASSERT_EQ(prop_request(ctx, names), SASL_OK);
    ASSERT_EQ(prop_set(ctx, property.c_str(), "legacy", 6), SASL_OK);
    EXPECT_EQ(sasl_auxprop_store(conn, ctx, user.c_str()), SASL_OK);
    prop_dispose(&ctx);
    sasl_dispose(&conn);
}

TEST(SasldbUsers, AddCreatesAUserSasldblistusers2ListsAndCyrusAccepts) {
    std::string error;
    ASSERT_TRUE(users().add("ursula", "", "ursula-secret", error)) << error;
    EXPECT_TRUE(listed("ursula@" + sasl_world().context->default_realm()));
    EXPECT_EQ(login("SCRAM-SHA-256", "ursula", "ursula-secret").status, Status::ok);
}

TEST(SasldbUsers, AddRefusesAUserSaslpasswd2Created) {
    std::string error;
    EXPECT_FALSE(users().add("alice", "", "other", error));
    EXPECT_THAT(error, HasSubstr("alice@" + sasl_world().context->default_realm() + " already exists"));
    EXPECT_EQ(login("PLAIN", "alice", "alice-secret").status, Status::ok);
}

TEST(SasldbUsers, AddInARealmIsAnotherUser) {
    std::string error;
    ASSERT_TRUE(users().add("alice", "ELSEWHERE.ORG", "elsewhere", error)) << error;
    EXPECT_TRUE(listed("alice@ELSEWHERE.ORG"));
    EXPECT_EQ(login("PLAIN", "alice@ELSEWHERE.ORG", "elsewhere").status, Status::ok);
    EXPECT_EQ(login("PLAIN", "alice", "alice-secret").status, Status::ok);
}

TEST(SasldbUsers, ChangePasswordOfAUserSaslpasswd2Created) {
    run("saslpasswd2 -p -c -f " + sasl_world().sasldb + " -a spice victor", "first");
    std::string error;
    ASSERT_TRUE(users().change_password("victor", "", "second", error)) << error;
    EXPECT_EQ(login("SCRAM-SHA-256", "victor", "first").status, Status::failed);
    EXPECT_EQ(login("SCRAM-SHA-256", "victor", "second").status, Status::ok);
}

TEST(SasldbUsers, ChangePasswordRefusesAMissingUser) {
    std::string error;
    EXPECT_FALSE(users().change_password("nobody", "", "pw", error));
    EXPECT_THAT(error, HasSubstr("nobody@" + sasl_world().context->default_realm() + " is not in"));
    EXPECT_FALSE(listed("nobody@" + sasl_world().context->default_realm()));
}

TEST(SasldbUsers, RemoveDeletesAUserSaslpasswd2Created) {
    run("saslpasswd2 -p -c -f " + sasl_world().sasldb + " -a spice wendy", "wendy-secret");
    std::string error;
    ASSERT_TRUE(users().remove("wendy", "", error)) << error;
    EXPECT_FALSE(listed("wendy@" + sasl_world().context->default_realm()));
    EXPECT_EQ(login("PLAIN", "wendy", "wendy-secret").status, Status::failed);
    EXPECT_FALSE(users().remove("wendy", "", error));
}

TEST(SasldbUsers, RemoveAlsoDeletesPropertiesNoPluginOwns) {
    std::string error;
    ASSERT_TRUE(users().add("xavier", "", "xavier-secret", error)) << error;
    plant_property("xavier", "cmusaslsecretDIGEST-MD5");
    ASSERT_TRUE(listed("xavier@" + sasl_world().context->default_realm()));
    ASSERT_TRUE(users().remove("xavier", "", error)) << error;
    EXPECT_FALSE(listed("xavier@" + sasl_world().context->default_realm()));
}

TEST(SasldbUsers, AnExistingSasldbKeepsItsMode) {
    const auto& db = sasl_world().sasldb;
    ASSERT_EQ(::chmod(db.c_str(), 0600), 0);
    std::string error;
    ASSERT_TRUE(users().add("yvonne", "", "pw", error)) << error;
    ASSERT_TRUE(users().remove("yvonne", "", error)) << error;
    struct stat st {};
    ASSERT_EQ(::stat(db.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600U);
}

TEST(SasldbUsers, SaslauthdIsRefusedBeforeCyrusIsTouched) {
    auto config = sasl_world().config;
    config.pwcheck_method = "saslauthd";
    config.mech_list = {"PLAIN"};
    std::string error;
    EXPECT_FALSE(SasldbUsers::open(config, error));
    EXPECT_THAT(error, HasSubstr("saslauthd"));
    EXPECT_THAT(error, ::testing::Not(HasSubstr("already initialised")));
}

TEST(SasldbUsers, EntriesAreWhatSasldblistusers2Lists) {
    std::string error;
    const auto entries = sasldb_entries(sasl_world().sasldb, error);
    ASSERT_TRUE(entries) << error;
    std::vector<std::string> ours;
    for (const auto& e : *entries) ours.push_back(e.user + "@" + e.realm + ": " + e.property);
    std::vector<std::string> theirs;
    std::istringstream listing(run("sasldblistusers2 -f " + sasl_world().sasldb));
    for (std::string line; std::getline(listing, line);) theirs.push_back(line);
    std::ranges::sort(ours);
    std::ranges::sort(theirs);
    EXPECT_EQ(ours, theirs);
    EXPECT_THAT(ours, ::testing::Contains("carol@EXAMPLE.ORG: userPassword"));
}

TEST(SasldbUsers, EntriesOfAMissingOrForeignFileAreAnErrorInWords) {
    std::string error;
    EXPECT_FALSE(sasldb_entries((sasl_world().dir / "missing").string(), error));
    EXPECT_THAT(error, HasSubstr("No such file or directory"));
    const auto text = sasl_world().dir / "text";
    std::ofstream(text) << "not a database\n";
    EXPECT_FALSE(sasldb_entries(text.string(), error));
    EXPECT_THAT(error, HasSubstr("unexpected file type or format"));
}

TEST(SasldbKey, UserRealmAndProperty) {
    const auto entry = parse_sasldb_key(std::string_view("anne\0EXAMPLE.ORG\0userPassword", 29));
    ASSERT_TRUE(entry);
    EXPECT_EQ(entry->user, "anne");
    EXPECT_EQ(entry->realm, "EXAMPLE.ORG");
    EXPECT_EQ(entry->property, "userPassword");
}

TEST(SasldbKey, AnEmptyRealmIsKept) {
    const auto entry = parse_sasldb_key(std::string_view("anne\0\0userPassword", 18));
    ASSERT_TRUE(entry);
    EXPECT_EQ(entry->realm, "");
}

TEST(SasldbKey, OtherShapesAreNoEntries) {
    EXPECT_FALSE(parse_sasldb_key("anne"));
    EXPECT_FALSE(parse_sasldb_key(std::string_view("anne\0realm", 10)));
    EXPECT_FALSE(parse_sasldb_key(std::string_view("\0realm\0userPassword", 19)));
    EXPECT_FALSE(parse_sasldb_key(std::string_view("anne\0realm\0", 11)));
    EXPECT_FALSE(parse_sasldb_key(std::string_view("anne\0realm\0prop\0extra", 21)));
}

}  // namespace
}  // namespace vmgate::auth
