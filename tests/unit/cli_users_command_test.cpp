// `vmgate users list`: what it makes of a sasldb's entries (the sasldb itself is read in
// auth_sasl_test.cpp, the commands run end to end in tests/e2e/test_operator_tools.py).
#include "cli/users_command.hpp"

#include <gtest/gtest.h>

namespace vmgate::cli {
namespace {

TEST(UsersList, EachUserOnceSortedAndFilteredByRealm) {
    const std::vector<auth::SasldbEntry> entries{{"bob", "B.ORG", "userPassword"},
                                                 {"anne", "A.ORG", "userPassword"},
                                                 {"anne", "A.ORG", "cmusaslsecretOTP"},
                                                 {"anne", "B.ORG", "userPassword"}};
    EXPECT_EQ(listed_users(entries, ""), (std::vector<std::string>{"anne@A.ORG", "anne@B.ORG", "bob@B.ORG"}));
    EXPECT_EQ(listed_users(entries, "B.ORG"), (std::vector<std::string>{"anne@B.ORG", "bob@B.ORG"}));
    EXPECT_TRUE(listed_users(entries, "C.ORG").empty());
}

}  // namespace
}  // namespace vmgate::cli
