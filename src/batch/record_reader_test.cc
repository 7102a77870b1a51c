#include "batch/record_reader.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

namespace berth {
namespace {

class RecordReaderTest : public ::testing::TestWithParam<size_t> {
 protected:
  std::string Write(const std::string& content) {
    char name[] = "/tmp/berth_reader_XXXXXX";
    int fd = mkstemp(name);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
    close(fd);
    paths_.push_back(name);
    return name;
  }
  void TearDown() override {
    for (const auto& p : paths_) std::remove(p.c_str());
  }
  RecordReader::Options Opts() {
    RecordReader::Options o;
    o.block_bytes = GetParam();  // tiny blocks: records span refills
    return o;
  }
  std::vector<std::string> paths_;
};

std::vector<std::vector<std::string>> ReadAll(RecordReader& r, std::vector<int64_t>* lines = nullptr,
                                              std::vector<std::string>* errors = nullptr) {
  std::vector<std::vector<std::string>> rows;
  Record rec;
  for (;;) {
    auto any = r.Next(&rec);
    EXPECT_TRUE(any.ok()) << any.status().message();
    if (!any.ok() || !*any) break;
    if (lines) lines->push_back(rec.line);
    if (errors) errors->push_back(rec.error.ok() ? "" : rec.error.message());
    rows.emplace_back(rec.fields.begin(), rec.fields.end());
  }
  return rows;
}

TEST_P(RecordReaderTest, QuotesNewlinesCrlfBomBlankLines) {
  std::string csv =
      "\xEF\xBB\xBF"
      "id,text,x\r\n"
      "1,plain,1.5\r\n"
      "2,\"a, b\",2\r\n"
      "\r\n"
      "3,\"say \"\"hi\"\"\",3\n"
      "4,\"two\nlines\",4\n"
      "5,,\n"
      "6,\"q\"tail,6\n"
      "7,mid\"quote,7";
  auto r = RecordReader::OpenCsv(Write(csv), Opts());
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ((*r)->columns(), (std::vector<std::string>{"id", "text", "x"}));
  std::vector<int64_t> lines;
  auto rows = ReadAll(**r, &lines);
  ASSERT_EQ(rows.size(), 7u);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"1", "plain", "1.5"}));
  EXPECT_EQ(rows[1], (std::vector<std::string>{"2", "a, b", "2"}));
  EXPECT_EQ(rows[2], (std::vector<std::string>{"3", "say \"hi\"", "3"}));
  EXPECT_EQ(rows[3], (std::vector<std::string>{"4", "two\nlines", "4"}));
  EXPECT_EQ(rows[4], (std::vector<std::string>{"5", "", ""}));
  EXPECT_EQ(rows[5], (std::vector<std::string>{"6", "qtail", "6"}));
  EXPECT_EQ(rows[6], (std::vector<std::string>{"7", "mid\"quote", "7"}));
  EXPECT_EQ(lines, (std::vector<int64_t>{2, 3, 5, 6, 8, 9, 10}));
}

TEST_P(RecordReaderTest, LoneCarriageReturnsEndRecordsAsInPandas) {
  std::string csv = "a,b\r1,2\r\r3,\"x\ry\"\r4,5\r\n6,7\r";
  auto r = RecordReader::OpenCsv(Write(csv), Opts());
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ((*r)->columns(), (std::vector<std::string>{"a", "b"}));
  std::vector<int64_t> lines;
  auto rows = ReadAll(**r, &lines);
  EXPECT_EQ(rows, (std::vector<std::vector<std::string>>{{"1", "2"}, {"3", "x\ry"}, {"4", "5"}, {"6", "7"}}));
  EXPECT_EQ(lines, (std::vector<int64_t>{2, 4, 5, 6}));
}

