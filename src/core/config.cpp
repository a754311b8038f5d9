// TOML -> Config. Every reader reports into one error list instead of stopping at the first
// problem, so an admin can fix a whole file in one pass. A value that fails is skipped, never
// guessed, and the Config is only handed out when the list stays empty.
#include "core/config.hpp"

#include <unistd.h>

#include <array>

#include <fmt/format.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <limits>
#include <memory>
#include <set>
#include <span>
#include <system_error>
#include <utility>

namespace vmgate::core {
namespace {

using GroupMap = std::map<std::string, std::vector<std::string>>;

constexpr std::string_view top_level_keys[] = {"gateway", "tls", "sasl", "libvirt", "groups", "listener", "vm"};
constexpr std::string_view libvirt_keys[] = {"uri", "vms"};
constexpr std::string_view gateway_keys[] = {"state_dir",    "audit_log",         "metrics",
                                             "admin_socket", "handshake_timeout", "max_handshakes",
                                             "max_handshakes_per_source", "workers", "ticket_key_stock"};
constexpr std::string_view tls_keys[] = {"cert", "key", "client_ca", "client_cert", "client_identity"};
constexpr std::string_view sasl_keys[] = {"mech_list",     "sasldb",        "pwcheck_method",
                                          "saslauthd_path", "service_spice", "service_vnc",
                                          "default_realm", "allow_weak_mechanisms"};
constexpr std::string_view listener_keys[] = {"protocol", "address",    "tls", "vm",
                                              "route",    "sni_suffix", "connect_suffix", "auth"};
constexpr std::string_view vm_keys[] = {"name", "spice",        "vnc",         "password_file",
                                        "seat", "idle_timeout", "max_session", "allow"};
constexpr std::string_view rule_keys[] = {"users", "groups",  "days",      "hours",        "from",
                                          "until", "sources", "view_only", "deny_channels"};

// Channels a rule may take away; "main" is not among them because no session works without it.
constexpr std::string_view deniable_channels[] = {"display", "inputs",    "cursor",   "playback", "record",
                                                  "smartcard", "usbredir", "port", "webdav"};

constexpr std::int64_t max_workers = 256;
// A key is about 1.5 KiB and 3 ms of one core: a typo must not cost gigabytes or minutes.
constexpr std::int64_t max_ticket_key_stock = 10'000;
constexpr std::int64_t max_handshake_limit = 1'000'000;
constexpr std::size_t max_dns_label = 63;
constexpr int minutes_per_hour = 60;
constexpr int minutes_per_day = 24 * minutes_per_hour;
constexpr std::string_view unix_group_prefix = "unix:";
constexpr std::string_view unix_scheme = "unix:";
constexpr std::string_view tcp_scheme = "tcp:";
constexpr std::string_view qmp_scheme = "qmp:";
constexpr std::string_view libvirt_scheme = "libvirt:";
constexpr std::string_view text_source_name = "<config text>";

template <class E>
struct Choice {
    std::string_view name;
    E value;
};

constexpr Choice<Protocol> protocol_choices[] = {{"spice", Protocol::spice}, {"vnc", Protocol::vnc}};
constexpr Choice<Route> route_choices[] = {{"fixed", Route::fixed}, {"sni", Route::sni}, {"connect", Route::connect}};
constexpr Choice<ClientCertMode> client_cert_choices[] = {{"none", ClientCertMode::none},
                                                          {"optional", ClientCertMode::optional},
                                                          {"required", ClientCertMode::required}};
constexpr Choice<CertIdentityField> client_identity_choices[] = {{"cn", CertIdentityField::cn},
                                                                 {"email", CertIdentityField::email},
                                                                 {"upn", CertIdentityField::upn}};
constexpr Choice<SeatPolicy> seat_choices[] = {{"takeover", SeatPolicy::takeover},
                                               {"deny", SeatPolicy::deny},
                                               {"same-user", SeatPolicy::same_user}};
constexpr Choice<AuthMethod> auth_choices[] = {{"sasl", AuthMethod::sasl},
                                               {"ticket", AuthMethod::ticket},
                                               {"password", AuthMethod::password},
                                               {"certificate", AuthMethod::certificate}};
constexpr Choice<std::string_view> pwcheck_choices[] = {{"auxprop", "auxprop"}, {"saslauthd", "saslauthd"}};

struct WeakMechanism {
    std::string_view name;
    std::string_view why;
};

// Refused unless allow_weak_mechanisms = true; each with the reason shown to the admin.
constexpr WeakMechanism weak_mechanisms[] = {
    {"DIGEST-MD5", "DIGEST-MD5 is obsolete (RFC 6331)"},
    {"CRAM-MD5", "CRAM-MD5 is obsolete: it rests on MD5 and needs plaintext-equivalent stored secrets"},
    {"LOGIN", "LOGIN is a non-standard variant of PLAIN; use PLAIN"},
    {"ANONYMOUS", "ANONYMOUS authenticates nobody, so every client would pass"},
    {"NTLM", "NTLM is broken (relay and offline cracking attacks)"},
    {"OTP", "OTP relies on obsolete MD4/MD5/SHA-1 hash chains (RFC 2289)"},
};
constexpr std::string_view strong_mechanisms[] = {"GSSAPI", "GS2-KRB5", "PLAIN"};
constexpr std::string_view scram_prefix = "SCRAM-";

// A parsed value, or why it could not be parsed, worded for an admin.
template <class T>
struct Checked {
    std::optional<T> value;
    std::string problem;
};

// ---------------------------------------------------------------------------------- text helpers

template <class Range>
std::string join(const Range& words) {
    std::string out;
    for (const auto& word : words) {
        if (!out.empty()) out += ", ";
        out += word;
    }
    return out;
}

std::string lowercase(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(), [](char c) {
        return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    });
    return out;
}

std::string uppercase(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(), [](char c) {
        return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
    });
    return out;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Levenshtein distance, for did-you-mean hints.
std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diagonal = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t above = row[j];
            const std::size_t substitution = diagonal + (a[i - 1] == b[j - 1] ? 0 : 1);
            row[j] = std::min({above + 1, row[j - 1] + 1, substitution});
            diagonal = above;
        }
    }
    return row[b.size()];
}

// " (did you mean "x"?)" when WORD looks like a typo of one candidate, else "". Case is ignored
// when comparing, since "VM1" for "vm1" is a typo too.
template <class Range>
std::string did_you_mean(std::string_view word, const Range& candidates) {
    std::string_view best;
    std::size_t best_distance = std::numeric_limits<std::size_t>::max();
    for (std::string_view candidate : candidates) {
        if (candidate == word) continue;
        const std::size_t distance = edit_distance(lowercase(word), lowercase(candidate));
        if (distance < best_distance) {
            best = candidate;
            best_distance = distance;
        }
    }
    // Two edits at most, and never most of the word: beyond that a hint is noise.
    if (best_distance > 2 || best_distance * 2 > word.size()) return {};
    return fmt::format(" (did you mean \"{}\"?)", best);
}

