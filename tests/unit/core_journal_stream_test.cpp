// JOURNAL_STREAM names stderr only when both numbers match it exactly.
#include "core/journal_stream.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>

namespace vmgate::core {
namespace {

TEST(JournalStream, MatchesExactlyTheDeviceAndInode) {
    EXPECT_TRUE(journal_stream_matches("8:1234", 8, 1234));
    EXPECT_TRUE(journal_stream_matches("0:18446744073709551615", 0, UINT64_MAX));
    EXPECT_FALSE(journal_stream_matches("8:1234", 8, 1235));
    EXPECT_FALSE(journal_stream_matches("8:1234", 9, 1234));
}

TEST(JournalStream, MalformedValuesNeverMatch) {
    for (const char* bad : {"", ":", "8:", ":1234", "8", "8:1234:5", " 8:1234", "8:1234 ", "-8:1234", "0x8:1234",
                            "8:12a4", "99999999999999999999:1"})
        EXPECT_FALSE(journal_stream_matches(bad, 8, 1234)) << bad;
}

class StderrJournal : public ::testing::Test {
protected:
    void TearDown() override {
        if (saved_) ::setenv("JOURNAL_STREAM", saved_->c_str(), 1);
        else ::unsetenv("JOURNAL_STREAM");
    }
    std::optional<std::string> saved_ = std::getenv("JOURNAL_STREAM") ? std::optional<std::string>(std::getenv("JOURNAL_STREAM"))
                                                                     : std::nullopt;
};

TEST_F(StderrJournal, FollowsTheVariableAgainstTheRealStderr) {
    struct stat st {};
    ASSERT_EQ(::fstat(2, &st), 0);
    ::unsetenv("JOURNAL_STREAM");
    EXPECT_FALSE(stderr_is_journal());
    const std::string mine = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
    ::setenv("JOURNAL_STREAM", mine.c_str(), 1);
    EXPECT_TRUE(stderr_is_journal());
    const std::string other = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino + 1);
    ::setenv("JOURNAL_STREAM", other.c_str(), 1);  // inherited by a process whose stderr moved
    EXPECT_FALSE(stderr_is_journal());
}

}  // namespace
}  // namespace vmgate::core
