// Logging setup: spdlog's default logger, one line per event.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "berth/status.h"

namespace berth {

// Sets the process log level: trace, debug, info, warn, error, critical, off.
Status InitLogging(std::string_view level);

// Logs `message` as a warning at most once per `period` for each distinct
// message: a client that triggers the same model error in a loop cannot flood
// the log. The next one logged says how many were held back meanwhile.
// Thread-safe.
void WarnRateLimited(const std::string& message, std::chrono::seconds period = std::chrono::seconds(10));

}  // namespace berth
