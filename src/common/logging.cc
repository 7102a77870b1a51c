#include "common/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <mutex>
#include <string>
#include <unordered_map>

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

void WarnRateLimited(const std::string& message, std::chrono::seconds period) {
  struct Seen {
    std::chrono::steady_clock::time_point last;
    uint64_t held_back = 0;
  };
  static std::mutex mu;
  static std::unordered_map<std::string, Seen> seen;  // GUARDED_BY(mu)
  auto now = std::chrono::steady_clock::now();
  uint64_t held_back = 0;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (seen.size() > 4096) seen.clear();  // bounded whatever the messages
    auto [it, fresh] = seen.try_emplace(message);
    if (!fresh && now - it->second.last < period) {
      ++it->second.held_back;
      return;
    }
    held_back = it->second.held_back;
    it->second = Seen{now, 0};
  }
  if (held_back > 0) {
    spdlog::warn("{} ({} more like it in the last {} s)", message, held_back,
                 std::chrono::duration_cast<std::chrono::seconds>(period).count());
  } else {
    spdlog::warn("{}", message);
  }
}

}  // namespace berth
