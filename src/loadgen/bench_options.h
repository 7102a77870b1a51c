// The values of `berth bench`'s flags, parsed: where to send load, at which
// concurrency levels, with which shapes, reported how.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "berth/status.h"

namespace berth {

// An http[s]://host[:port][/prefix] base URL.
struct ServerUrl {
  std::string host;    // without brackets for IPv6 literals
  std::string port;    // "80" when the URL names none
  std::string prefix;  // path before /v2, without a trailing slash ("" usually)
  bool tls = false;    // https
};

// InvalidArgument naming the URL if it is not http[s]://host[:port][/path].
Result<ServerUrl> ParseServerUrl(std::string_view url);

// "a", "a:b" or "a:b:step" -> a, a+step, ... <= b. InvalidArgument unless
// 1 <= a <= b and step >= 1.
Result<std::vector<int>> ParseConcurrencyRange(std::string_view range);

// "NAME:d1,d2,..." -> {NAME, {d1, d2, ...}}; dims are positive integers.
Result<std::pair<std::string, std::vector<int64_t>>> ParseShapeOption(std::string_view option);

enum class ReportFormat { kTable, kJson, kCsv };
// "table", "json" or "csv".
Result<ReportFormat> ParseReportFormat(std::string_view name);

}  // namespace berth