TEST_P(RecordReaderTest, BadRecordsCarryErrorsAndRawText) {
  std::string csv = "a,b\n1,2\n1,2,3\n4\n5,\"open\n6,7\n";
  auto r = RecordReader::OpenCsv(Write(csv), Opts());
  ASSERT_TRUE(r.ok());
  std::vector<std::string> errors;
  Record rec;
  std::vector<std::string> raws;
  for (;;) {
    auto any = (*r)->Next(&rec);
    ASSERT_TRUE(any.ok());
    if (!*any) break;
    errors.push_back(rec.error.ok() ? "" : rec.error.message());
    raws.emplace_back(rec.raw);
  }
  ASSERT_EQ(errors.size(), 4u);
  EXPECT_EQ(errors[0], "");
  EXPECT_NE(errors[1].find("expected 2 fields"), std::string::npos) << errors[1];
  EXPECT_NE(errors[2].find("got 1"), std::string::npos) << errors[2];
  EXPECT_NE(errors[3].find("unterminated"), std::string::npos) << errors[3];
  EXPECT_EQ(raws[3], "5,\"open\n6,7\n");
}

TEST_P(RecordReaderTest, SeekContinuesAtARecord) {
  std::string csv = "a\n1\n2\n3\n";
  auto r = RecordReader::OpenCsv(Write(csv), Opts());
  ASSERT_TRUE(r.ok());
  Record rec;
  ASSERT_TRUE(*(*r)->Next(&rec));
  uint64_t off = rec.end_offset;
  int64_t line = rec.end_line;
  ASSERT_TRUE((*r)->Seek(off, line).ok());
  std::vector<int64_t> lines;
  auto rows = ReadAll(**r, &lines);
  EXPECT_EQ(rows, (std::vector<std::vector<std::string>>{{"2"}, {"3"}}));
  EXPECT_EQ(lines, (std::vector<int64_t>{3, 4}));
}

TEST_P(RecordReaderTest, EmptyFileHasNoHeader) {
  auto r = RecordReader::OpenCsv(Write(""), Opts());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("header"), std::string::npos);
}

TEST_P(RecordReaderTest, JsonLines) {
  std::string jsonl =
      "{\"a\": 1.5, \"b\": \"x,y\", \"c\": null}\n"
      "\n"
      "{\"a\": 2, \"c\": true}\r\n"
      "{not json}\n"
      "[1,2]\n"
      "{\"a\": [1]}";
  auto r = RecordReader::OpenJsonl(Write(jsonl), Opts());
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ((*r)->columns(), (std::vector<std::string>{"a", "b", "c"}));
  (*r)->SelectColumns({"a", "b", "c"});
  std::vector<int64_t> lines;
  std::vector<std::string> errors;
  auto rows = ReadAll(**r, &lines, &errors);
  ASSERT_EQ(rows.size(), 5u);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"1.5", "x,y", ""}));
  EXPECT_EQ(rows[1], (std::vector<std::string>{"2", "", "true"}));
  EXPECT_EQ(lines, (std::vector<int64_t>{1, 3, 4, 5, 6}));
  EXPECT_NE(errors[2].find("malformed JSON"), std::string::npos);
  EXPECT_NE(errors[3].find("expected a JSON object"), std::string::npos);
  EXPECT_NE(errors[4].find("an array"), std::string::npos);
}

TEST(RecordReader, LongRecordStopsTheRun) {
  char name[] = "/tmp/berth_reader_XXXXXX";
  int fd = mkstemp(name);
  std::string csv = "a\n" + std::string(5000, 'x') + "\n";
  ASSERT_EQ(write(fd, csv.data(), csv.size()), static_cast<ssize_t>(csv.size()));
  close(fd);
  RecordReader::Options o;
  o.block_bytes = 64;
  o.max_record_bytes = 1024;
  auto r = RecordReader::OpenCsv(name, o);
  ASSERT_TRUE(r.ok());
  Record rec;
  auto any = (*r)->Next(&rec);
  std::remove(name);
  ASSERT_FALSE(any.ok());
  EXPECT_NE(any.status().message().find("line 2"), std::string::npos) << any.status().message();
}

TEST(AppendCsvField, QuotesOnlyWhenNeeded) {
  std::string out;
  AppendCsvField("plain", &out);
  out += '|';
  AppendCsvField("a,b", &out);
  out += '|';
  AppendCsvField("say \"hi\"", &out);
  out += '|';
  AppendCsvField("two\nlines", &out);
  EXPECT_EQ(out, "plain|\"a,b\"|\"say \"\"hi\"\"\"|\"two\nlines\"");
}

INSTANTIATE_TEST_SUITE_P(BlockSizes, RecordReaderTest, ::testing::Values(size_t{3}, size_t{7}, size_t{1} << 20));

}  // namespace
}  // namespace berth