std::string describe(const toml::node& node) {
    switch (node.type()) {
        case toml::node_type::string: return fmt::format("string \"{}\"", node.as_string()->get());
        case toml::node_type::integer: return fmt::format("integer {}", node.as_integer()->get());
        case toml::node_type::floating_point: return fmt::format("float {}", node.as_floating_point()->get());
        case toml::node_type::boolean: return fmt::format("boolean {}", node.as_boolean()->get());
        case toml::node_type::table: return "a table";
        case toml::node_type::array: return "an array";
        case toml::node_type::date: return "a date";
        case toml::node_type::time: return "a time";
        case toml::node_type::date_time: return "a date-time";
        case toml::node_type::none: break;
    }
    return "nothing";
}

template <class E, std::size_t N>
Checked<E> match(std::string_view text, const Choice<E> (&choices)[N]) {
    std::vector<std::string_view> names;
    for (const auto& choice : choices) {
        if (choice.name == text) return {choice.value, {}};
        names.push_back(choice.name);
    }
    return {std::nullopt,
            fmt::format("expected one of {}; got \"{}\"{}", join(names), text, did_you_mean(text, names))};
}

template <class E, std::size_t N>
std::string_view name_of(E value, const Choice<E> (&choices)[N]) {
    for (const auto& choice : choices)
        if (choice.value == value) return choice.name;
    return "?";
}

// --------------------------------------------------------------------------------- value parsers

// Up to 9 decimal digits, so the caller's arithmetic cannot overflow.
std::optional<int> parse_number(std::string_view digits) {
    constexpr std::size_t max_digits = 9;
    if (digits.empty() || digits.size() > max_digits) return std::nullopt;
    int value = 0;
    for (char c : digits) {
        if (!is_digit(c)) return std::nullopt;
        value = value * 10 + (c - '0');
    }
    return value;
}

constexpr std::string_view address_forms = "\"HOST:PORT\" or \"[IPV6]:PORT\"";

// "HOST:PORT" or "[IPV6]:PORT"; a bare IPv6 address is refused since its last group looks like a port.
Checked<HostPort> parse_host_port(std::string_view text) {
    std::string_view host;
    std::string_view port_text;
    if (text.starts_with('[')) {
        const std::size_t close = text.find(']');
        if (close == std::string_view::npos || text.substr(close + 1, 1) != ":")
            return {std::nullopt, fmt::format("expected {}, got \"{}\"", address_forms, text)};
        host = text.substr(1, close - 1);
        port_text = text.substr(close + 2);
    } else {
        const std::size_t colon = text.rfind(':');
        if (colon == std::string_view::npos)
            return {std::nullopt, fmt::format("expected {}, got \"{}\"", address_forms, text)};
        host = text.substr(0, colon);
        port_text = text.substr(colon + 1);
        if (host.find(':') != std::string_view::npos)
            return {std::nullopt,
                    fmt::format("an IPv6 address needs brackets, like \"[::1]:5900\"; got \"{}\"", text)};
    }
    if (host.empty())
        return {std::nullopt, fmt::format("the host is missing in \"{}\"; use 0.0.0.0 or [::] for every address", text)};
    const auto port = parse_number(port_text);
    if (!port || *port < 1 || *port > std::numeric_limits<std::uint16_t>::max())
        return {std::nullopt, fmt::format("port must be a number from 1 to 65535, got \"{}\"", port_text)};
    return {HostPort{std::string(host), static_cast<std::uint16_t>(*port)}, {}};
}

}  // namespace

std::optional<HostPort> split_host_port(std::string_view text) { return parse_host_port(text).value; }

