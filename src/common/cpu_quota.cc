#include "common/cpu_quota.h"

#include <sched.h>

#include <cmath>
#include <cstdlib>
#include <sstream>
#include <thread>

#include "common/file_util.h"

namespace berth {
namespace {

std::optional<std::string> ReadFile(const char* path) {
  Result<std::string> text = ReadRegularFile(path, 4096);  // cgroup files: a line
  if (!text.ok()) return std::nullopt;
  return std::move(text).value();
}

std::optional<double> ToNumber(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.remove_suffix(1);
  if (s.empty()) return std::nullopt;
  try {
    size_t used = 0;
    double v = std::stod(std::string(s), &used);
    if (used != s.size()) return std::nullopt;
    return v;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace

std::optional<double> ParseCgroupV2CpuMax(std::string_view cpu_max) {
  auto space = cpu_max.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  std::string_view quota = cpu_max.substr(0, space);
  if (quota == "max") return std::nullopt;
  auto q = ToNumber(quota);
  auto p = ToNumber(cpu_max.substr(space + 1));
  if (!q || !p || *q <= 0 || *p <= 0) return std::nullopt;
  return *q / *p;
}

std::optional<double> ParseCgroupV1Quota(std::string_view quota, std::string_view period) {
  auto q = ToNumber(quota);
  auto p = ToNumber(period);
  if (!q || !p || *q <= 0 || *p <= 0) return std::nullopt;
  return *q / *p;
}

std::optional<double> ParseMillicores(std::string_view text) {
  auto v = ToNumber(text);
  if (!v || *v <= 0 || *v > 1e9 || *v != std::floor(*v)) return std::nullopt;
  return *v / 1000;
}

int ThreadsFor(double cpus) { return std::max(1, static_cast<int>(std::ceil(cpus - 1e-9))); }

CpuBudget DetectCpuBudget() {
  CpuBudget b;
  cpu_set_t set;
  int affinity = 0;
  if (sched_getaffinity(0, sizeof set, &set) == 0) affinity = CPU_COUNT(&set);
  if (affinity <= 0) affinity = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  b.cpus = affinity;
  b.source = std::to_string(affinity) + " CPUs in the affinity mask";

  std::optional<double> quota;
  std::string where;
  if (auto v2 = ReadFile("/sys/fs/cgroup/cpu.max")) {
    quota = ParseCgroupV2CpuMax(*v2);
    where = "cgroup v2 cpu.max";
  } else {
    auto q = ReadFile("/sys/fs/cgroup/cpu/cpu.cfs_quota_us");
    auto p = ReadFile("/sys/fs/cgroup/cpu/cpu.cfs_period_us");
    if (q && p) quota = ParseCgroupV1Quota(*q, *p);
    where = "cgroup v1 cpu.cfs_quota_us";
  }
  if (quota && *quota < b.cpus) {
    b.cpus = *quota;
    std::ostringstream ss;
    ss << *quota << " CPUs from the " << where << " quota";
    b.source = ss.str();
  }
  // Kubernetes' downward API (`berth deploy` sets it from limits.cpu, divisor 1m), for runtimes whose
  // cgroup the container cannot read.
  if (const char* env = std::getenv(kCpuLimitEnv)) {
    auto limit = ParseMillicores(env);
    if (limit && *limit < b.cpus) {
      b.cpus = *limit;
      std::ostringstream ss;
      ss << *limit << " CPUs from " << kCpuLimitEnv << " (the pod's CPU limit)";
      b.source = ss.str();
    }
  }
  return b;
}

}  // namespace berth
