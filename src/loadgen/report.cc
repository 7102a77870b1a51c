#include "loadgen/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "common/json_writer.h"

namespace berth {

int64_t PercentileOfSorted(const std::vector<int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  // Nearest rank: the smallest value with at least p% of the values at or below it.
  // The epsilon keeps representation error (99.9% of 1000 = 999.0000000000001) from adding a rank.
  double rank = std::ceil(p * static_cast<double>(sorted.size()) / 100.0 - 1e-9);
  size_t index = rank < 1 ? 0 : static_cast<size_t>(rank) - 1;
  return sorted[std::min(index, sorted.size() - 1)];
}

// Reports.

namespace {

std::string Fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string StatusCounts(const LevelResult& r) {
  std::string out;
  for (const auto& [status, n] : r.status_counts) {
    if (!out.empty()) out += " ";
    out += std::to_string(status) + ":" + std::to_string(n);
  }
  return out;
}

std::string FormatTable(const RunDescription& run, const std::vector<LevelResult>& levels) {
  std::string out = "berth bench " + run.url + "  model " + run.model + "  batch " + std::to_string(run.batch_size) +
                    "  " + (run.protocol == "http" ? "" : run.protocol + " ") +
                    (run.protocol == "grpc" ? "raw"
                     : run.binary           ? "binary"
                                            : "json") +
                    " body " + std::to_string(run.request_bytes) + " B  warmup " + Fixed(run.warmup_s, 1) +
                    " s  window " + Fixed(run.duration_s, 1) + " s\n";
  char line[256];
  std::snprintf(line, sizeof line, "%11s %10s %11s %11s %9s %9s %9s %9s %9s %8s\n", "connections", "requests", "req/s",
                "rows/s", "p50 us", "p90 us", "p99 us", "p99.9 us", "max us", "errors");
  out += line;
  for (const LevelResult& r : levels) {
    std::snprintf(line, sizeof line, "%11d %10lld %11.1f %11.1f %9lld %9lld %9lld %9lld %9lld %8lld\n", r.connections,
                  static_cast<long long>(r.requests), r.throughput_rps, r.throughput_rows_per_s,
                  static_cast<long long>(r.p50_us), static_cast<long long>(r.p90_us), static_cast<long long>(r.p99_us),
                  static_cast<long long>(r.p999_us), static_cast<long long>(r.max_us),
                  static_cast<long long>(r.errors()));
    out += line;
  }
  for (const LevelResult& r : levels) {
    if (r.errors() == 0) continue;
    out += "errors with " + std::to_string(r.connections) + (r.connections == 1 ? " connection" : " connections") +
           ": connection " + std::to_string(r.connection_errors) + ", timeouts " + std::to_string(r.timeouts) +
           ", non-2xx " + std::to_string(r.non_2xx) + ", invalid answers " + std::to_string(r.invalid_responses);
    if (!r.status_counts.empty()) out += " (status " + StatusCounts(r) + ")";
    out += "\n";
  }
  return out;
}

// The numeric fields of one level's record, in the order both CSV and JSON use.
std::vector<std::pair<std::string_view, std::string>> NumericFields(const LevelResult& r) {
  auto i = [](int64_t v) { return std::to_string(v); };
  return {{"connections", i(r.connections)},
          {"requests", i(r.requests)},
          {"duration_s", Fixed(r.duration_s, 3)},
          {"throughput_rps", Fixed(r.throughput_rps, 1)},
          {"p50_us", i(r.p50_us)},
          {"p90_us", i(r.p90_us)},
          {"p99_us", i(r.p99_us)},
          {"p999_us", i(r.p999_us)},
          {"max_us", i(r.max_us)},
          {"errors", i(r.errors())},
          {"non_2xx", i(r.non_2xx)},
          {"throughput_rows_per_s", Fixed(r.throughput_rows_per_s, 1)},
          {"mean_us", Fixed(r.mean_us, 1)},
          {"connection_errors", i(r.connection_errors)},
          {"timeouts", i(r.timeouts)},
          {"invalid_responses", i(r.invalid_responses)}};
}

std::string FormatJson(const RunDescription& run, const std::vector<LevelResult>& levels) {
  std::string out;
  JsonWriter w(&out);
  w.BeginArray();
  for (const LevelResult& r : levels) {
    w.BeginObject();
    w.Key("model");
    w.String(run.model);
    w.Key("batch_size");
    w.Int(run.batch_size);
    for (const auto& [key, value] : NumericFields(r)) {
      w.Key(key);
      w.Raw(value);
    }
    w.Key("status_counts");
    w.BeginObject();
    for (const auto& [status, n] : r.status_counts) {
      w.Key(std::to_string(status));
      w.Int(n);
    }
    w.EndObject();
    w.EndObject();
  }
  w.EndArray();
  return out + "\n";
}

std::string FormatCsv(const std::vector<LevelResult>& levels) {
  std::string out;
  for (const auto& field : NumericFields(LevelResult{})) out += std::string(field.first) + ",";
  out += "status_counts\n";
  for (const LevelResult& r : levels) {
    for (const auto& field : NumericFields(r)) out += field.second + ",";
    out += StatusCounts(r) + "\n";
  }
  return out;
}

}  // namespace

std::string FormatResults(const RunDescription& run, const std::vector<LevelResult>& levels, ReportFormat format) {
  switch (format) {
    case ReportFormat::kJson: return FormatJson(run, levels);
    case ReportFormat::kCsv: return FormatCsv(levels);
    case ReportFormat::kTable: break;
  }
  return FormatTable(run, levels);
}

}  // namespace berth