namespace {

std::optional<std::string> address_problem(std::string_view text) {
    auto parsed = parse_host_port(text);
    if (parsed.value) return std::nullopt;
    return std::move(parsed.problem);
}

// "unix:/ABSOLUTE/PATH", "tcp:HOST:PORT", "qmp:/ABSOLUTE/PATH" or "libvirt:DOMAIN".
Checked<UpstreamConfig> parse_upstream(std::string_view text) {
    UpstreamConfig upstream;
    upstream.text = text;
    if (text.starts_with(unix_scheme) || text.starts_with(qmp_scheme)) {
        const bool qmp = text.starts_with(qmp_scheme);
        upstream.kind = qmp ? UpstreamConfig::Kind::qmp : UpstreamConfig::Kind::unix_socket;
        upstream.path = text.substr(qmp ? qmp_scheme.size() : unix_scheme.size());
        if (!upstream.path.starts_with('/'))
            return {std::nullopt, fmt::format("the {} socket path must be absolute, got \"{}\"",
                                              qmp ? "QMP" : "unix", upstream.path)};
        return {std::move(upstream), {}};
    }
    if (text.starts_with(tcp_scheme)) {
        auto address = parse_host_port(text.substr(tcp_scheme.size()));
        if (!address.value) return {std::nullopt, std::move(address.problem)};
        upstream.kind = UpstreamConfig::Kind::tcp;
        upstream.host = address.value->host;
        upstream.port = address.value->port;
        return {std::move(upstream), {}};
    }
    if (text.starts_with(libvirt_scheme)) {
        upstream.kind = UpstreamConfig::Kind::libvirt;
        upstream.domain = text.substr(libvirt_scheme.size());
        if (upstream.domain.empty())
            return {std::nullopt, "\"libvirt:\" needs the domain's name or UUID, like \"libvirt:debianx\""};
        return {std::move(upstream), {}};
    }
    return {std::nullopt, fmt::format("expected \"unix:/ABSOLUTE/PATH\", \"tcp:HOST:PORT\", \"qmp:/ABSOLUTE/PATH\" "
                                      "or \"libvirt:DOMAIN\", got \"{}\"", text)};
}

// RFC 1123 label, lowercase only: SNI routing compares the first label of the server name to it.
bool is_dns_label(std::string_view name) {
    if (name.empty() || name.size() > max_dns_label || name.front() == '-' || name.back() == '-') return false;
    return std::all_of(name.begin(), name.end(),
                       [](char c) { return (c >= 'a' && c <= 'z') || is_digit(c) || c == '-'; });
}

// "charlie" or "charlie@REALM". The realm follows the last '@', as Cyrus splits it.
std::optional<std::string> user_name_problem(std::string_view user) {
    if (user.empty()) return "empty user name";
    if (std::any_of(user.begin(), user.end(), [](char c) { return static_cast<unsigned char>(c) <= ' '; }))
        return fmt::format("\"{}\" is not a user name: it contains a space or control character", user);
    const std::size_t at = user.rfind('@');
    if (at == 0 || (at != std::string_view::npos && at + 1 == user.size()))
        return fmt::format("expected \"user\" or \"user@realm\", got \"{}\"", user);
    return std::nullopt;
}

std::optional<std::string> group_member_problem(std::string_view member) {
    if (member.starts_with(unix_group_prefix)) {
        if (member.size() == unix_group_prefix.size())
            return "\"unix:\" needs a group name, like \"unix:staff\"";
        return std::nullopt;
    }
    return user_name_problem(member);
}

std::optional<Weekday> parse_weekday(std::string_view name) {
    const std::string lower = lowercase(name);
    for (unsigned d = 0; d < 7; ++d) {
        const auto day = static_cast<Weekday>(d);
        if (to_string(day) == lower) return day;
    }
    return std::nullopt;
}

std::string unknown_day(std::string_view name) {
    return fmt::format("unknown day \"{}\"; use mon, tue, wed, thu, fri, sat, sun, or a range like \"mon-fri\"",
                       name);
}

// "wed" or a range "mon-fri"; a range may wrap past Sunday ("fri-mon").
Checked<DaySet> parse_day_entry(std::string_view text) {
    const std::size_t dash = text.find('-');
    const std::string_view first_name = text.substr(0, dash);
    const std::string_view last_name = dash == std::string_view::npos ? first_name : text.substr(dash + 1);
    const auto first = parse_weekday(first_name);
    if (!first) return {std::nullopt, unknown_day(first_name)};
    const auto last = parse_weekday(last_name);
    if (!last) return {std::nullopt, unknown_day(last_name)};
    DaySet days;
    for (auto d = static_cast<unsigned>(*first);; d = (d + 1) % 7) {
        days.add(static_cast<Weekday>(d));
        if (d == static_cast<unsigned>(*last)) break;
    }
    return {days, {}};
}

// "HH:MM", 00:00 to 24:00, as minutes since midnight.
std::optional<int> parse_clock(std::string_view text) {
    if (text.size() != 5 || text[2] != ':') return std::nullopt;
    const auto hours = parse_number(text.substr(0, 2));
    const auto minutes = parse_number(text.substr(3, 2));
    if (!hours || !minutes || *minutes >= minutes_per_hour) return std::nullopt;
    const int total = *hours * minutes_per_hour + *minutes;
    if (total > minutes_per_day) return std::nullopt;
    return total;
}

Checked<TimeWindow> parse_time_window(std::string_view text) {
    constexpr std::size_t window_length = 11;  // "HH:MM-HH:MM"
    if (text.size() != window_length || text[5] != '-')
        return {std::nullopt, fmt::format("expected \"HH:MM-HH:MM\", got \"{}\"", text)};
    const std::string_view start_text = text.substr(0, 5);
    const std::string_view end_text = text.substr(6);
    const auto start = parse_clock(start_text);
    const auto end = parse_clock(end_text);
    if (!start || !end)
        return {std::nullopt,
                fmt::format("\"{}\" is not a time of day; use 00:00 to 24:00", start ? end_text : start_text)};
    if (*start == minutes_per_day) return {std::nullopt, "24:00 can only end a window; start it at 00:00"};
    if (*start == *end)
        return {std::nullopt, fmt::format("\"{}\" starts and ends at the same time; omit hours for the whole day",
                                          text)};
    return {TimeWindow{*start, *end}, {}};
}

Checked<Date> parse_date(std::string_view text) {
    const std::string form = fmt::format("expected a date \"YYYY-MM-DD\", got \"{}\"", text);
    if (text.size() != 10 || text[4] != '-' || text[7] != '-') return {std::nullopt, form};
    const auto year = parse_number(text.substr(0, 4));
    const auto month = parse_number(text.substr(5, 2));
    const auto day = parse_number(text.substr(8, 2));
    if (!year || !month || !day) return {std::nullopt, form};
    const std::chrono::year_month_day calendar{std::chrono::year{*year},
                                               std::chrono::month{static_cast<unsigned>(*month)},
                                               std::chrono::day{static_cast<unsigned>(*day)}};
    if (!calendar.ok()) return {std::nullopt, fmt::format("\"{}\" is not a calendar date", text)};
    return {Date{*year, *month, *day}, {}};
}

bool is_scram(std::string_view mechanism) {
    return mechanism.starts_with(scram_prefix) && mechanism.size() > scram_prefix.size();
}

std::optional<std::string> mechanism_problem(std::string_view mechanism, bool allow_weak) {
    for (const auto& weak : weak_mechanisms) {
        if (weak.name != mechanism) continue;
        if (allow_weak) return std::nullopt;
        return fmt::format("{}; remove it, or set allow_weak_mechanisms = true to offer it anyway", weak.why);
    }
    if (is_scram(mechanism) ||
        std::find(std::begin(strong_mechanisms), std::end(strong_mechanisms), mechanism) != std::end(strong_mechanisms))
        return std::nullopt;
    return fmt::format("unknown SASL mechanism \"{}\"; accepted: GSSAPI, GS2-KRB5, SCRAM-SHA-1, SCRAM-SHA-256, "
                       "SCRAM-SHA-512 (any SCRAM-*), PLAIN",
                       mechanism);
}

std::string scram_with_saslauthd(std::string_view mechanism) {
    return fmt::format("{} needs secrets stored by the server (sasldb through auxprop), but saslauthd only "
                       "checks plaintext passwords; with saslauthd use PLAIN (only ever offered inside TLS), "
                       "or set pwcheck_method = \"auxprop\"",
                       mechanism);
}

// ------------------------------------------------------------------------------ error collection

int to_int(toml::source_index index) { return static_cast<int>(index); }

SourceLocation location(const toml::node& node) {
    return {to_int(node.source().begin.line), to_int(node.source().begin.column)};
}

class Errors {
public:
    explicit Errors(std::string file) : file_(std::move(file)) {}

    void add(const toml::source_region& where, std::string key, std::string message) {
        errors_.push_back(ConfigError{file_, to_int(where.begin.line), to_int(where.begin.column), std::move(key),
                                      std::move(message)});
    }
    void add(const toml::node& where, std::string key, std::string message) {
        add(where.source(), std::move(key), std::move(message));
    }

    // In file order, whatever order the checks ran in.
    std::vector<ConfigError> sorted() const {
        std::vector<ConfigError> out = errors_;
        std::stable_sort(out.begin(), out.end(), [](const ConfigError& a, const ConfigError& b) {
            return std::pair(a.line, a.column) < std::pair(b.line, b.column);
        });
        return out;
    }

private:
    std::string file_;
    std::vector<ConfigError> errors_;
};

// One element of an array of strings, with what an error about it needs.
struct Entry {
    std::string value;
    const toml::node* node = nullptr;
    std::string path;
};

// One TOML table being read. It knows its dotted path (for error keys) and how admins write its
// header (for messages). It remembers which keys were malformed, so that later cross-checks stay
// quiet about them instead of piling a second, misleading error on the first.
class Section {
public:
    Section(Errors& errors, const toml::table& table, std::string path, std::string title)
        : errors_(&errors), table_(&table), path_(std::move(path)), title_(std::move(title)) {}

    const toml::table& table() const { return *table_; }
    SourceLocation where() const { return location(*table_); }
    bool has(std::string_view key) const { return table_->contains(key); }
    // Written and well-formed.
    bool usable(std::string_view key) const { return has(key) && !bad_.contains(key); }
    bool bad(std::string_view key) const { return bad_.contains(key); }

    std::string path() const { return path_; }
    std::string path(std::string_view key) const {
        return path_.empty() ? std::string(key) : fmt::format("{}.{}", path_, key);
    }

