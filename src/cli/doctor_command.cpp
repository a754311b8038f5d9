#include "cli/doctor_command.hpp"

#include "core/config_support.hpp"
#include "doctor/host.hpp"

#include <iostream>

namespace vmgate::cli {
namespace {

constexpr int kDoctorFailed = 2;  // as an error finding: the host is not known to be safe

}  // namespace

int run_doctor(const DoctorArgs& args) {
    const std::string config_path =
        args.config_path.empty() ? doctor::host_path(args.root, default_config_path) : args.config_path;
    auto loaded = core::load_config_file(config_path);
    if (loaded.config) loaded.errors = core::unsupported_settings(*loaded.config);
    if (!loaded.errors.empty()) {
        print_config_errors(loaded.errors, config_path);
        return kDoctorFailed;
    }
    std::string error;
    const auto account = doctor::find_account(args.user, error);
    if (!account) {
        std::cerr << "vmgate doctor: " << error << "\n";
        return kDoctorFailed;
    }
    const doctor::Report report =
        doctor::examine_host(*loaded.config, {args.root, *account, args.libvirt_uri, std::chrono::system_clock::now()});
    if (args.json)
        std::cout << doctor::report_json(report).dump(2) << "\n";
    else
        std::cout << doctor::report_text(report);
    return report.exit_status();
}

}  // namespace vmgate::cli
