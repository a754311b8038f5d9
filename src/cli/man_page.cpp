#include "cli/man_page.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <optional>

namespace vmgate::cli {

namespace {

// The hand-written frame of the page (roff, already escaped). The commands and their options
// between DESCRIPTION and FILES come from the App.
constexpr std::string_view kName = R"(.SH NAME
vmgate \- per\-user, per\-VM gateway to the SPICE and VNC consoles of KVM/QEMU virtual machines
.SH SYNOPSIS
.B vmgate
.I COMMAND
.RI [ OPTIONS ]
.br
.B vmgate
.RB [ \-\-help | \-\-version ]
)";

constexpr std::string_view kFilesAndAfter = R"(.SH FILES
.TP
.I /etc/vmgate/vmgate.toml
The configuration, the default of \fB\-\-config\fR. Every key is described in the
configuration reference (docs/configuration.md in the source); a commented example is
.IR /usr/share/doc/vmgate/examples/office.toml .
.TP
.I /run/vmgate/admin.sock
The admin socket (\fBgateway.admin_socket\fR), mode 0660: the daemon's user and the members of
its group may issue tickets, list and end sessions, and reload.
.TP
.I /var/log/vmgate/audit.jsonl
The audit log, one JSON object per line, when \fBgateway.audit_log\fR names it (the default,
\(lq\-\(rq, is standard error).
.TP
.I /var/lib/vmgate
The home of the system user \fBvmgate\fR the service runs as.
.TP
.I /usr/lib/systemd/system/vmgate.service
The service unit, as \fBvmgate systemd\-unit\fR prints it for the default settings; with
.IR /usr/lib/sysusers.d/vmgate.conf " and " /usr/lib/tmpfiles.d/vmgate.conf
for the user and the directories.
.SH SIGNALS
\fBvmgate serve\fR handles:
.TP
.BR SIGINT ", " SIGTERM
Stop: close the listeners, end every session, write the audit log's last record, exit 0.
.TP
.B SIGHUP
Re\-read the configuration file, as \fBvmgate reload\fR does: sessions the new policy no longer
allows are ended, listeners are added and removed; a file with any error changes nothing.
.SH EXIT STATUS
.TP
.B 0
Done (\fBpolicy explain\fR: allowed).
.TP
.B 1
Failed or refused, with the reason on standard error: an invalid configuration, a daemon that
cannot be asked, \fBpolicy explain\fR denied, \fBvms\fR with an unreachable display,
\fBsessions kill\fR without a matching session, \fBusers add\fR for a user who exists.
.TP
.B 2
Usage error: an unknown option, a missing or malformed argument (\fBpolicy explain\fR: also a
configuration error).
.SH SEE ALSO
.BR remote\-viewer (1),
.BR saslpasswd2 (8),
.BR saslauthd (8),
.BR systemd.exec (5),
.BR systemd\-sysusers (8),
.BR systemd\-tmpfiles (8)
)";

// One code point of well-formed UTF-8 at the start of `text`, with its length in bytes.
struct CodePoint {
    char32_t value;
    std::size_t length;
};

std::optional<CodePoint> decode_utf8(std::string_view text) {
    const auto lead = static_cast<unsigned char>(text[0]);
    const std::size_t length = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 0;
    if (length == 0 || text.size() < length) return std::nullopt;
    char32_t value = lead & (0x7Fu >> length);
    for (std::size_t i = 1; i < length; ++i) {
        const auto next = static_cast<unsigned char>(text[i]);
        if ((next & 0xC0u) != 0x80u) return std::nullopt;
        value = (value << 6) | (next & 0x3Fu);
    }
    return CodePoint{value, length};
}

constexpr char32_t kReplacementCharacter = 0xFFFD;

// "-c,--config" -> "\fB\-c\fR, \fB\-\-config\fR"; a positional "USER" -> "\fIUSER\fR".
std::string option_names(const CLI::Option& option, const CLI::Formatter& formatter) {
    const bool positional = !option.nonpositional();
    const std::string names = formatter.make_option_name(&option, positional);
    if (positional) return "\\fI" + roff_escape(names) + "\\fR";
    std::string out;
    std::size_t start = 0;
    while (start <= names.size()) {
        const std::size_t comma = std::min(names.find(',', start), names.size());
        if (!out.empty()) out += ", ";
        out += "\\fB" + roff_escape(names.substr(start, comma - start)) + "\\fR";
        start = comma + 1;
    }
    return out;
}

// The options of one command as a .TP list, as its --help lists them (its type, default and
// needs after the names). The help flag is left to the top-level OPTIONS.
std::string options_section(const CLI::App& command, const CLI::Formatter& formatter, bool with_help) {
    std::string out;
    for (const CLI::Option* option : command.get_options()) {
        if (!with_help && option == command.get_help_ptr()) continue;
        out += ".TP\n" + option_names(*option, formatter) + roff_escape(formatter.make_option_opts(option)) + "\n";
        out += roff_text(option->get_description()) + "\n";
    }
    return out;
}

std::vector<const CLI::App*> visible_subcommands(const CLI::App& command) {
    // CLI11 hides a subcommand from --help when its group is empty; so does the page.
    return command.get_subcommands([](const CLI::App* sub) { return !sub->get_group().empty(); });
}

// "[OPTIONS] USER VM" or "[OPTIONS] COMMAND", as roff.
std::string synopsis_arguments(const CLI::App& command) {
    std::string out = "[\\fIOPTIONS\\fR]";
    for (const CLI::Option* option : command.get_options([](const CLI::Option* o) { return !o->nonpositional(); })) {
        const std::string name = "\\fI" + roff_escape(option->get_name(true, false)) + "\\fR";
        out += option->get_required() ? " " + name : " [" + name + "]";
    }
    if (!visible_subcommands(command).empty())
        out += command.get_require_subcommand_min() > 0 ? " \\fICOMMAND\\fR" : " [\\fICOMMAND\\fR]";
    return out;
}

// One .SS per command, depth first, the way `vmgate COMMAND --help` describes it.
void append_command(std::string& out, const CLI::App& command, const std::string& path,
                    const CLI::Formatter& formatter) {
    out += ".SS " + roff_escape(path) + "\n";
    out += "\\fB" + roff_escape(path) + "\\fR " + synopsis_arguments(command) + "\n.PP\n";
    out += roff_text(command.get_description()) + "\n";
    out += options_section(command, formatter, false);
    for (const CLI::App* sub : visible_subcommands(command))
        append_command(out, *sub, path + " " + sub->get_name(), formatter);
}

}  // namespace

std::string roff_escape(std::string_view text) {
    std::string out;
    bool line_start = true;
    for (std::size_t i = 0; i < text.size();) {
        const char c = text[i];
        if (line_start && (c == '.' || c == '\'')) out += "\\&";
        line_start = c == '\n';
        if (static_cast<unsigned char>(c) >= 0x80) {
            const auto point = decode_utf8(text.substr(i));
            out += fmt::format("\\[u{:04X}]", static_cast<std::uint32_t>(point ? point->value : kReplacementCharacter));
            i += point ? point->length : 1;
            continue;
        }
        if (c == '\\') out += "\\e";
        else if (c == '-') out += "\\-";
        else out += c;
        ++i;
    }
    return out;
}

std::string roff_text(std::string_view help) {
    std::string out;
    bool bold = false;
    bool paragraph_break = false;
    std::size_t start = 0;
    while (start <= help.size()) {
        const std::size_t end = std::min(help.find('\n', start), help.size());
        std::string_view line = help.substr(start, end - start);
        start = end + 1;
        line.remove_prefix(std::min(line.find_first_not_of(" \t"), line.size()));
        if (line.empty()) {
            paragraph_break = !out.empty();
            continue;
        }
        if (paragraph_break) out += ".PP\n";
        paragraph_break = false;
        std::string escaped = roff_escape(line);
        for (std::size_t tick = escaped.find('`'); tick != std::string::npos; tick = escaped.find('`', tick)) {
            const std::string_view font = bold ? "\\fR" : "\\fB";
            escaped.replace(tick, 1, font);
            bold = !bold;
        }
        out += escaped + "\n";
    }
    if (bold) out += "\\fR\n";  // an unmatched backquote bolds the rest of the text only
    if (!out.empty()) out.pop_back();
    return out;
}

std::string render_man_page(const CLI::App& app, std::string_view version) {
    const CLI::Formatter formatter;  // the formatter --help uses, for the same option texts
    const std::string name = app.get_name();
    std::string title = name;  // upper case, by convention
    std::ranges::transform(title, title.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    std::string out = fmt::format(".TH {} 1 \"\" \"{} {}\" \"User Commands\"\n", roff_escape(title),
                                  roff_escape(name), roff_escape(version));
    out += kName;
    out += ".SH DESCRIPTION\n" + roff_text(app.get_description()) + "\n";
    out += ".SH OPTIONS\n" + options_section(app, formatter, true);
    out += ".SH COMMANDS\n";
    for (const CLI::App* sub : visible_subcommands(app)) append_command(out, *sub, name + " " + sub->get_name(), formatter);
    out += kFilesAndAfter;
    return out;
}

}  // namespace vmgate::cli
