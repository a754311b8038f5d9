#include "auth/sasl_context.hpp"

#include "auth/cyrus_conn.hpp"
#include "auth/sasldb.hpp"

#include <sasl/sasl.h>

#include <algorithm>
#include <array>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <vector>

namespace vmgate::auth {

namespace {

// Names Cyrus reads config files by (<appname>.conf); we refuse to read any, see below.
constexpr const char* kAppName = "vmgate";

// Cyrus' compiled-in default on Debian (the sasldb's is sasldb_path's), stated explicitly so that
// no option we own is ever left for a config file to fill in.
constexpr const char* kDefaultSaslauthdPath = "/var/run/saslauthd/mux";

// SASL_LOG_NOTE: failures and notes, never SASL_LOG_PASS, which would log passwords.
constexpr const char* kLogLevel = "4";

// Any TLS cipher strength: the probe only needs Cyrus to list what it offers inside TLS.
constexpr unsigned kProbeExternalSsf = 256;

// Broken or plaintext-equivalent mechanisms; refused unless allow_weak_mechanisms is set.
const std::set<std::string, std::less<>> kWeakMechanisms{"ANONYMOUS", "CRAM-MD5", "DIGEST-MD5",
                                                         "NTLM", "OTP"};

using CyrusOptions = std::map<std::string, std::string, std::less<>>;

// State behind Cyrus' process-global callbacks. Leaked on purpose: Cyrus may call back until the
// very end of the process, after static destructors have run.
struct ProcessState {
    std::mutex mutex;  // guards everything but options, which are frozen before Cyrus starts
    bool initialised = false;
    CyrusOptions options;
    std::string configured_realm;
    std::string init_error;
    std::shared_ptr<SaslServerContext> context;
    std::mutex log_mutex;
    SaslLogger logger;
};

ProcessState& process_state() {
    static auto* state = new ProcessState;
    return *state;
}

std::string space_joined(const std::vector<std::string>& words) {
    std::string joined;
    for (const auto& word : words) joined += (joined.empty() ? "" : " ") + word;
    return joined;
}

// Every option Cyrus could otherwise take from a config file and that decides who gets in.
CyrusOptions cyrus_options(const core::SaslConfig& config) {
    return CyrusOptions{
        {"mech_list", space_joined(config.mech_list)},
        {"pwcheck_method", config.pwcheck_method},
        // sasldb is the only store vmgate configures; naming it also keeps a config file from
        // pulling in ldapdb or sql behind our back, even when passwords go to saslauthd.
        {"auxprop_plugin", "sasldb"},
        {"sasldb_path", sasldb_path(config)},
        {"saslauthd_path",
         config.saslauthd_path.empty() ? kDefaultSaslauthdPath : config.saslauthd_path},
        {"auto_transition", "no"},  // a login must never write to the user database
        {"canon_user_plugin", "INTERNAL"},
        {"log_level", kLogLevel},
    };
}

int answer_option(void* /*context*/, const char* /*plugin_name*/, const char* option,
                  const char** result, unsigned* len) {
    const auto& options = process_state().options;
    const auto found = options.find(std::string_view(option));
    if (found == options.end()) return SASL_FAIL;
    *result = found->second.c_str();
    if (len != nullptr) *len = static_cast<unsigned>(found->second.size());
    return SASL_OK;
}

SaslLogLevel to_level(int cyrus_level) {
    if (cyrus_level <= SASL_LOG_FAIL) return SaslLogLevel::error;
    return cyrus_level == SASL_LOG_WARN ? SaslLogLevel::warning : SaslLogLevel::note;
}

int forward_log(void* /*context*/, int level, const char* message) {
    auto& state = process_state();
    std::lock_guard lock(state.log_mutex);
    if (state.logger) state.logger(to_level(level), message != nullptr ? message : "");
    return SASL_OK;
}

// Cyrus would read <SASL_CONF_PATH or /etc/sasl2>/vmgate.conf. Answering our options is not
// enough to overrule it: lookups made without a connection (auxprop_plugin in sasl_setpass, for
// one) skip the getopt callback and read the file directly. Skipping every config file keeps
// vmgate's own configuration the only source of SASL options.
int refuse_config_files(void* /*context*/, const char* /*file*/, sasl_verify_type_t type) {
    return type == SASL_VRFY_CONF ? SASL_CONTINUE : SASL_OK;
}

// sasl_callback_t stores every callback as int(*)(void); going through void(*)() keeps
// -Wcast-function-type quiet about the deliberate type erasure.
template <typename Function>
int (*erase(Function* function))() {
    return reinterpret_cast<int (*)()>(reinterpret_cast<void (*)()>(function));
}

const sasl_callback_t* global_callbacks() {
    // Cyrus keeps this pointer for the life of the process.
    static const std::array<sasl_callback_t, 4> callbacks{{
        {SASL_CB_GETOPT, erase(&answer_option), nullptr},
        {SASL_CB_LOG, erase(&forward_log), nullptr},
        {SASL_CB_VERIFYFILE, erase(&refuse_config_files), nullptr},
        {SASL_CB_LIST_END, nullptr, nullptr},
    }};
    return callbacks.data();
}

bool is_mechanism_name(const std::string& name) {
    // RFC 4422 §3.1: 1 to 20 characters of A-Z, 0-9, '-' and '_'.
    return !name.empty() && name.size() <= SASL_MECHNAMEMAX &&
           std::all_of(name.begin(), name.end(), [](char c) {
               return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
           });
}

bool validate(const core::SaslConfig& config, std::string& error) {
    if (config.mech_list.empty()) {
        error = "sasl.mech_list: empty; name at least one mechanism";
        return false;
    }
    for (const auto& mech : config.mech_list) {
        if (!is_mechanism_name(mech)) {
            error = "sasl.mech_list: \"" + mech + "\" is not a SASL mechanism name";
            return false;
        }
        if (!config.allow_weak_mechanisms && kWeakMechanisms.contains(mech)) {
            error = "sasl.mech_list: " + mech + " is weak; set allow_weak_mechanisms to use it";
            return false;
        }
    }
    if (config.pwcheck_method != "auxprop" && config.pwcheck_method != "saslauthd") {
        error = "sasl.pwcheck_method: \"" + config.pwcheck_method +
                "\" is neither \"auxprop\" nor \"saslauthd\"";
        return false;
    }
    return true;
}

std::vector<std::string> split_commas(const std::string& list) {
    std::vector<std::string> words;
    std::istringstream in(list);
    for (std::string word; std::getline(in, word, ',');)
        if (!word.empty()) words.push_back(word);
    return words;
}

// Asks Cyrus, through a throwaway connection, for its default realm and for the mechanisms it
// really offers over TLS: a configured mechanism whose plugin is missing is a config error.
bool probe(const std::vector<std::string>& mech_list, std::string& default_realm,
           std::string& error) {
    CyrusConn conn = new_server_conn("vmgate", "", "", "", error);
    if (!conn || !apply_tls_properties(conn.get(), kProbeExternalSsf, error)) return false;
    const void* fqdn = nullptr;
    if (sasl_getprop(conn.get(), SASL_SERVERFQDN, &fqdn) != SASL_OK || fqdn == nullptr) {
        error = "Cyrus SASL knows no host name: " + error_detail(conn.get());
        return false;
    }
    default_realm = static_cast<const char*>(fqdn);
    const char* listed = nullptr;
    if (sasl_listmech(conn.get(), nullptr, "", ",", "", &listed, nullptr, nullptr) != SASL_OK) {
        error = "sasl_listmech: " + error_detail(conn.get());
        return false;
    }
    const auto offered = split_commas(listed);
    for (const auto& mech : mech_list) {
        if (std::find(offered.begin(), offered.end(), mech) == offered.end()) {
            error = "sasl.mech_list: " + mech +
                    " is not available; is its Cyrus SASL plugin (libsasl2-modules) installed?";
            return false;
        }
    }
    return true;
}

// No sasl_set_mutex(): each sasl_conn_t belongs to one connection on one thread, and real
// mutexes installed now would be handed the dummy ones another in-process Cyrus user (libvirt's
// SASL client) may already have allocated with the default functions.
bool init_cyrus(std::string& error) {
    const int rc = sasl_server_init(global_callbacks(), kAppName);
    if (rc != SASL_OK) {
        error = std::string("sasl_server_init: ") + sasl_errstring(rc, nullptr, nullptr);
        return false;
    }
    return true;
}

std::string different_options_error() {
    return "Cyrus SASL is already initialised in this process with other [sasl] options; "
           "restart vmgate to change them";
}

}  // namespace

std::shared_ptr<SaslServerContext> SaslServerContext::create(const core::SaslConfig& config,
                                                             std::string& error) {
    if (!validate(config, error)) return nullptr;
    auto& state = process_state();
    std::lock_guard lock(state.mutex);
    auto options = cyrus_options(config);
    if (state.initialised) {
        if (options != state.options || config.default_realm != state.configured_realm) {
            error = different_options_error();
            return nullptr;
        }
        if (!state.context) error = state.init_error;
        return state.context;
    }
    state.initialised = true;
    state.options = std::move(options);
    state.configured_realm = config.default_realm;
    std::string cyrus_realm;
    if (!init_cyrus(state.init_error) || !probe(config.mech_list, cyrus_realm, state.init_error)) {
        error = state.init_error;
        return nullptr;
    }
    const auto realm = config.default_realm.empty() ? cyrus_realm : config.default_realm;
    state.context.reset(new SaslServerContext(config.default_realm, realm, config.pwcheck_method == "auxprop"));
    return state.context;
}

SaslServerContext::SaslServerContext(std::string configured_realm, std::string default_realm,
                                     bool backend_checks_realm)
    : configured_realm_(std::move(configured_realm)), default_realm_(std::move(default_realm)),
      backend_checks_realm_(backend_checks_realm) {}

void SaslServerContext::set_logger(SaslLogger logger) {
    auto& state = process_state();
    std::lock_guard lock(state.log_mutex);
    state.logger = std::move(logger);
}

}  // namespace vmgate::auth