    // At the key's value when it is written, else at the table header (a missing key).
    void error(std::string_view key, std::string message) const {
        bad_.emplace(key);
        const toml::node* node = table_->get(key);
        errors_->add(node ? *node : static_cast<const toml::node&>(*table_), path(key), std::move(message));
    }
    void error(std::string message) const { errors_->add(*table_, path_, std::move(message)); }
    void error(const Entry& entry, std::string message) const {
        errors_->add(*entry.node, entry.path, std::move(message));
    }
    void expected(std::string_view key, std::string_view what) const {
        error(key, fmt::format("expected {}, got {}", what, describe(*table_->get(key))));
    }

    void reject_unknown(std::span<const std::string_view> known) const {
        const std::string place = title_.empty() ? "at the top level" : "in " + title_;
        for (const auto& [key, value] : *table_) {
            if (std::find(known.begin(), known.end(), key.str()) != known.end()) continue;
            errors_->add(key.source(), path(key.str()),
                         fmt::format("unknown key \"{}\" {}{}; known keys: {}", key.str(), place,
                                     did_you_mean(key.str(), known), join(known)));
        }
    }

    // Reports a missing required key; EXAMPLE shows how to write it.
    bool require(std::string_view key, std::string_view example) const {
        if (has(key)) return true;
        error(key, fmt::format("missing; every {} needs {} = {}", title_, key, example));
        return false;
    }

    std::optional<std::string> string(std::string_view key) const {
        const toml::node* node = table_->get(key);
        if (!node) return std::nullopt;
        if (const auto* text = node->as_string()) return text->get();
        expected(key, "a string");
        return std::nullopt;
    }

    // A string that must not be empty when written (paths, service names).
    std::optional<std::string> nonempty_string(std::string_view key) const {
        auto text = string(key);
        if (text && text->empty()) {
            error(key, "must not be empty; omit the key to use the default");
            return std::nullopt;
        }
        return text;
    }

    std::optional<std::int64_t> integer(std::string_view key) const {
        const toml::node* node = table_->get(key);
        if (!node) return std::nullopt;
        if (const auto* number = node->as_integer()) return number->get();
        expected(key, "an integer");
        return std::nullopt;
    }

    void read(std::string_view key, std::string& out) const {
        if (auto text = string(key)) out = std::move(*text);
    }

    void read(std::string_view key, bool& out) const {
        const toml::node* node = table_->get(key);
        if (!node) return;
        if (const auto* flag = node->as_boolean()) out = flag->get();
        else expected(key, "true or false");
    }

    void read(std::string_view key, std::chrono::seconds& out) const {
        const toml::node* node = table_->get(key);
        if (!node) return;
        const auto* text = node->as_string();
        const auto duration = text ? parse_duration(text->get()) : std::nullopt;
        if (duration) out = *duration;
        else expected(key, "a duration greater than zero like \"45s\", \"30m\", \"1h30m\" or \"2d\"");
    }

    template <class E, std::size_t N>
    std::optional<E> choice(std::string_view key, const Choice<E> (&choices)[N]) const {
        const auto text = string(key);
        if (!text) return std::nullopt;
        auto matched = match(*text, choices);
        if (!matched.value) error(key, std::move(matched.problem));
        return matched.value;
    }

    // nullopt when the key is missing or not an array; elements that are not strings are reported.
    std::optional<std::vector<Entry>> strings(std::string_view key) const {
        const toml::node* node = table_->get(key);
        if (!node) return std::nullopt;
        const toml::array* array = node->as_array();
        if (!array) {
            expected(key, "an array of strings, like [\"...\"]");
            return std::nullopt;
        }
        std::vector<Entry> entries;
        for (std::size_t i = 0; i < array->size(); ++i) {
            const toml::node& element = *array->get(i);
            std::string element_path = fmt::format("{}[{}]", path(key), i);
            if (const auto* text = element.as_string()) {
                entries.push_back({text->get(), &element, std::move(element_path)});
            } else {
                bad_.emplace(key);
                errors_->add(element, std::move(element_path),
                             fmt::format("expected a string, got {}", describe(element)));
            }
        }
        return entries;
    }

    // A [name] table.
    std::optional<Section> table(std::string_view key) const {
        const toml::node* node = table_->get(key);
        if (!node) return std::nullopt;
        const std::string title = fmt::format("[{}]", key);
        if (const toml::table* sub = node->as_table()) return Section(*errors_, *sub, path(key), title);
        expected(key, fmt::format("a {} table", title));
        return std::nullopt;
    }

