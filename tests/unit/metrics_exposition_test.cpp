// The Prometheus text format 0.0.4 as the registry writes it.
#include "metrics/exposition.hpp"
#include "metrics/registry.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <thread>

namespace vmgate::metrics {
namespace {

TEST(Exposition, LabelValuesEscapeBackslashQuoteAndNewline) {
    EXPECT_EQ(escape_label_value(R"(a\b"c)" "\n" "d"), R"(a\\b\"c\nd)");
    EXPECT_EQ(escape_label_value("plain value"), "plain value");
}

TEST(Exposition, HelpEscapesBackslashAndNewlineButNotQuotes) {
    EXPECT_EQ(escape_help("say \"hi\"\\\nbye"), "say \"hi\"\\\\\\nbye");
}

TEST(Exposition, ValuesAreIntegersWhenWholeAndSpecialValuesAreSpelledOut) {
    EXPECT_EQ(format_value(0), "0");
    EXPECT_EQ(format_value(1000000), "1000000");
    EXPECT_EQ(format_value(0.25), "0.25");
    EXPECT_EQ(format_value(-3), "-3");
    EXPECT_EQ(format_value(std::numeric_limits<double>::infinity()), "+Inf");
    EXPECT_EQ(format_value(-std::numeric_limits<double>::infinity()), "-Inf");
    EXPECT_EQ(format_value(std::nan("")), "NaN");
}

TEST(Exposition, NamesFollowPrometheusRules) {
    EXPECT_TRUE(valid_metric_name("vmgate_connections_total"));
    EXPECT_TRUE(valid_metric_name("a:b"));
    EXPECT_FALSE(valid_metric_name("1abc"));
    EXPECT_FALSE(valid_metric_name("a-b"));
    EXPECT_FALSE(valid_metric_name(""));
    EXPECT_TRUE(valid_label_name("vm"));
    EXPECT_FALSE(valid_label_name("__name__"));
    EXPECT_FALSE(valid_label_name("a:b"));
    EXPECT_FALSE(valid_label_name("9"));
}

TEST(Exposition, SampleLineWithAndWithoutLabels) {
    EXPECT_EQ(sample_line("up", {}, {}, "1"), "up 1\n");
    EXPECT_EQ(sample_line("x_total", {"vm", "dir"}, {"a\"b", "in"}, "7"), "x_total{vm=\"a\\\"b\",dir=\"in\"} 7\n");
}

TEST(Registry, CountersRenderWithHelpTypeAndSortedChildren) {
    Registry r;
    auto& c = r.counter("vmgate_things_total", "Things.\nMany of them.", {"kind"});
    c.with({"b"}).add(2);
    c.with({"a"}).add();
    c.with({"b"}).add(3);
    EXPECT_EQ(r.render(),
              "# HELP vmgate_things_total Things.\\nMany of them.\n"
              "# TYPE vmgate_things_total counter\n"
              "vmgate_things_total{kind=\"a\"} 1\n"
              "vmgate_things_total{kind=\"b\"} 5\n");
}

TEST(Registry, GaugesGoUpAndDown) {
    Registry r;
    auto& g = r.gauge("vmgate_level", "Level.", {});
    g.with({}).add(3);
    g.with({}).add(-5);
    EXPECT_EQ(r.render(), "# HELP vmgate_level Level.\n# TYPE vmgate_level gauge\nvmgate_level -2\n");
}

TEST(Registry, HistogramBucketsAreCumulativeWithInfSumAndCount) {
    Registry r;
    auto& h = r.histogram("vmgate_wait_seconds", "Wait.", {"protocol"}, {0.5, 1});
    auto& spice = h.with({"spice"});
    spice.observe(0.25);
    spice.observe(0.5);  // on the bound: in that bucket
    spice.observe(0.75);
    spice.observe(7);
    EXPECT_EQ(r.render(),
              "# HELP vmgate_wait_seconds Wait.\n"
              "# TYPE vmgate_wait_seconds histogram\n"
              "vmgate_wait_seconds_bucket{protocol=\"spice\",le=\"0.5\"} 2\n"
              "vmgate_wait_seconds_bucket{protocol=\"spice\",le=\"1\"} 3\n"
              "vmgate_wait_seconds_bucket{protocol=\"spice\",le=\"+Inf\"} 4\n"
              "vmgate_wait_seconds_sum{protocol=\"spice\"} 8.5\n"
              "vmgate_wait_seconds_count{protocol=\"spice\"} 4\n");
}

TEST(Registry, HistogramWithoutLabelsPutsLeAlone) {
    Registry r;
    r.histogram("h", "H.", {}, {2}).with({}).observe(1);
    EXPECT_NE(r.render().find("h_bucket{le=\"2\"} 1\n"), std::string::npos);
}

TEST(Registry, ComputedGaugesAreAskedAtEachRender) {
    Registry r;
    int calls = 0;
    r.computed_gauge("vmgate_sessions_active", "Sessions.", {"vm"}, [&] {
        ++calls;
        return std::vector<Sample>{{{"vm1"}, double(calls)}, {{"vm\n2"}, 0}};
    });
    r.render();
    EXPECT_EQ(r.render(),
              "# HELP vmgate_sessions_active Sessions.\n"
              "# TYPE vmgate_sessions_active gauge\n"
              "vmgate_sessions_active{vm=\"vm1\"} 2\n"
              "vmgate_sessions_active{vm=\"vm\\n2\"} 0\n");
}

TEST(Registry, FamiliesRenderInRegistrationOrderEvenWithoutChildren) {
    Registry r;
    r.counter("b_total", "B.", {"x"});
    r.gauge("a", "A.", {});
    EXPECT_EQ(r.render(), "# HELP b_total B.\n# TYPE b_total counter\n# HELP a A.\n# TYPE a gauge\n");
}

TEST(Registry, RefusesBadOrDuplicateNamesAndWrongLabelCounts) {
    Registry r;
    auto& c = r.counter("ok_total", "Ok.", {"a"});
    EXPECT_THROW(r.counter("ok_total", "Again.", {}), std::invalid_argument);
    EXPECT_THROW(r.gauge("bad-name", "Bad.", {}), std::invalid_argument);
    EXPECT_THROW(r.gauge("g", "G.", {"le"}), std::invalid_argument);
    EXPECT_THROW(r.histogram("h", "H.", {}, {1, 1}), std::invalid_argument);
    EXPECT_THROW(c.with({"x", "y"}), std::invalid_argument);
}

TEST(Registry, ConcurrentCountingLosesNothing) {
    Registry r;
    auto& c = r.counter("n_total", "N.", {}).with({});
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 10000; ++i) c.add();
        });
    for (auto& t : threads) t.join();
    EXPECT_EQ(c.value(), 40000u);
}

}  // namespace
}  // namespace vmgate::metrics
