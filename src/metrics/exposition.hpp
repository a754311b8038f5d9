// The Prometheus text exposition format, version 0.0.4: the pieces a registry renders with.
#pragma once

#include "metrics/registry.hpp"

#include <string>
#include <string_view>

namespace vmgate::metrics {

inline constexpr std::string_view exposition_content_type = "text/plain; version=0.0.4; charset=utf-8";

// [a-zA-Z_:][a-zA-Z0-9_:]*
bool valid_metric_name(std::string_view name);
// [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__" (reserved for Prometheus itself).
bool valid_label_name(std::string_view name);

// Label values: backslash, double quote and line feed escaped.
std::string escape_label_value(std::string_view value);
// HELP text: backslash and line feed escaped (a quote stays as it is).
std::string escape_help(std::string_view help);
// A sample value as Prometheus reads it: integers without a fraction, "+Inf", "-Inf", "NaN".
std::string format_value(double value);

// "# HELP name help\n# TYPE name type\n"
std::string family_header(std::string_view name, std::string_view help, Type type);
// name{a="1",b="2"} value   (no braces without labels). `extra` is appended after the family's
// labels (a histogram's le).
std::string sample_line(std::string_view name, const std::vector<std::string>& label_names,
                        const LabelValues& values, std::string_view value,
                        const std::pair<std::string, std::string>* extra = nullptr);
// The _bucket, _sum and _count lines of one histogram child.
std::string histogram_lines(std::string_view name, const std::vector<std::string>& label_names,
                            const LabelValues& values, const Histogram::Snapshot& snapshot);

}  // namespace vmgate::metrics