    // [[name]] tables (or an array of inline tables).
    std::vector<Section> tables(std::string_view key, std::string_view title) const {
        const toml::node* node = table_->get(key);
        if (!node) return {};
        const toml::array* array = node->as_array();
        if (!array || !(array->empty() || array->is_array_of_tables())) {
            expected(key, fmt::format("{} sections (an array of tables)", title));
            return {};
        }
        std::vector<Section> sections;
        for (std::size_t i = 0; i < array->size(); ++i)
            sections.emplace_back(*errors_, *array->get(i)->as_table(), fmt::format("{}[{}]", path(key), i),
                                  std::string(title));
        return sections;
    }

private:
    Errors* errors_;
    const toml::table* table_;
    std::string path_;
    std::string title_;
    mutable std::set<std::string, std::less<>> bad_;
};

// ------------------------------------------------------------------------------ section readers

// An integer key that must lie in [low, high]; `hint` explains special values.
void read_bounded(const Section& s, std::string_view key, std::int64_t low, std::int64_t high,
                  std::string_view hint, unsigned& target) {
    const auto value = s.integer(key);
    if (!value) return;
    if (*value < low || *value > high)
        s.error(key, fmt::format("expected {} to {}{}, got {}", low, high, hint, *value));
    else
        target = static_cast<unsigned>(*value);
}

GatewayConfig read_gateway(const Section& s) {
    s.reject_unknown(gateway_keys);
    GatewayConfig gateway;
    if (auto dir = s.nonempty_string("state_dir")) gateway.state_dir = *dir;
    if (auto log = s.nonempty_string("audit_log")) gateway.audit_log = *log;
    if (auto socket = s.nonempty_string("admin_socket")) gateway.admin_socket = *socket;
    if (auto metrics = s.string("metrics")) {
        if (auto problem = metrics->empty() ? std::nullopt : address_problem(*metrics))
            s.error("metrics", *problem + "; \"\" turns metrics off");
        gateway.metrics = *metrics;
    }
    s.read("handshake_timeout", gateway.handshake_timeout);
    read_bounded(s, "max_handshakes", 1, max_handshake_limit, "", gateway.max_handshakes);
    read_bounded(s, "max_handshakes_per_source", 1, max_handshake_limit, "", gateway.max_handshakes_per_source);
    read_bounded(s, "workers", 0, max_workers, " (0 = one per CPU)", gateway.workers);
    read_bounded(s, "ticket_key_stock", 0, max_ticket_key_stock, " (0 = every key made when needed)",
                 gateway.ticket_key_stock);
    if (gateway.max_handshakes_per_source > gateway.max_handshakes) {
        if (s.integer("max_handshakes_per_source"))
            s.error("max_handshakes_per_source",
                    fmt::format("{} is more than max_handshakes ({}), so it would never apply",
                                gateway.max_handshakes_per_source, gateway.max_handshakes));
        gateway.max_handshakes_per_source = gateway.max_handshakes;  // the default follows a lower total
    }
    return gateway;
}

void check_client_cert(const Section& s, const TlsConfig& tls) {
    if (tls.client_cert != ClientCertMode::none && !s.has("client_ca"))
        s.error("client_cert", fmt::format("client_cert = \"{}\" needs client_ca, the CA file that signs client "
                                           "certificates",
                                           name_of(tls.client_cert, client_cert_choices)));
    // An admin who names the certificate field expects certificates to be asked for; saying
    // nothing would leave them believing clients log in with one.
    if (tls.client_cert == ClientCertMode::none && s.usable("client_identity") && !s.bad("client_cert"))
        s.error("client_identity", "has no effect without client_cert: no client is asked for a certificate; set "
                                   "client_cert = \"optional\" or \"required\" (with client_ca), or remove "
                                   "client_identity");
}

TlsConfig read_tls(const Section& s) {
    s.reject_unknown(tls_keys);
    TlsConfig tls;
    if (auto cert = s.nonempty_string("cert")) tls.cert = *cert;
    if (auto key = s.nonempty_string("key")) tls.key = *key;
    if (auto ca = s.nonempty_string("client_ca")) tls.client_ca = *ca;
    if (auto mode = s.choice("client_cert", client_cert_choices)) tls.client_cert = *mode;
    if (auto field = s.choice("client_identity", client_identity_choices)) tls.client_identity = *field;
    if (s.usable("cert") != s.usable("key") && !s.bad("cert") && !s.bad("key")) {
        const bool cert_missing = !s.has("cert");
        s.error(cert_missing ? "key" : "cert",
                fmt::format("{} is set but {} is not; the certificate and its private key go together",
                            cert_missing ? "key" : "cert", cert_missing ? "cert" : "key"));
    }
    check_client_cert(s, tls);
    return tls;
}

// Sets sasl.mech_list when written; returns the written entries for later checks.
std::vector<Entry> read_mech_list(const Section& s, SaslConfig& sasl) {
    auto entries = s.strings("mech_list");
    if (!entries) return {};
    if (entries->empty())
        s.error("mech_list", "empty list; name at least one mechanism, like [\"SCRAM-SHA-256\", \"PLAIN\"]");
    sasl.mech_list.clear();
    for (const Entry& entry : *entries) {
        std::string mechanism = uppercase(entry.value);
        if (auto problem = mechanism_problem(mechanism, sasl.allow_weak_mechanisms)) s.error(entry, *problem);
        sasl.mech_list.push_back(std::move(mechanism));
    }
    return *entries;
}

void check_saslauthd_mechanisms(const Section& s, const SaslConfig& sasl, const std::vector<Entry>& written) {
    if (sasl.pwcheck_method != "saslauthd") return;
    for (const Entry& entry : written)
        if (is_scram(uppercase(entry.value))) s.error(entry, scram_with_saslauthd(uppercase(entry.value)));
    if (s.has("mech_list")) return;
    for (const std::string& mechanism : sasl.mech_list)
        if (is_scram(mechanism))
            s.error("pwcheck_method", scram_with_saslauthd(mechanism) + "; the default mech_list includes it, so set "
                                                                       "mech_list too");
}

SaslConfig read_sasl(const Section& s) {
    s.reject_unknown(sasl_keys);
    SaslConfig sasl;
    s.read("allow_weak_mechanisms", sasl.allow_weak_mechanisms);
    if (auto method = s.choice("pwcheck_method", pwcheck_choices)) sasl.pwcheck_method = *method;
    check_saslauthd_mechanisms(s, sasl, read_mech_list(s, sasl));
    s.read("sasldb", sasl.sasldb);
    s.read("saslauthd_path", sasl.saslauthd_path);
    if (auto service = s.nonempty_string("service_spice")) sasl.service_spice = *service;
    if (auto service = s.nonempty_string("service_vnc")) sasl.service_vnc = *service;
    s.read("default_realm", sasl.default_realm);
    return sasl;
}

LibvirtConfig read_libvirt(const Section& s) {
    s.reject_unknown(libvirt_keys);
    LibvirtConfig libvirt;
    if (auto uri = s.nonempty_string("uri")) libvirt.uri = *uri;
    const toml::node* vms = s.table().get("vms");
    if (vms == nullptr) return libvirt;
    if (const auto* text = vms->as_string()) {
        if (text->get() == "all") libvirt.inventory = LibvirtConfig::Inventory::all;
        else s.error("vms", fmt::format("expected \"all\" or an array of domain names or UUIDs, got \"{}\"", text->get()));
        return libvirt;
    }
    auto names = s.strings("vms");
    if (!names) return libvirt;
    if (names->empty()) s.error("vms", "is empty; omit the key for no inventory, or write \"all\"");
    for (const Entry& name : *names) {
        if (name.value.empty()) s.error(name, "empty domain name");
        libvirt.vms.push_back(name.value);
    }
    libvirt.inventory = LibvirtConfig::Inventory::named;
    return libvirt;
}

GroupMap read_groups(const Section& s) {
    GroupMap groups;
    for (const auto& [key, value] : s.table()) {
        const std::string name(key.str());
        if (name.starts_with(unix_group_prefix)) {
            s.error(name, "group names cannot start with \"unix:\"; in rules that prefix names a local Unix group");
            continue;
        }
        auto members = s.strings(name);
        if (!members) continue;
        auto& list = groups[name];
        for (const Entry& member : *members) {
            if (auto problem = group_member_problem(member.value)) s.error(member, *problem);
            list.push_back(member.value);
        }
    }
    return groups;
}

// ------------------------------------------------------------------------------- allow rules

void read_rule_principals(const Section& s, const GroupMap& groups, AllowRule& rule) {
    if (auto users = s.strings("users")) {
        for (const Entry& user : *users) {
            if (auto problem = user_name_problem(user.value)) s.error(user, *problem);
            rule.users.push_back(user.value);
        }
    }
    if (auto refs = s.strings("groups")) {
        for (const Entry& group : *refs) {
            if (group.value.starts_with(unix_group_prefix)) {
                if (auto problem = group_member_problem(group.value)) s.error(group, *problem);
            } else if (!groups.contains(group.value)) {
                std::vector<std::string_view> names;
                for (const auto& defined : groups) names.push_back(defined.first);
                s.error(group, fmt::format("group \"{}\" is not defined in [groups]{}; define it there, or write "
                                           "\"unix:{}\" for a local Unix group",
                                           group.value, did_you_mean(group.value, names), group.value));
            }
            rule.groups.push_back(group.value);
        }
    }
    if (rule.users.empty() && rule.groups.empty() && !s.bad("users") && !s.bad("groups"))
        s.error("names no users or groups; a rule that names nobody would admit everyone, so it is refused; "
                "add users = [\"NAME\"] or groups = [\"GROUP\"]");
}

std::optional<DaySet> read_days(const Section& s) {
    auto entries = s.strings("days");
    if (!entries) return std::nullopt;
    if (entries->empty()) {
        s.error("days", "empty list: the rule could never match; omit days to mean every day");
        return std::nullopt;
    }
    DaySet days;
    for (const Entry& entry : *entries) {
        const auto parsed = parse_day_entry(entry.value);
        if (!parsed.value) s.error(entry, parsed.problem);
        else days.bits = static_cast<std::uint8_t>(days.bits | parsed.value->bits);
    }
    return days;
}

std::optional<TimeWindow> read_hours(const Section& s) {
    const auto text = s.string("hours");
    if (!text) return std::nullopt;
    auto window = parse_time_window(*text);
    if (!window.value) s.error("hours", std::move(window.problem));
    return window.value;
}

// A quoted "YYYY-MM-DD" or a bare TOML date (from = 2026-01-31).
std::optional<Date> read_date(const Section& s, std::string_view key) {
    const toml::node* node = s.table().get(key);
    if (!node) return std::nullopt;
    if (const auto* native = node->as_date()) {
        const toml::date& d = native->get();
        return Date{d.year, d.month, d.day};
    }
    if (!node->is_string()) {
        s.expected(key, "a date like \"2026-01-31\"");
        return std::nullopt;
    }
    auto date = parse_date(node->as_string()->get());
    if (!date.value) s.error(key, std::move(date.problem));
    return date.value;
}

std::vector<Cidr> read_sources(const Section& s) {
    auto entries = s.strings("sources");
    if (!entries) return {};
    if (entries->empty()) s.error("sources", "empty list; omit sources to allow any address, or list CIDR blocks");
    std::vector<Cidr> sources;
    for (const Entry& entry : *entries) {
        if (auto cidr = Cidr::parse(entry.value)) sources.push_back(*cidr);
        else
            s.error(entry, fmt::format("\"{}\" is not an IP address or CIDR block; write e.g. \"192.0.2.0/24\", "
                                       "\"2001:db8::/32\" or \"192.0.2.7\"",
                                       entry.value));
    }
    return sources;
}

std::vector<std::string> read_deny_channels(const Section& s) {
    auto entries = s.strings("deny_channels");
    if (!entries) return {};
    std::vector<std::string> channels;
    for (const Entry& entry : *entries) {
        if (entry.value == "main") {
            s.error(entry, "the main channel cannot be denied: no session works without it; to keep these users "
                           "out, remove the rule");
        } else if (std::find(std::begin(deniable_channels), std::end(deniable_channels), entry.value) ==
                   std::end(deniable_channels)) {
            s.error(entry, fmt::format("unknown SPICE channel \"{}\"{}; use {}", entry.value,
                                       did_you_mean(entry.value, deniable_channels), join(deniable_channels)));
        }
        channels.push_back(entry.value);
    }
    return channels;
}

AllowRule read_rule(const Section& s, const GroupMap& groups) {
    s.reject_unknown(rule_keys);
    AllowRule rule;
    rule.where = s.where();
    read_rule_principals(s, groups, rule);
    rule.days = read_days(s);
    rule.hours = read_hours(s);
    rule.from = read_date(s, "from");
    rule.until = read_date(s, "until");
    if (rule.from && rule.until && *rule.until < *rule.from)
        s.error("until", fmt::format("until ({}) is before from ({}): the rule could never match",
                                     to_string(*rule.until), to_string(*rule.from)));
    rule.sources = read_sources(s);
    s.read("view_only", rule.view_only);
    rule.deny_channels = read_deny_channels(s);
    return rule;
}

// ---------------------------------------------------------------------- VMs, listeners, the file

class ConfigReader {
public:
    explicit ConfigReader(std::string file) : errors_(std::move(file)) {}

