// `vmgate man`: the manual page vmgate.1, generated from the command line definition itself, so
// that it says what `vmgate --help` and `vmgate COMMAND --help` say: every visible command with
// its description, synopsis and options, in the same words. A short hand-written part (NAME,
// SYNOPSIS, FILES, SIGNALS, EXIT STATUS, SEE ALSO) frames it.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <string_view>

namespace vmgate::cli {

// Text as roff reads it literally: backslashes as \e, hyphens as \- (so that copied options
// are ASCII minus signs), non-ASCII characters as \[uXXXX], and \& before a line-leading '.' or
// '\'' (which would start a request).
std::string roff_escape(std::string_view text);

// Help text as roff paragraphs: escaped, `quoted commands` in bold, an empty line starts a new
// paragraph (.PP), lines lose their leading blanks (which would start an indented line).
std::string roff_text(std::string_view help);

// The whole page for `app` (the root of the command line), in man(7) macros.
std::string render_man_page(const CLI::App& app, std::string_view version);

}  // namespace vmgate::cli
