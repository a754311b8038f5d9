#include "metrics/registry.hpp"

#include "metrics/exposition.hpp"

#include <algorithm>
#include <cmath>

namespace vmgate::metrics {

Histogram::Histogram(std::vector<double> upper_bounds)
    : upper_bounds_(std::move(upper_bounds)), counts_(upper_bounds_.size() + 1, 0) {
    for (std::size_t i = 0; i < upper_bounds_.size(); ++i) {
        if (!std::isfinite(upper_bounds_[i]) || (i > 0 && upper_bounds_[i] <= upper_bounds_[i - 1]))
            throw std::invalid_argument("histogram bounds must be finite and strictly increasing");
    }
}

void Histogram::observe(double value) {
    // A bucket counts the values up to and including its bound.
    const auto bucket = std::lower_bound(upper_bounds_.begin(), upper_bounds_.end(), value) - upper_bounds_.begin();
    std::lock_guard lock(mutex_);
    ++counts_[static_cast<std::size_t>(bucket)];
    sum_ += value;
}

Histogram::Snapshot Histogram::snapshot() const {
    Snapshot s;
    s.upper_bounds = upper_bounds_;
    std::lock_guard lock(mutex_);
    std::uint64_t running = 0;
    for (std::size_t i = 0; i < upper_bounds_.size(); ++i) {
        running += counts_[i];
        s.cumulative.push_back(running);
    }
    s.count = running + counts_.back();
    s.sum = sum_;
    return s;
}

void Registry::claim_name(const std::string& name, const std::vector<std::string>& label_names) {
    if (!valid_metric_name(name)) throw std::invalid_argument("invalid metric name \"" + name + "\"");
    for (const auto& label : label_names)
        if (!valid_label_name(label) || label == "le")
            throw std::invalid_argument(name + ": invalid label name \"" + label + "\"");
    if (std::find(names_.begin(), names_.end(), name) != names_.end())
        throw std::invalid_argument("metric \"" + name + "\" registered twice");
    names_.push_back(name);
}

Family<Counter>& Registry::counter(std::string name, std::string help, std::vector<std::string> label_names) {
    std::lock_guard lock(mutex_);
    claim_name(name, label_names);
    auto family = std::make_unique<Family<Counter>>(std::move(name), std::move(help), std::move(label_names),
                                                    [] { return std::make_unique<Counter>(); });
    auto& ref = *family;
    entries_.emplace_back(std::move(family));
    return ref;
}

Family<Gauge>& Registry::gauge(std::string name, std::string help, std::vector<std::string> label_names) {
    std::lock_guard lock(mutex_);
    claim_name(name, label_names);
    auto family = std::make_unique<Family<Gauge>>(std::move(name), std::move(help), std::move(label_names),
                                                  [] { return std::make_unique<Gauge>(); });
    auto& ref = *family;
    entries_.emplace_back(std::move(family));
    return ref;
}

Family<Histogram>& Registry::histogram(std::string name, std::string help, std::vector<std::string> label_names,
                                       std::vector<double> upper_bounds) {
    std::lock_guard lock(mutex_);
    claim_name(name, label_names);
    Histogram check(upper_bounds);  // bad bounds are refused now, not at the first observation
    auto family = std::make_unique<Family<Histogram>>(
        std::move(name), std::move(help), std::move(label_names),
        [bounds = std::move(upper_bounds)] { return std::make_unique<Histogram>(bounds); });
    auto& ref = *family;
    entries_.emplace_back(std::move(family));
    return ref;
}

void Registry::computed_gauge(std::string name, std::string help, std::vector<std::string> label_names,
                              std::function<std::vector<Sample>()> collect) {
    std::lock_guard lock(mutex_);
    claim_name(name, label_names);
    entries_.emplace_back(std::make_unique<Computed>(
        Computed{std::move(name), std::move(help), std::move(label_names), std::move(collect)}));
}

std::string Registry::render() const {
    struct Render {
        std::string& out;
        void operator()(const std::unique_ptr<Family<Counter>>& f) const {
            out += family_header(f->name(), f->help(), Type::counter);
            f->for_each([&](const LabelValues& v, const Counter& c) {
                out += sample_line(f->name(), f->label_names(), v, std::to_string(c.value()));
            });
        }
        void operator()(const std::unique_ptr<Family<Gauge>>& f) const {
            out += family_header(f->name(), f->help(), Type::gauge);
            f->for_each([&](const LabelValues& v, const Gauge& g) {
                out += sample_line(f->name(), f->label_names(), v, std::to_string(g.value()));
            });
        }
        void operator()(const std::unique_ptr<Family<Histogram>>& f) const {
            out += family_header(f->name(), f->help(), Type::histogram);
            f->for_each([&](const LabelValues& v, const Histogram& h) {
                out += histogram_lines(f->name(), f->label_names(), v, h.snapshot());
            });
        }
        void operator()(const std::unique_ptr<Computed>& f) const {
            out += family_header(f->name, f->help, Type::gauge);
            for (const auto& sample : f->collect())
                out += sample_line(f->name, f->label_names, sample.labels, format_value(sample.value));
        }
    };
    std::string out;
    std::lock_guard lock(mutex_);
    for (const auto& entry : entries_) std::visit(Render{out}, entry);
    return out;
}

}  // namespace vmgate::metrics