    ConfigResult read(const toml::table& root, std::string path) {
        const Section top(errors_, root, "", "");
        top.reject_unknown(top_level_keys);
        // Order matters: rules refer to [groups]; listeners refer to VMs and to [tls].
        if (auto s = top.table("gateway")) config_.gateway = read_gateway(*s);
        if (auto s = top.table("tls")) config_.tls = read_tls(*s);
        if (auto s = top.table("sasl")) config_.sasl = read_sasl(*s);
        if (auto s = top.table("libvirt")) config_.libvirt = read_libvirt(*s);
        if (auto s = top.table("groups")) config_.groups = read_groups(*s);
        for (const Section& vm : top.tables("vm", "[[vm]]")) read_vm(vm);
        for (const Section& listener : top.tables("listener", "[[listener]]")) read_listener(listener);
        for (VmConfig& vm : config_.vms)
            for (auto* upstream : {&vm.spice, &vm.vnc})
                if (*upstream && (*upstream)->kind == UpstreamConfig::Kind::libvirt) (*upstream)->uri = config_.libvirt.uri;
        config_.path = std::move(path);
        ConfigResult result;
        result.errors = errors_.sorted();
        if (result.errors.empty()) result.config = std::move(config_);
        return result;
    }

private:
    void read_vm(const Section& s) {
        s.reject_unknown(vm_keys);
        VmConfig vm;
        vm.where = s.where();
        read_vm_name(s, vm);
        vm.spice = read_upstream(s, "spice");
        vm.vnc = read_upstream(s, "vnc");
        if (!s.has("spice") && !s.has("vnc")) read_inventory_upstreams(s, vm);
        read_password_file(s, vm);
        if (auto seat = s.choice("seat", seat_choices)) vm.seat = *seat;
        s.read("idle_timeout", vm.idle_timeout);
        s.read("max_session", vm.max_session);
        for (const Section& rule : s.tables("allow", "[[vm.allow]]"))
            vm.allow.push_back(read_rule(rule, config_.groups));
        config_.vms.push_back(std::move(vm));
    }

    void read_vm_name(const Section& s, VmConfig& vm) {
        if (!s.require("name", "\"NAME\"")) return;
        const auto name = s.string("name");
        if (!name) return;
        vm.name = *name;
        if (!is_dns_label(*name))
            s.error("name", fmt::format("\"{}\" is not DNS-label-safe: use 1 to 63 lowercase letters, digits and "
                                        "'-', not starting or ending with '-' (SNI routing reads the VM name from "
                                        "a DNS label)",
                                        *name));
        const auto [first, inserted] =
            vm_names_.try_emplace(*name, fmt::format("{} (line {})", s.path(), s.where().line));
        if (!inserted) s.error("name", fmt::format("\"{}\" is already the name of {}", *name, first->second));
    }

