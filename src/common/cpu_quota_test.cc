#include "common/cpu_quota.h"

#include <gtest/gtest.h>

#include <cstdlib>

namespace berth {
namespace {

TEST(CpuQuotaTest, ParsesCgroupFiles) {
  EXPECT_EQ(ParseCgroupV2CpuMax("200000 100000\n"), 2.0);
  EXPECT_EQ(ParseCgroupV2CpuMax("50000 100000"), 0.5);
  EXPECT_FALSE(ParseCgroupV2CpuMax("max 100000\n").has_value());
  EXPECT_FALSE(ParseCgroupV2CpuMax("garbage").has_value());
  EXPECT_EQ(ParseCgroupV1Quota("150000\n", "100000\n"), 1.5);
  EXPECT_FALSE(ParseCgroupV1Quota("-1\n", "100000\n").has_value());
}

TEST(CpuQuotaTest, PodCpuLimitFromTheDownwardApi) {
  EXPECT_EQ(ParseMillicores("1500"), 1.5);
  EXPECT_EQ(ParseMillicores("1\n"), 0.001);
  for (const char* bad : {"", "0", "-5", "1.5", "2Gi", "1e99"}) EXPECT_FALSE(ParseMillicores(bad).has_value()) << bad;
  ::setenv(kCpuLimitEnv, "1000", 1);
  CpuBudget b = DetectCpuBudget();
  ::unsetenv(kCpuLimitEnv);
  EXPECT_EQ(b.cpus, 1.0);
  EXPECT_NE(b.source.find(kCpuLimitEnv), std::string::npos) << b.source;
}

TEST(CpuQuotaTest, ThreadsRoundUpAndNeverZero) {
  EXPECT_EQ(ThreadsFor(0.5), 1);
  EXPECT_EQ(ThreadsFor(1.0), 1);
  EXPECT_EQ(ThreadsFor(1.5), 2);
  EXPECT_EQ(ThreadsFor(4), 4);
  EXPECT_GE(DetectCpuBudget().cpus, 0.01);
}

}  // namespace
}  // namespace berth
