#include "loadgen/bench_options.h"

#include <charconv>

#include "net/url.h"

namespace berth {
namespace {

Result<int64_t> ParsePositive(std::string_view s, std::string_view what) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size() || v < 1) {
    return InvalidArgument(std::string(what) + ": expected a positive integer, got '" + std::string(s) + "'");
  }
  return v;
}

}  // namespace

Result<ServerUrl> ParseServerUrl(std::string_view url) {
  auto bad = [&](std::string why) {
    return InvalidArgument("URL '" + std::string(url) + "': " + why +
                           " (expected http://host:port or https://host:port)");
  };
  if (url.find("://") == std::string_view::npos) return bad("no scheme");
  if (url.substr(0, 7) != "http://" && url.substr(0, 8) != "https://")
    return bad("only http:// and https:// are supported");
  Result<Url> parsed = ParseUrl(url);
  if (!parsed.ok()) return InvalidArgument(parsed.status().message() + " (expected http://host:port)");
  std::string_view path = parsed->target;
  if (path.find('?') != std::string_view::npos) return bad("no query or fragment allowed");
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  return ServerUrl{parsed->host, parsed->port, std::string(path), parsed->tls};
}

Result<std::vector<int>> ParseConcurrencyRange(std::string_view range) {
  std::vector<int64_t> parts;
  std::string_view rest = range;
  while (true) {
    size_t colon = rest.find(':');
    auto v = ParsePositive(rest.substr(0, colon), "--concurrency-range '" + std::string(range) + "'");
    if (!v.ok()) return v.status();
    parts.push_back(*v);
    if (colon == std::string_view::npos) break;
    rest.remove_prefix(colon + 1);
  }
  if (parts.size() > 3) return InvalidArgument("--concurrency-range '" + std::string(range) + "': expected a:b:step");
  int64_t first = parts[0];
  int64_t last = parts.size() > 1 ? parts[1] : first;
  int64_t step = parts.size() > 2 ? parts[2] : 1;
  if (last < first) {
    return InvalidArgument("--concurrency-range '" + std::string(range) + "': the end is below the start");
  }
  if (last > 10000) return InvalidArgument("--concurrency-range '" + std::string(range) + "': at most 10000");
  std::vector<int> levels;
  for (int64_t c = first; c <= last; c += step) levels.push_back(static_cast<int>(c));
  return levels;
}

Result<std::pair<std::string, std::vector<int64_t>>> ParseShapeOption(std::string_view option) {
  size_t colon = option.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == option.size()) {
    return InvalidArgument("--shape '" + std::string(option) + "': expected NAME:d1,d2,...");
  }
  std::pair<std::string, std::vector<int64_t>> out{std::string(option.substr(0, colon)), {}};
  std::string_view dims = option.substr(colon + 1);
  while (true) {
    size_t comma = dims.find(',');
    auto d = ParsePositive(dims.substr(0, comma), "--shape '" + std::string(option) + "'");
    if (!d.ok()) return d.status();
    out.second.push_back(*d);
    if (comma == std::string_view::npos) break;
    dims.remove_prefix(comma + 1);
  }
  return out;
}

Result<ReportFormat> ParseReportFormat(std::string_view name) {
  if (name == "table") return ReportFormat::kTable;
  if (name == "json") return ReportFormat::kJson;
  if (name == "csv") return ReportFormat::kCsv;
  return InvalidArgument("--format '" + std::string(name) + "': expected table, json or csv");
}

}  // namespace berth