    // A [[vm]] without upstreams is the policy of a domain of the libvirt inventory: both displays
    // go through libvirt, and a connection finds out whether the domain has the one it asks for.
    void read_inventory_upstreams(const Section& s, VmConfig& vm) const {
        if (!config_.libvirt.lists(vm.name)) {
            s.error(config_.libvirt.inventory == LibvirtConfig::Inventory::none
                        ? std::string("needs a console upstream: spice = \"unix:/PATH\" and/or vnc = \"unix:/PATH\" "
                                      "(or \"tcp:HOST:PORT\", \"qmp:/PATH\", \"libvirt:DOMAIN\"), or a [libvirt] "
                                      "section with vms = \"all\" or a list naming this VM")
                        : fmt::format("needs a console upstream: \"{}\" is not in [libvirt] vms", vm.name));
            return;
        }
        UpstreamConfig upstream;
        upstream.kind = UpstreamConfig::Kind::libvirt;
        upstream.domain = vm.name;
        upstream.text = std::string(libvirt_scheme) + vm.name;
        vm.spice = vm.vnc = upstream;
    }

    // Kept even when malformed (text only), so listener checks do not also say "no spice upstream".
    static std::optional<UpstreamConfig> read_upstream(const Section& s, std::string_view key) {
        const auto text = s.string(key);
        if (!text) return std::nullopt;
        auto upstream = parse_upstream(*text);
        if (upstream.value) return upstream.value;
        s.error(key, std::move(upstream.problem));
        UpstreamConfig as_written;
        as_written.text = *text;
        return as_written;
    }

    static void read_password_file(const Section& s, VmConfig& vm) {
        const auto file = s.nonempty_string("password_file");
        if (!file) return;
        bool any_tcp = false;
        for (auto* upstream : {&vm.spice, &vm.vnc}) {
            if (!*upstream || (*upstream)->kind != UpstreamConfig::Kind::tcp) continue;
            (*upstream)->password_file = *file;
            any_tcp = true;
        }
        if (any_tcp || s.bad("spice") || s.bad("vnc")) return;
        const auto is_qmp = [](const std::optional<UpstreamConfig>& u) {
            return u && u->kind == UpstreamConfig::Kind::qmp;
        };
        if (is_qmp(vm.spice) || is_qmp(vm.vnc))
            s.error("password_file", "applies only to tcp: upstreams (QEMU's display password), and this VM has "
                                     "none; a qmp: upstream needs no password: QEMU's add_client skipauth=true "
                                     "lets vmgate's connections past QEMU's own authentication");
        else
            s.error("password_file", "applies only to tcp: upstreams (QEMU's display password), and this VM has "
                                     "none; unix socket upstreams need no password");
    }

    void read_listener(const Section& s) {
        s.reject_unknown(listener_keys);
        ListenerConfig listener;
        listener.where = s.where();
        s.require("protocol", "\"spice\" or \"vnc\"");
        const auto protocol = s.choice("protocol", protocol_choices);
        if (protocol) listener.protocol = *protocol;
        read_listener_address(s, listener);
        s.read("tls", listener.tls);
        const auto route = s.choice("route", route_choices);
        if (route) listener.route = *route;
        s.read("vm", listener.vm);
        s.read("sni_suffix", listener.sni_suffix);
        s.read("connect_suffix", listener.connect_suffix);
        read_auth_methods(s, listener);
        if (route || !s.has("route")) check_route(s, listener, protocol);
        if (listener.protocol == Protocol::vnc && !listener.tls && s.usable("tls"))
            s.error("tls", "a VNC listener needs tls = true: credentials and screens only ever cross VeNCrypt TLS, "
                           "and RFB has no way to send a client to another port");
        if (listener.tls && !s.bad("tls") && (config_.tls.cert.empty() || config_.tls.key.empty()))
            s.error("tls", "a TLS listener needs [tls] cert and key; add them, or set tls = false for a plain port");
        config_.listeners.push_back(std::move(listener));
    }

    void read_listener_address(const Section& s, ListenerConfig& listener) {
        if (!s.require("address", "\"HOST:PORT\"")) return;
        const auto address = s.string("address");
        if (!address) return;
        listener.address = *address;
        auto parsed = parse_host_port(*address);
        if (!parsed.value) {
            s.error("address", std::move(parsed.problem));
            return;
        }
        listener.host = parsed.value->host;
        listener.port = parsed.value->port;
        const auto [first, inserted] = addresses_.try_emplace(std::pair(lowercase(listener.host), listener.port),
                                                              fmt::format("{} (line {})", s.path(), s.where().line));
        if (!inserted) s.error("address", fmt::format("\"{}\" is already used by {}", *address, first->second));
    }

    // The VeNCrypt subtypes follow this order (rfb-protocol.md §8: Plain first, as TigerVNC takes
    // the first it supports; gtk-vnc prefers SASL whatever the order).
    static std::vector<AuthMethod> default_auth(Protocol protocol) {
        if (protocol == Protocol::vnc) return {AuthMethod::password, AuthMethod::sasl, AuthMethod::ticket};
        return {AuthMethod::sasl, AuthMethod::ticket};
    }

    void read_auth_methods(const Section& s, ListenerConfig& listener) const {
        listener.auth = default_auth(listener.protocol);
        const auto entries = s.strings("auth");
        if (!entries) return;
        if (entries->empty()) {
            s.error("auth", "empty list: nobody could authenticate; use [\"sasl\"], [\"ticket\"] or both");
            return;
        }
        listener.auth.clear();
        for (const Entry& entry : *entries) {
            auto method = match(entry.value, auth_choices);
            if (!method.value) s.error(entry, std::move(method.problem));
            else if (listener.offers(*method.value))
                s.error(entry, fmt::format("\"{}\" is listed twice", entry.value));
            else if (auto problem = auth_method_problem(*method.value, listener.protocol); !problem.empty())
                s.error(entry, std::move(problem));
            else listener.auth.push_back(*method.value);
        }
    }

    std::string auth_method_problem(AuthMethod method, Protocol protocol) const {
        const bool vnc_only = method == AuthMethod::password || method == AuthMethod::certificate;
        if (vnc_only && protocol == Protocol::spice)
            return fmt::format("\"{}\" applies only to VNC listeners; SPICE clients authenticate with \"sasl\" "
                               "or \"ticket\"",
                               to_string(method));
        if (method == AuthMethod::certificate && config_.tls.client_cert == ClientCertMode::none)
            return "\"certificate\" needs client certificates: set [tls] client_cert = \"optional\" or "
                   "\"required\" and client_ca";
        return "";
    }

    void check_route(const Section& s, const ListenerConfig& listener, std::optional<Protocol> protocol) const {
        if (listener.route != Route::sni && s.has("sni_suffix")) s.error("sni_suffix", "only applies to route = \"sni\"");
        if (listener.route != Route::connect && s.has("connect_suffix"))
            s.error("connect_suffix", "only applies to route = \"connect\"");
        switch (listener.route) {
            case Route::fixed: check_fixed_route(s, listener, protocol); break;
            case Route::sni: check_sni_route(s, listener); break;
            case Route::connect: check_connect_route(s, listener, protocol); break;
        }
    }

