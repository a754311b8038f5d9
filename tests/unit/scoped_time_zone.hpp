// Sets TZ for one test and restores the previous value, so other tests see the usual zone.
// POSIX TZ strings ("EET-2", "CET-1CEST,M3.5.0,M10.5.0/3") need no tzdata.
#pragma once

#include <cstdlib>
#include <ctime>
#include <optional>
#include <string>

namespace vmgate::test_support {

class ScopedTimeZone {
public:
    explicit ScopedTimeZone(const char* tz) {
        if (const char* old = std::getenv("TZ")) saved_ = old;
        setenv("TZ", tz, 1);
        tzset();
    }
    ~ScopedTimeZone() {
        if (saved_) setenv("TZ", saved_->c_str(), 1);
        else unsetenv("TZ");
        tzset();
    }
    ScopedTimeZone(const ScopedTimeZone&) = delete;
    ScopedTimeZone& operator=(const ScopedTimeZone&) = delete;

private:
    std::optional<std::string> saved_;
};

}  // namespace vmgate::test_support
