// `vmgate man`: roff escaping, help text as paragraphs, and the page made from a CLI11 App.
// tests/e2e/test_packaging.py renders the real vmgate.1 with groff and compares it with --help.
#include "cli/man_page.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <sstream>

namespace vmgate::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(RoffEscape, BackslashesAndHyphens) {
    EXPECT_EQ(roff_escape(R"(--config C:\x)"), R"(\-\-config C:\ex)");
    EXPECT_EQ(roff_escape("plain words"), "plain words");
}

TEST(RoffEscape, RequestCharactersOnlyAtTheStartOfALine) {
    EXPECT_EQ(roff_escape(".vv file"), "\\&.vv file");
    EXPECT_EQ(roff_escape("'quoted'"), "\\&'quoted'");
    EXPECT_EQ(roff_escape("a.vv 'x'\n.b\n'c"), "a.vv 'x'\n\\&.b\n\\&'c");
}

TEST(RoffEscape, NonAsciiAsUnicodeEscapes) {
    EXPECT_EQ(roff_escape("caf\xC3\xA9"), "caf\\[u00E9]");             // é
    EXPECT_EQ(roff_escape("a \xE2\x86\x92 b"), "a \\[u2192] b");        // →
    EXPECT_EQ(roff_escape("\xF0\x9F\x94\x92"), "\\[u1F512]");          // a 4-byte character
    EXPECT_EQ(roff_escape("bad \xC3 end"), "bad \\[uFFFD] end");       // truncated sequence
    EXPECT_EQ(roff_escape("\xE2\x86"), "\\[uFFFD]\\[uFFFD]");          // cut off at the end
}

TEST(RoffText, BackquotedCommandsAreBold) {
    EXPECT_EQ(roff_text("see `vmgate reload` now"), "see \\fBvmgate reload\\fR now");
    EXPECT_EQ(roff_text("`a`\n`b`"), "\\fBa\\fR\n\\fBb\\fR");
    EXPECT_EQ(roff_text("runs `vmgate\nserve` here"), "runs \\fBvmgate\nserve\\fR here");
    EXPECT_EQ(roff_text("unmatched `x"), "unmatched \\fBx\n\\fR");
}

TEST(RoffText, EmptyLinesSeparateParagraphsAndIndentIsDropped) {
    EXPECT_EQ(roff_text("one\n  two\n\n\nthree\n"), "one\ntwo\n.PP\nthree");
    EXPECT_EQ(roff_text("\nfirst"), "first");
    EXPECT_EQ(roff_text("  .hidden request"), "\\&.hidden request");
    EXPECT_EQ(roff_text(""), "");
}

// A small command line shaped like vmgate's: options, positionals, nested and hidden commands.
class ManPage : public ::testing::Test {
protected:
    ManPage() : app_("Tool that does things.\n\nSecond paragraph, see `tool run --help`.", "tool") {
        app_.set_version_flag("--version", "1.2");
        auto* run = app_.add_subcommand("run", "Run a job");
        run->add_option("-c,--config", config_, "Configuration file")->capture_default_str();
        run->add_option("JOB", job_, "The job's name")->required();
        run->add_option("EXTRA", extra_, "Optional extra");
        auto* users = app_.add_subcommand("users", "Manage users");
        users->require_subcommand(1);
        users->add_subcommand("add", "Create a user-account")->add_flag("--force", force_, "Even if it exists");
        app_.add_subcommand("secret", "Not for people")->group("");
        page_ = render_man_page(app_, "1.2");
    }

    CLI::App app_;
    std::string config_ = "/etc/tool.toml";
    std::string job_;
    std::string extra_;
    bool force_ = false;
    std::string page_;
};

TEST_F(ManPage, HeaderAndFrame) {
    EXPECT_EQ(page_.substr(0, page_.find('\n')), R"(.TH TOOL 1 "" "tool 1.2" "User Commands")");
    for (const char* section : {".SH NAME", ".SH SYNOPSIS", ".SH DESCRIPTION", ".SH OPTIONS", ".SH COMMANDS",
                                ".SH FILES", ".SH SIGNALS", ".SH EXIT STATUS", ".SH SEE ALSO"})
        EXPECT_THAT(page_, HasSubstr(std::string("\n") + section + "\n")) << section;
    EXPECT_THAT(page_, HasSubstr("\nTool that does things.\n.PP\nSecond paragraph, see \\fBtool run \\-\\-help\\fR.\n"));
}

TEST_F(ManPage, EveryVisibleCommandHasASectionAndHiddenOnesNone) {
    EXPECT_THAT(page_, HasSubstr("\n.SS tool run\n\\fBtool run\\fR [\\fIOPTIONS\\fR] \\fIJOB\\fR [\\fIEXTRA\\fR]\n"));
    EXPECT_THAT(page_, HasSubstr("\n.SS tool users\n\\fBtool users\\fR [\\fIOPTIONS\\fR] \\fICOMMAND\\fR\n"));
    EXPECT_THAT(page_, HasSubstr("\n.SS tool users add\n"));
    EXPECT_THAT(page_, HasSubstr("\nCreate a user\\-account\n"));
    EXPECT_THAT(page_, Not(HasSubstr("secret")));
    EXPECT_THAT(page_, Not(HasSubstr("Not for people")));
}

TEST_F(ManPage, OptionsAsHelpShowsThem) {
    EXPECT_THAT(page_, HasSubstr("\n.TP\n\\fB\\-c\\fR, \\fB\\-\\-config\\fR TEXT=/etc/tool.toml\nConfiguration file\n"));
    EXPECT_THAT(page_, HasSubstr("\n.TP\n\\fIJOB\\fR TEXT REQUIRED\nThe job's name\n"));
    EXPECT_THAT(page_, HasSubstr("\n.TP\n\\fB\\-\\-force\\fR\nEven if it exists\n"));
    // --help once, at the top; --version there too
    EXPECT_THAT(page_, HasSubstr("\\fB\\-h\\fR, \\fB\\-\\-help\\fR"));
    EXPECT_THAT(page_, HasSubstr("\\fB\\-\\-version\\fR"));
    EXPECT_EQ(page_.find("\\-\\-help\\fR\n"), page_.rfind("\\-\\-help\\fR\n"));
}

TEST_F(ManPage, EveryRequestLineIsAManMacro) {
    const std::set<std::string> macros{".TH", ".SH", ".SS", ".TP", ".PP", ".B", ".I", ".BR", ".RB", ".RI", ".IR", ".br"};
    std::istringstream lines(page_);
    for (std::string line; std::getline(lines, line);) {
        if (line.empty() || (line[0] != '.' && line[0] != '\'')) continue;
        EXPECT_TRUE(macros.contains(line.substr(0, line.find(' ')))) << line;
    }
}

}  // namespace
}  // namespace vmgate::cli