    void check_fixed_route(const Section& s, const ListenerConfig& listener, std::optional<Protocol> protocol) const {
        if (!s.usable("vm")) {
            if (!s.has("vm"))
                s.error("vm", "missing; a listener with route = \"fixed\" (the default) needs vm = \"NAME\" of a "
                              "[[vm]], or route = \"sni\"");
            return;
        }
        const VmConfig* vm = config_.find_vm(listener.vm);
        if (!vm) {
            std::vector<std::string_view> names;
            for (const auto& named : vm_names_) names.push_back(named.first);
            s.error("vm", fmt::format("no [[vm]] is named \"{}\"{}; defined: {}", listener.vm,
                                      did_you_mean(listener.vm, names), names.empty() ? "none" : join(names)));
            return;
        }
        if (!protocol) return;
        const bool reachable = *protocol == Protocol::spice ? vm->spice.has_value() : vm->vnc.has_value();
        if (!reachable)
            s.error("vm", fmt::format("vm \"{0}\" has no {1} upstream, so a {1} listener cannot reach it; add "
                                      "{1} = \"unix:/PATH\" to that [[vm]]",
                                      vm->name, to_string(*protocol)));
    }

    static void check_sni_route(const Section& s, const ListenerConfig& listener) {
        if (s.has("vm"))
            s.error("vm", "route = \"sni\" takes the VM from the TLS server name; remove vm, or use "
                          "route = \"fixed\"");
        if (!listener.tls && s.usable("tls"))
            s.error("tls", "route = \"sni\" needs tls = true: the VM name arrives in the TLS handshake (SNI)");
        check_suffix(s, "sni_suffix", listener.sni_suffix);
    }

    static void check_connect_route(const Section& s, const ListenerConfig& listener, std::optional<Protocol> protocol) {
        if (protocol == Protocol::vnc)
            s.error("route", "route = \"connect\" serves SPICE clients (spice-gtk's proxy= setting); VNC clients "
                             "have no HTTP proxy support: use route = \"fixed\" or \"sni\"");
        if (s.has("vm"))
            s.error("vm", "route = \"connect\" takes the VM from the host of the client's HTTP CONNECT request; "
                          "remove vm, or use route = \"fixed\"");
        if (!listener.tls && s.usable("tls"))
            s.error("tls", "route = \"connect\" needs tls = true: the tunnel carries the SPICE TLS session, which "
                           "vmgate terminates");
        check_suffix(s, "connect_suffix", listener.connect_suffix);
    }

    static void check_suffix(const Section& s, std::string_view key, const std::string& suffix) {
        if (s.usable(key) && (suffix.size() < 2 || suffix.front() != '.'))
            s.error(key, fmt::format("must start with '.' and name a domain, like \".vms.example.com\"; got \"{}\"",
                                     suffix));
    }

    Errors errors_;
    Config config_;
    std::map<std::string, std::string, std::less<>> vm_names_;  // name -> "vm[0] (line 12)"
    std::map<std::pair<std::string, std::uint16_t>, std::string> addresses_;  // -> "listener[0] (line 3)"
};

// The whole file, or why it could not be read (errno text).
Checked<std::string> read_file(const std::string& path) {
    const std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
    if (!file) return {std::nullopt, "cannot open: " + std::generic_category().message(errno)};
    std::string text;
    char buffer[4096];
    std::size_t n = 0;
    while ((n = std::fread(buffer, 1, sizeof buffer, file.get())) > 0) text.append(buffer, n);
    if (std::ferror(file.get())) return {std::nullopt, "cannot read: " + std::generic_category().message(errno)};
    return {std::move(text), {}};
}

}  // namespace

bool LibvirtConfig::lists(std::string_view name_or_uuid) const {
    switch (inventory) {
    case Inventory::none: return false;
    case Inventory::all: return true;
    case Inventory::named: return std::find(vms.begin(), vms.end(), name_or_uuid) != vms.end();
    }
    return false;
}

const VmConfig* Config::find_vm(std::string_view name) const {
    const auto found = std::find_if(vms.begin(), vms.end(), [&](const VmConfig& vm) { return vm.name == name; });
    return found == vms.end() ? nullptr : &*found;
}

std::string ConfigError::to_string() const {
    std::string out = file;
    if (line > 0) out += fmt::format(":{}:{}", line, column);
    out += ": ";
    if (!key.empty()) out += key + ": ";
    return out + message;
}

ConfigResult parse_config(std::string_view toml_text, std::string_view file_name) {
    const std::string file(file_name.empty() ? text_source_name : file_name);
    try {
        const toml::table root = toml::parse(toml_text, std::string_view{file});
        return ConfigReader(file).read(root, std::string(file_name));
    } catch (const toml::parse_error& e) {
        const toml::source_position& at = e.source().begin;
        ConfigError error{file, to_int(at.line), to_int(at.column), "",
                          fmt::format("invalid TOML: {}", e.description())};
        return {std::nullopt, {std::move(error)}};
    }
}

ConfigResult load_config_file(const std::string& path) {
    auto text = read_file(path);
    if (!text.value) return {std::nullopt, {ConfigError{path, 0, 0, "", std::move(text.problem)}}};
    return parse_config(*text.value, path);
}

// Units largest first, each at most once: "1h30m", never "30m1h" or "1h1h".
constexpr std::pair<char, std::int64_t> duration_units[] = {{'d', 86400}, {'h', 3600}, {'m', 60}, {'s', 1}};

std::optional<std::chrono::seconds> parse_duration(std::string_view text) {
    const auto& units = duration_units;
    std::int64_t total = 0;
    std::size_t next_unit = 0;
    std::size_t i = 0;
    if (text.empty()) return std::nullopt;
    while (i < text.size()) {
        const std::size_t digits_start = i;
        while (i < text.size() && is_digit(text[i])) ++i;
        const auto number = parse_number(text.substr(digits_start, i - digits_start));
        if (!number || i == text.size()) return std::nullopt;
        const auto unit = std::find_if(std::begin(units) + next_unit, std::end(units),
                                       [&](const auto& u) { return u.first == text[i]; });
        if (unit == std::end(units)) return std::nullopt;
        total += *number * unit->second;
        next_unit = static_cast<std::size_t>(unit - std::begin(units)) + 1;
        ++i;
    }
    if (total <= 0) return std::nullopt;
    return std::chrono::seconds(total);
}

std::string SaslConfig::realm_or_host_name() const {
    if (!default_realm.empty()) return default_realm;
    std::array<char, 256> host{};
    ::gethostname(host.data(), host.size() - 1);
    return host.data();
}

std::string format_duration(std::chrono::seconds d) {
    if (d.count() <= 0) return "0s";
    std::string out;
    std::int64_t left = d.count();
    for (const auto& [suffix, seconds] : duration_units) {
        if (left < seconds) continue;
        out += std::to_string(left / seconds) + suffix;
        left %= seconds;
    }
    return out;
}

std::string_view to_string(Protocol p) { return name_of(p, protocol_choices); }

std::string_view to_string(SeatPolicy s) { return name_of(s, seat_choices); }

std::string_view to_string(AuthMethod m) { return name_of(m, auth_choices); }

bool ListenerConfig::offers(AuthMethod m) const { return std::find(auth.begin(), auth.end(), m) != auth.end(); }

}  // namespace vmgate::core
