// Shared by the doctor unit tests: the ids of a list of findings, for EXPECT_THAT matchers.
#pragma once

#include "doctor/finding.hpp"

#include <string>
#include <vector>

namespace vmgate::doctor::test {

inline std::vector<std::string> ids(const Findings& findings) {
    std::vector<std::string> out;
    for (const auto& f : findings) out.push_back(f.id);
    return out;
}

}  // namespace vmgate::doctor::test
