#include "cli/users_command.hpp"

#include "cli/password_input.hpp"

#include <algorithm>
#include <iostream>
#include <optional>

namespace vmgate::cli {

namespace {

constexpr int kUsageError = 2;

int failed(const std::string& error) {
    std::cerr << "vmgate: " << error << "\n";
    return 1;
}

// The realm goes in --realm, as in saslpasswd2 -u: a name with '@' is a usage error rather than
// a guess at which part is the realm.
bool usable_name(const UsersArgs& args) {
    if (args.user.find('@') == std::string::npos) return true;
    std::cerr << "vmgate: USER is a name without '@'; give the realm with --realm\n";
    return false;
}

// The sasldb of the configuration file's [sasl], or nullopt after printing why not.
std::optional<auth::SasldbUsers> open_users(const UsersArgs& args) {
    const auto result = core::load_config_file(args.config_path);
    if (!result.config) {
        print_config_errors(result.errors, args.config_path);
        return std::nullopt;
    }
    std::string error;
    auto users = auth::SasldbUsers::open(result.config->sasl, error);
    if (!users) failed(error);
    return users;
}

using PasswordChange = bool (auth::SasldbUsers::*)(std::string_view, std::string_view, std::string_view,
                                                    std::string&) const;

// add and passwd: whether the user must exist is checked before the password is asked for, so
// nobody types a password twice only to be told the name is wrong.
int set_password(const UsersArgs& args, bool must_exist, PasswordChange change, std::string_view done,
                 std::string_view where) {
    if (!usable_name(args)) return kUsageError;
    const auto users = open_users(args);
    if (!users) return 1;
    std::string error;
    if (!users->expect(must_exist, args.user, args.realm, error)) return failed(error);
    const auto password = read_new_password(error);
    if (!password) return failed(error);
    if (!((*users).*change)(args.user, args.realm, *password, error)) return failed(error);
    std::cout << done << " " << users->principal(args.user, args.realm) << " " << where << " " << users->path()
              << "\n";
    return 0;
}

}  // namespace

std::vector<std::string> listed_users(const std::vector<auth::SasldbEntry>& entries, std::string_view realm) {
    std::vector<std::string> names;
    for (const auto& e : entries)
        if (realm.empty() || e.realm == realm) names.push_back(e.user + "@" + e.realm);
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    return names;
}

int run_users_add(const UsersArgs& args) {
    return set_password(args, false, &auth::SasldbUsers::add, "added", "to");
}

int run_users_passwd(const UsersArgs& args) {
    return set_password(args, true, &auth::SasldbUsers::change_password, "changed the password of", "in");
}

int run_users_del(const UsersArgs& args) {
    if (!usable_name(args)) return kUsageError;
    const auto users = open_users(args);
    if (!users) return 1;
    std::string error;
    if (!users->remove(args.user, args.realm, error)) return failed(error);
    std::cout << "removed " << users->principal(args.user, args.realm) << " from " << users->path() << "\n";
    return 0;
}

int run_users_list(const UsersArgs& args) {
    const auto users = open_users(args);
    if (!users) return 1;
    std::string error;
    const auto entries = auth::sasldb_entries(users->path(), error);
    if (!entries) return failed(error);
    for (const auto& name : listed_users(*entries, args.realm)) std::cout << name << "\n";
    return 0;
}

}  // namespace vmgate::cli
