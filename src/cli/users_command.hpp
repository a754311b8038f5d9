// `vmgate users add|passwd|del|list`: the users of the sasldb named in [sasl] of the
// configuration file, through the Cyrus API (auth/sasldb.hpp), so the file stays one that
// saslpasswd2 and sasldblistusers2 read and write too. Passwords come from standard input only
// (password_input.hpp). Exit codes: 0 done, 1 refused or failed ("vmgate: ..." on stderr),
// 2 usage error.
#pragma once

#include "auth/sasldb.hpp"
#include "cli/config_file.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace vmgate::cli {

struct UsersArgs {
    std::string config_path = default_config_path;
    std::string user;   // add, passwd, del: a name without '@'
    std::string realm;  // "" = the default realm; list: "" = every realm
};

int run_users_add(const UsersArgs& args);
int run_users_passwd(const UsersArgs& args);
int run_users_del(const UsersArgs& args);
int run_users_list(const UsersArgs& args);

// `users list` output: each user@realm once, sorted, only those of realm unless it is "".
std::vector<std::string> listed_users(const std::vector<auth::SasldbEntry>& entries, std::string_view realm);

}  // namespace vmgate::cli
