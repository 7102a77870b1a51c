// Base64 (RFC 4648): registry auth files and Basic auth, TF Serving's {"b64": ...} values.
#pragma once

#include <string>
#include <string_view>

#include "berth/status.h"

namespace berth {

std::string Base64Encode(std::string_view in);
// Accepts the standard and the URL-safe alphabet; padding and line breaks
// are skipped. InvalidArgument ("not base64") for any other character.
Result<std::string> Base64Decode(std::string_view in);

}  // namespace berth
