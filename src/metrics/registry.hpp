// A small metrics registry: counters, gauges and histograms in families that share a name, a
// help text and label names. Updates are lock-free (counters, gauges) or take the histogram's
// own small lock; finding a child by its label values takes the family's lock, so hot paths look
// their child up once and keep the reference (children live as long as the registry).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <stdexcept>
#include <utility>
#include <variant>
#include <vector>

namespace vmgate::metrics {

// Label values, in the order of the family's label names.
using LabelValues = std::vector<std::string>;

class Counter {
public:
    void add(std::uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
    std::uint64_t value() const { return value_.load(std::memory_order_relaxed); }

private:
    std::atomic<std::uint64_t> value_{0};
};

class Gauge {
public:
    void add(std::int64_t n) { value_.fetch_add(n, std::memory_order_relaxed); }
    void set(std::int64_t v) { value_.store(v, std::memory_order_relaxed); }
    std::int64_t value() const { return value_.load(std::memory_order_relaxed); }

private:
    std::atomic<std::int64_t> value_{0};
};

class Histogram {
public:
    // `upper_bounds`: strictly increasing, finite; the +Inf bucket is implicit.
    explicit Histogram(std::vector<double> upper_bounds);
    void observe(double value);

    struct Snapshot {
        std::vector<double> upper_bounds;
        std::vector<std::uint64_t> cumulative;  // one per bound, then +Inf (== count)
        double sum = 0;
        std::uint64_t count = 0;
    };
    Snapshot snapshot() const;

private:
    const std::vector<double> upper_bounds_;
    mutable std::mutex mutex_;  // observations are per handshake, not per byte: a lock is cheap
    std::vector<std::uint64_t> counts_;  // per bucket, not cumulative; last = above every bound
    double sum_ = 0;
};

enum class Type { counter, gauge, histogram };

template <class Metric>
class Family {
public:
    using Factory = std::function<std::unique_ptr<Metric>()>;
    Family(std::string name, std::string help, std::vector<std::string> label_names, Factory make)
        : name_(std::move(name)), help_(std::move(help)), label_names_(std::move(label_names)), make_(std::move(make)) {}

    // The child for these label values, made on first use. Throws std::invalid_argument when the
    // number of values is not the number of label names.
    Metric& with(const LabelValues& values);

    const std::string& name() const { return name_; }
    const std::string& help() const { return help_; }
    const std::vector<std::string>& label_names() const { return label_names_; }
    // Every child in label order, under the family's lock.
    void for_each(const std::function<void(const LabelValues&, const Metric&)>& visit) const;

private:
    const std::string name_;
    const std::string help_;
    const std::vector<std::string> label_names_;
    const Factory make_;
    mutable std::mutex mutex_;
    std::map<LabelValues, std::unique_ptr<Metric>> children_;
};

// One sample of a family computed when scraped (e.g. live sessions counted from their registry).
struct Sample {
    LabelValues labels;
    double value = 0;
};

class Registry {
public:
    // Names are checked (Prometheus metric and label name rules; "le" is reserved) and must be
    // unique: std::invalid_argument otherwise, a programming error.
    Family<Counter>& counter(std::string name, std::string help, std::vector<std::string> label_names);
    Family<Gauge>& gauge(std::string name, std::string help, std::vector<std::string> label_names);
    Family<Histogram>& histogram(std::string name, std::string help, std::vector<std::string> label_names,
                                 std::vector<double> upper_bounds);
    // A gauge family whose samples `collect` returns at each scrape, on the scraping thread.
    void computed_gauge(std::string name, std::string help, std::vector<std::string> label_names,
                        std::function<std::vector<Sample>()> collect);

    // Every family in the Prometheus text exposition format 0.0.4, in registration order.
    std::string render() const;

private:
    struct Computed {
        std::string name, help;
        std::vector<std::string> label_names;
        std::function<std::vector<Sample>()> collect;
    };
    using Entry = std::variant<std::unique_ptr<Family<Counter>>, std::unique_ptr<Family<Gauge>>,
                               std::unique_ptr<Family<Histogram>>, std::unique_ptr<Computed>>;
    void claim_name(const std::string& name, const std::vector<std::string>& label_names);

    mutable std::mutex mutex_;
    std::vector<Entry> entries_;
    std::vector<std::string> names_;
};

template <class Metric>
Metric& Family<Metric>::with(const LabelValues& values) {
    if (values.size() != label_names_.size())
        throw std::invalid_argument(name_ + ": " + std::to_string(values.size()) + " label value(s) for " +
                                    std::to_string(label_names_.size()) + " label name(s)");
    std::lock_guard lock(mutex_);
    auto& child = children_[values];
    if (!child) child = make_();
    return *child;
}

template <class Metric>
void Family<Metric>::for_each(const std::function<void(const LabelValues&, const Metric&)>& visit) const {
    std::lock_guard lock(mutex_);
    for (const auto& [labels, child] : children_) visit(labels, *child);
}

}  // namespace vmgate::metrics
