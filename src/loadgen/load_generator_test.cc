#include "loadgen/load_generator.h"

#include <gtest/gtest.h>

namespace berth {
namespace {

TEST(PercentileTest, NearestRank) {
  std::vector<int64_t> v;
  for (int64_t i = 1; i <= 100; ++i) v.push_back(i);
  EXPECT_EQ(PercentileOfSorted(v, 50), 50);
  EXPECT_EQ(PercentileOfSorted(v, 90), 90);
  EXPECT_EQ(PercentileOfSorted(v, 99), 99);
  EXPECT_EQ(PercentileOfSorted(v, 99.9), 100);
  EXPECT_EQ(PercentileOfSorted(v, 100), 100);
  EXPECT_EQ(PercentileOfSorted(v, 0.5), 1);
}

TEST(PercentileTest, SmallAndEmpty) {
  EXPECT_EQ(PercentileOfSorted({}, 50), 0);
  EXPECT_EQ(PercentileOfSorted({7}, 50), 7);
  EXPECT_EQ(PercentileOfSorted({7}, 99.9), 7);
  // Two values: the median is the lower one (rank ceil(0.5 * 2) = 1), p90 the upper.
  EXPECT_EQ(PercentileOfSorted({10, 20}, 50), 10);
  EXPECT_EQ(PercentileOfSorted({10, 20}, 90), 20);
  // 1000 values: p99.9 is the 999th, not the maximum.
  std::vector<int64_t> v;
  for (int64_t i = 1; i <= 1000; ++i) v.push_back(i);
  EXPECT_EQ(PercentileOfSorted(v, 99.9), 999);
  EXPECT_EQ(PercentileOfSorted(v, 100), 1000);
}

TEST(ConcurrencyRangeTest, Forms) {
  EXPECT_EQ(*ParseConcurrencyRange("1:4:1"), (std::vector<int>{1, 2, 3, 4}));
  EXPECT_EQ(*ParseConcurrencyRange("1:4:2"), (std::vector<int>{1, 3}));
  EXPECT_EQ(*ParseConcurrencyRange("2:8:3"), (std::vector<int>{2, 5, 8}));
  EXPECT_EQ(*ParseConcurrencyRange("2:3"), (std::vector<int>{2, 3}));
  EXPECT_EQ(*ParseConcurrencyRange("5"), (std::vector<int>{5}));
}

TEST(ConcurrencyRangeTest, Errors) {
  for (const char* bad : {"", "0:4", "4:1", "1:4:0", "1:2:3:4", "a:b", "1::2", "-1:2", "1:20000"}) {
    auto r = ParseConcurrencyRange(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_NE(r.status().message().find("--concurrency-range"), std::string::npos) << bad;
    }
  }
}

TEST(ShapeOptionTest, ParsesNameAndDims) {
  auto s = ParseShapeOption("x:3,224,224");
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->first, "x");
  EXPECT_EQ(s->second, (std::vector<int64_t>{3, 224, 224}));
  // The last colon separates the name, so a name may contain one.
  auto odd = ParseShapeOption("a:b:7");
  ASSERT_TRUE(odd.ok());
  EXPECT_EQ(odd->first, "a:b");
  for (const char* bad : {"x", "x:", ":3", "x:0", "x:3,,4", "x:-1", "x:3,y"}) {
    EXPECT_FALSE(ParseShapeOption(bad).ok()) << bad;
  }
}

TEST(ServerUrlTest, Forms) {
  auto u = ParseServerUrl("http://127.0.0.1:8000");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, "8000");
  EXPECT_EQ(u->prefix, "");
  u = ParseServerUrl("http://localhost/");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->port, "80");
  EXPECT_EQ(u->prefix, "");
  u = ParseServerUrl("http://[::1]:9000/serving/");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, "9000");
  EXPECT_EQ(u->prefix, "/serving");
}

TEST(ServerUrlTest, Errors) {
  EXPECT_NE(ParseServerUrl("ftp://x:1").status().message().find("only http:// and https://"), std::string::npos);
  EXPECT_TRUE(ParseServerUrl("https://x:1")->tls);
  EXPECT_NE(ParseServerUrl("127.0.0.1:8000").status().message().find("no scheme"), std::string::npos);
  for (const char* bad : {"http://", "http://:80", "http://h:0", "http://h:70000", "http://h:x", "http://[::1",
                          "http://u@h:1", "http://h:1/?q"}) {
    EXPECT_FALSE(ParseServerUrl(bad).ok()) << bad;
  }
}

TEST(ReportFormatTest, Names) {
  EXPECT_EQ(*ParseReportFormat("table"), ReportFormat::kTable);
  EXPECT_EQ(*ParseReportFormat("json"), ReportFormat::kJson);
  EXPECT_EQ(*ParseReportFormat("csv"), ReportFormat::kCsv);
  EXPECT_FALSE(ParseReportFormat("yaml").ok());
}

TEST(FormatResultsTest, CsvHasOneRowPerLevelAndTheDocumentedColumns) {
  RunDescription run{"http://127.0.0.1:1", "m", 1, false, 10, 1, 2};
  LevelResult a;
  a.connections = 1;
  a.requests = 10;
  a.duration_s = 2;
  a.throughput_rps = 5;
  LevelResult b = a;
  b.connections = 2;
  b.non_2xx = 3;
  b.status_counts[500] = 3;
  std::string csv = FormatResults(run, {a, b}, ReportFormat::kCsv);
  EXPECT_EQ(csv.rfind("connections,requests,duration_s,throughput_rps,p50_us,p90_us,p99_us,p999_us,max_us,errors,"
                      "non_2xx,",
                      0),
            0u);
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 3);
  EXPECT_NE(csv.find("\n2,10,2.000,5.0,0,0,0,0,0,3,3,"), std::string::npos) << csv;

  std::string json = FormatResults(run, {a, b}, ReportFormat::kJson);
  EXPECT_NE(json.find(R"("status_counts":{"500":3})"), std::string::npos) << json;
  std::string table = FormatResults(run, {a, b}, ReportFormat::kTable);
  EXPECT_NE(table.find("errors with 2 connections: connection 0, timeouts 0, non-2xx 3"), std::string::npos) << table;
  EXPECT_NE(table.find("500:3"), std::string::npos) << table;
}

}  // namespace
}  // namespace berth
