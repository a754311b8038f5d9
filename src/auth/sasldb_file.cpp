// Reading a sasldb file for `vmgate users list` (see sasldb.hpp for why this does not go through
// Cyrus): Berkeley DB 5.3, the library Debian's libsasldb plugin links, opened read-only
// without an environment, as the plugin itself opens it.
#include "auth/sasldb.hpp"

#include <db.h>

#include <array>
#include <memory>

namespace vmgate::auth {

namespace {

constexpr std::size_t kKeyParts = 3;  // user, realm, property

struct DbCloser {
    void operator()(DB* db) const noexcept { db->close(db, 0); }
};
struct CursorCloser {
    void operator()(DBC* cursor) const noexcept { cursor->close(cursor); }
};

// Berkeley DB prints its diagnostics on stderr unless told otherwise; the first one (e.g.
// "unexpected file type or format") is kept for the error message instead.
void keep_first_message(const DB_ENV* env, const char* /*prefix*/, const char* message) {
    auto* first = static_cast<std::string*>(env->app_private);
    if (first != nullptr && first->empty() && message != nullptr) *first = message;
}

std::string db_error(const std::string& path, int rc, const std::string& detail) {
    std::string text = path + ": " + db_strerror(rc);
    if (!detail.empty()) text += " (" + detail + ")";
    return text;
}

}  // namespace

std::optional<SasldbEntry> parse_sasldb_key(std::string_view key) {
    std::array<std::string_view, kKeyParts> parts;
    for (std::size_t i = 0; i + 1 < kKeyParts; ++i) {
        const auto nul = key.find('\0');
        if (nul == std::string_view::npos) return std::nullopt;
        parts[i] = key.substr(0, nul);
        key.remove_prefix(nul + 1);
    }
    parts.back() = key;
    if (parts[0].empty() || parts[2].empty() || key.find('\0') != std::string_view::npos) return std::nullopt;
    return SasldbEntry{std::string(parts[0]), std::string(parts[1]), std::string(parts[2])};
}

std::optional<std::vector<SasldbEntry>> sasldb_entries(const std::string& path, std::string& error) {
    DB* raw = nullptr;
    int rc = db_create(&raw, nullptr, 0);
    if (rc != 0) {
        error = db_error(path, rc, "");
        return std::nullopt;
    }
    std::unique_ptr<DB, DbCloser> db(raw);
    std::string detail;
    db->get_env(db.get())->app_private = &detail;
    db->set_errcall(db.get(), keep_first_message);
    rc = db->open(db.get(), nullptr, path.c_str(), nullptr, DB_UNKNOWN, DB_RDONLY, 0);
    DBC* raw_cursor = nullptr;
    if (rc == 0) rc = db->cursor(db.get(), nullptr, &raw_cursor, 0);
    if (rc != 0) {
        error = db_error(path, rc, detail);
        return std::nullopt;
    }
    std::unique_ptr<DBC, CursorCloser> cursor(raw_cursor);
    std::vector<SasldbEntry> entries;
    DBT key{};
    DBT value{};
    while ((rc = cursor->get(cursor.get(), &key, &value, DB_NEXT)) == 0) {
        // A key of another shape is no Cyrus record: skipped rather than guessed at.
        if (auto entry = parse_sasldb_key({static_cast<const char*>(key.data), key.size})) entries.push_back(*entry);
    }
    if (rc != DB_NOTFOUND) {
        error = db_error(path, rc, detail);
        return std::nullopt;
    }
    return entries;
}

}  // namespace vmgate::auth
