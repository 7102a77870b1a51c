#include "common/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <string>

namespace berth {

Status InitLogging(std::string_view level) {
  auto lvl = spdlog::level::from_str(std::string(level));
  if (lvl == spdlog::level::off && level != "off") {
    return InvalidArgument("--log-level: expected one of trace, debug, info, warn, error, critical, off; got '" +
                           std::string(level) + "'");
  }
  // Logs go to stderr: stdout carries answers (`berth predict`, `berth inspect`).
  spdlog::set_default_logger(spdlog::stderr_color_mt("berth"));
  spdlog::set_level(lvl);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ %v");
  spdlog::flush_on(spdlog::level::info);
  return Status::Ok();
}

}  // namespace berth
