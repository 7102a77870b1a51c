// Bearer tokens for the admin (model control) and inference endpoints.
#pragma once

#include <string>
#include <string_view>

#include "berth/status.h"

namespace berth {

// Reads a token file: its contents with surrounding whitespace removed.
// Error if unreadable or empty. The token is never logged.
Result<std::string> ReadTokenFile(const std::string& path);

// True if `authorization` is "Bearer <token>" with exactly `token`. Compares
// in time independent of where the first difference is.
bool BearerMatches(std::string_view authorization, const std::string& token);

}  // namespace berth
