// Logging setup: spdlog's default logger, one line per event.
#pragma once

#include <string_view>

#include "berth/status.h"

namespace berth {

// Sets the process log level: trace, debug, info, warn, error, critical, off.
Status InitLogging(std::string_view level);

}  // namespace berth
