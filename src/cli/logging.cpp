#include "cli/logging.hpp"

#include "core/journal_stream.hpp"

#include <spdlog/sinks/systemd_sink.h>
#include <spdlog/spdlog.h>

namespace vmgate::cli {

void log_to_journal_if_connected() {
    if (!core::stderr_is_journal()) return;
    // MESSAGE carries the text alone: the journal records time, priority and identifier itself.
    auto sink = std::make_shared<spdlog::sinks::systemd_sink_mt>("vmgate");
    auto logger = std::make_shared<spdlog::logger>("vmgate", std::move(sink));
    logger->set_level(spdlog::default_logger()->level());
    spdlog::set_default_logger(std::move(logger));
}

}  // namespace vmgate::cli
