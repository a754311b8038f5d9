#include "metrics/exposition.hpp"

#include <fmt/format.h>

#include <cmath>

namespace vmgate::metrics {
namespace {

bool name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool name_char(char c) { return name_start(c) || (c >= '0' && c <= '9'); }

std::string_view type_name(Type type) {
    switch (type) {
    case Type::counter: return "counter";
    case Type::gauge: return "gauge";
    case Type::histogram: return "histogram";
    }
    return "untyped";
}

}  // namespace

bool valid_metric_name(std::string_view name) {
    if (name.empty() || !(name_start(name[0]) || name[0] == ':')) return false;
    for (char c : name)
        if (!name_char(c) && c != ':') return false;
    return true;
}

bool valid_label_name(std::string_view name) {
    if (name.empty() || !name_start(name[0]) || name.starts_with("__")) return false;
    for (char c : name)
        if (!name_char(c)) return false;
    return true;
}

std::string escape_label_value(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        if (c == '\\') out += "\\\\";
        else if (c == '"') out += "\\\"";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
    return out;
}

std::string escape_help(std::string_view help) {
    std::string out;
    out.reserve(help.size());
    for (char c : help) {
        if (c == '\\') out += "\\\\";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
    return out;
}

std::string format_value(double value) {
    if (std::isnan(value)) return "NaN";
    if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
    // Whole numbers up to 2^53 are exact in a double: print them as integers, not "1e+06".
    if (value == std::floor(value) && std::fabs(value) < 9007199254740992.0) return fmt::format("{:.0f}", value);
    return fmt::format("{}", value);
}

std::string family_header(std::string_view name, std::string_view help, Type type) {
    return fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, escape_help(help), name, type_name(type));
}

std::string sample_line(std::string_view name, const std::vector<std::string>& label_names,
                        const LabelValues& values, std::string_view value,
                        const std::pair<std::string, std::string>* extra) {
    std::string line(name);
    if (!label_names.empty() || extra) {
        line += '{';
        for (std::size_t i = 0; i < label_names.size(); ++i) {
            if (i > 0) line += ',';
            line += fmt::format("{}=\"{}\"", label_names[i], escape_label_value(values.at(i)));
        }
        if (extra) line += fmt::format("{}{}=\"{}\"", label_names.empty() ? "" : ",", extra->first,
                                       escape_label_value(extra->second));
        line += '}';
    }
    line += ' ';
    line += value;
    line += '\n';
    return line;
}

std::string histogram_lines(std::string_view name, const std::vector<std::string>& label_names,
                            const LabelValues& values, const Histogram::Snapshot& snapshot) {
    const std::string bucket = std::string(name) + "_bucket";
    std::string out;
    for (std::size_t i = 0; i < snapshot.upper_bounds.size(); ++i) {
        const std::pair<std::string, std::string> le{"le", format_value(snapshot.upper_bounds[i])};
        out += sample_line(bucket, label_names, values, std::to_string(snapshot.cumulative[i]), &le);
    }
    const std::pair<std::string, std::string> inf{"le", "+Inf"};
    out += sample_line(bucket, label_names, values, std::to_string(snapshot.count), &inf);
    out += sample_line(std::string(name) + "_sum", label_names, values, format_value(snapshot.sum));
    out += sample_line(std::string(name) + "_count", label_names, values, std::to_string(snapshot.count));
    return out;
}

}  // namespace vmgate::metrics
