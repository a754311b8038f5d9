#include "cli/config_file.hpp"

#include <iostream>

namespace vmgate::cli {

void print_config_errors(const std::vector<core::ConfigError>& errors, const std::string& path) {
    for (const auto& e : errors) std::cerr << e.to_string() << "\n";
    std::cerr << errors.size() << " error(s) in " << path << "\n";
}

}  // namespace vmgate::cli
