// How many CPUs this process may use: the cgroup CPU quota (v2 cpu.max or
// v1 cfs_quota_us/cfs_period_us) and the affinity mask, not the host's cores.
// Containers under Kubernetes see every host core but may use only their quota.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace berth {

struct CpuBudget {
  double cpus = 1;     // usable CPUs (fractional with a quota)
  std::string source;  // what decided it, for the startup log
};

// Also honours kCpuLimitEnv when it is set and lower than the rest.
CpuBudget DetectCpuBudget();

// The pod's CPU limit in millicores, as Kubernetes' downward API writes it
// (resourceFieldRef limits.cpu, divisor 1m): "2000" = 2 CPUs.
inline constexpr const char* kCpuLimitEnv = "BERTH_CPU_LIMIT_MILLICORES";

// Parsers, exposed for tests. nullopt = no limit or unreadable.
std::optional<double> ParseCgroupV2CpuMax(std::string_view cpu_max);                        // "200000 100000" -> 2
std::optional<double> ParseCgroupV1Quota(std::string_view quota, std::string_view period);  // "-1" -> none
std::optional<double> ParseMillicores(std::string_view text);                               // "1500" -> 1.5

// Threads for `cpus` CPUs: at least 1, rounded up.
int ThreadsFor(double cpus);

}  // namespace berth
