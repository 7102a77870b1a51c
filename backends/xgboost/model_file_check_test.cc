#include "model_file_check.h"

#include <gtest/gtest.h>

#include <string>

#include "common/file_util.h"

namespace berth {
namespace {

// Models written by XGBoost 1.7.4 (backends/xgboost/testdata/make_models.py).
std::string Testdata(const std::string& name) {
  auto r = ReadRegularFile(std::string(BERTH_SOURCE_DIR) + "/backends/xgboost/testdata/" + name, 1 << 20);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? *r : "";
}

Result<XgboostModelFacts> CheckJson(const std::string& json) { return CheckXgboostModel(json, XgboostFormat::kJson); }

// `text` with its first `from` replaced by `to` (which must be there).
std::string Replace(std::string text, const std::string& from, const std::string& to) {
  size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

std::string ErrorOf(const std::string& json) {
  auto r = CheckJson(json);
  EXPECT_FALSE(r.ok());
  return r.ok() ? "" : r.status().message();
}

TEST(XgboostModelCheckTest, ModelsXgboostWrotePass) {
  for (const char* name : {"reg", "multi", "dart", "lin", "cat"}) {
    for (const char* ext : {".json", ".ubj"}) {
      std::string file = std::string(name) + ext;
      std::string bytes = Testdata(file);
      auto format = DetectXgboostFormat(bytes, file);
      ASSERT_TRUE(format.ok()) << file << ": " << format.status().message();
      auto facts = CheckXgboostModel(bytes, *format);
      ASSERT_TRUE(facts.ok()) << file << ": " << facts.status().message();
      EXPECT_EQ(facts->num_outputs, std::string(name) == "multi" ? 3 : 1) << file;
    }
  }
  auto reg = CheckJson(Testdata("reg.json"));
  EXPECT_EQ(reg->booster, "gbtree");
  EXPECT_EQ(reg->num_feature, 4);
  EXPECT_EQ(reg->num_trees, 2);
}

TEST(XgboostModelCheckTest, FormatFollowsTheContentAndMustMatchTheName) {
  std::string json = Testdata("reg.json"), ubj = Testdata("reg.ubj");
  EXPECT_EQ(*DetectXgboostFormat(json, "model.json"), XgboostFormat::kJson);
  EXPECT_EQ(*DetectXgboostFormat(ubj, "model.ubj"), XgboostFormat::kUbj);
  EXPECT_FALSE(DetectXgboostFormat(json, "model.ubj").ok());
  EXPECT_FALSE(DetectXgboostFormat(ubj, "model.json").ok());
  EXPECT_FALSE(DetectXgboostFormat("binf\x01\x02", "model.json").ok());  // the legacy binary reader is never used
  EXPECT_FALSE(DetectXgboostFormat("", "model.json").ok());
  EXPECT_FALSE(DetectXgboostFormat("{}", "model.json").ok());
}

TEST(XgboostModelCheckTest, TreeCountsMustAgree) {
  std::string reg = Testdata("reg.json");
  EXPECT_NE(ErrorOf(Replace(reg, "\"num_trees\":\"2\"", "\"num_trees\":\"1000\"")).find("trees"), std::string::npos);
  EXPECT_NE(ErrorOf(Replace(reg, "\"num_trees\":\"2\"", "\"num_trees\":\"1\"")).find("trees"), std::string::npos);
  EXPECT_NE(ErrorOf(Replace(reg, "\"tree_info\":[0,0]", "\"tree_info\":[0]")).find("tree_info"), std::string::npos);
  EXPECT_NE(ErrorOf(Replace(reg, "\"tree_info\":[0,0]", "\"tree_info\":[0,1]")).find("tree_info[1]"),
            std::string::npos);
  EXPECT_NE(ErrorOf(Replace(reg, "\"tree_info\":[0,0]", "\"tree_info\":[0,-1]")).find("tree_info[1]"),
            std::string::npos);
  EXPECT_NE(ErrorOf(Replace(reg, "\"id\":1", "\"id\":0")).find("trees[1].id"), std::string::npos);
}

TEST(XgboostModelCheckTest, LearnerParametersAreCanonicalAndBounded) {
  std::string reg = Testdata("reg.json");
  for (const char* bad : {"\"-1\"", "\"0\"", "\"4.0\"", "\"1e30\"", "\"04\"", "\" 4\"", "\"\"", "4", "\"2000000\""}) {
    std::string e = ErrorOf(Replace(reg, "\"num_feature\":\"4\",\"num_target\"",
                                    std::string("\"num_feature\":") + bad + ",\"num_target\""));
    EXPECT_NE(e.find("num_feature"), std::string::npos) << bad << ": " << e;
  }
  std::string multi = Testdata("multi.json");
  EXPECT_NE(ErrorOf(Replace(multi, "\"num_class\":\"3\"", "\"num_class\":\"100000000\"")).find("num_class"),
            std::string::npos);
  EXPECT_NE(ErrorOf(Replace(reg, "\"num_target\":\"1\"", "\"num_target\":\"-1\"")).find("num_target"),
            std::string::npos);
  // outputs x num_parallel_tree wrapping to 0 in XGBoost's uint32 product (SIGFPE)
  std::string wraps = Replace(multi, "\"num_parallel_tree\":\"1\"", "\"num_parallel_tree\":\"1073741824\"");
  EXPECT_NE(ErrorOf(wraps).find("num_parallel_tree"), std::string::npos);
  EXPECT_NE(ErrorOf(Replace(reg, "\"base_score\":\"", "\"base_score\":\"x")).find("base_score"), std::string::npos);
}

TEST(XgboostModelCheckTest, NodesMustFormATree) {
  std::string reg = Testdata("reg.json");
  // tree 0 of reg.json: left [1,3,5,-1,-1,-1,-1], right [2,4,6,...], parents [2147483647,0,0,1,1,2,2]
  EXPECT_NE(ErrorOf(Replace(reg, "\"parents\":[2147483647,0,0,", "\"parents\":[2147483647,-1,0,")).find("parents[1]"),
            std::string::npos);
  EXPECT_NE(
      ErrorOf(Replace(reg, "\"parents\":[2147483647,0,0,", "\"parents\":[2147483647,100000000,0,")).find("parents[1]"),
      std::string::npos);
  EXPECT_NE(ErrorOf(Replace(reg, "\"left_children\":[1,3,5,", "\"left_children\":[1,3,6,")).find("node 2"),
            std::string::npos);  // a child past the end (left + 1 == n)
  EXPECT_NE(ErrorOf(Replace(reg, "\"right_children\":[2,4,6,", "\"right_children\":[2,5,6,")).find("node 1"),
            std::string::npos);  // right != left + 1
  EXPECT_NE(ErrorOf(Replace(reg, "\"left_children\":[1,3,5,", "\"left_children\":[0,3,5,")).find("node 0"),
            std::string::npos);  // the root as a child: a loop
  EXPECT_NE(ErrorOf(Replace(Replace(reg, "\"left_children\":[1,3,5,", "\"left_children\":[1,3,3,"),
                            "\"right_children\":[2,4,6,", "\"right_children\":[2,4,4,"))
                .find("more than one parent"),
            std::string::npos);
  EXPECT_NE(ErrorOf(Replace(reg, "\"split_indices\":[", "\"split_indices\":[4,")).find("split_indices"),
            std::string::npos);  // also a length mismatch; either is refused
}

TEST(XgboostModelCheckTest, SplitOnAFeaturePastNumFeatureIsRefused) {
  std::string reg = Testdata("reg.json");
  size_t at = reg.find("\"split_indices\":[") + 17;
  std::string bad = reg;
  bad.replace(at, reg.find(',', at) - at, "4");
  EXPECT_NE(ErrorOf(bad).find("split_indices[0]"), std::string::npos);
}

TEST(XgboostModelCheckTest, CategoricalArraysMustAgree) {
  std::string cat = Testdata("cat.json");
  EXPECT_NE(ErrorOf(Replace(cat, "\"categories_segments\":[0]", "\"categories_segments\":[]")).find("categories"),
            std::string::npos);
  EXPECT_NE(ErrorOf(Replace(cat, "\"categories_segments\":[0]", "\"categories_segments\":[100000000]"))
                .find("categories_segments[0]"),
            std::string::npos);
  EXPECT_NE(ErrorOf(Replace(cat, "\"categories_sizes\":[22]", "\"categories_sizes\":[0]")).find("categories_segments"),
            std::string::npos);
  EXPECT_NE(ErrorOf(Replace(cat, "\"categories\":[1,", "\"categories\":[-1,")).find("categories[0]"),
            std::string::npos);
  EXPECT_NE(ErrorOf(Replace(cat, "\"categories_nodes\":[2]", "\"categories_nodes\":[5]")).find("split_type"),
            std::string::npos);
  EXPECT_NE(ErrorOf(Replace(cat, "\"split_type\":[0,0,1,", "\"split_type\":[0,1,1,")).find("split_type[1]"),
            std::string::npos);
  EXPECT_NE(ErrorOf(Replace(cat, "\"split_type\":[0,0,1,0,0,0,0]", "\"split_type\":[0]")).find("split_type"),
            std::string::npos);
}

TEST(XgboostModelCheckTest, DuplicateKeysAreRefused) {
  std::string reg = Testdata("reg.json");
  std::string e = ErrorOf(Replace(reg, "\"num_trees\":\"2\"", "\"num_trees\":\"2\",\"num_trees\":\"1000\""));
  EXPECT_NE(e.find("twice"), std::string::npos) << e;
}

TEST(XgboostModelCheckTest, BoostersOtherThanTreesAndLinear) {
  std::string lin = Testdata("lin.json");
  EXPECT_NE(ErrorOf(Replace(lin, "\"weights\":[", "\"weightz\":[")).find("weights"), std::string::npos);
  std::string dart = Testdata("dart.json");
  EXPECT_NE(ErrorOf(Replace(dart, "\"name\":\"dart\"", "\"name\":\"forest\"")).find("gradient_booster.name"),
            std::string::npos);
}

TEST(XgboostModelCheckTest, NestingIsBounded) {
  std::string deep = "{\"learner\":" + std::string(100000, '[') + std::string(100000, ']') + "}";
  EXPECT_FALSE(CheckJson(deep).ok());
  std::string ubj = std::string("{") + "L" + std::string(7, '\0') + "\x01" + "x" + std::string(100000, '[');
  auto r = CheckXgboostModel(ubj, XgboostFormat::kUbj);
  ASSERT_FALSE(r.ok());
}

TEST(XgboostModelCheckTest, EveryTruncatedUbjIsRefused) {
  std::string ubj = Testdata("reg.ubj");
  for (size_t n = 0; n < ubj.size(); ++n) {
    auto r = CheckXgboostModel(std::string_view(ubj).substr(0, n), XgboostFormat::kUbj);
    EXPECT_FALSE(r.ok()) << "prefix of " << n << " bytes";
  }
}

TEST(XgboostModelCheckTest, UbjLengthsPastTheEndAreRefused) {
  std::string ubj = Testdata("reg.ubj");
  // the first key's 8-byte length, made huge: "{" "L" <int64>
  std::string bad = ubj;
  bad[2] = '\x7f';
  auto r = CheckXgboostModel(bad, XgboostFormat::kUbj);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("past the end"), std::string::npos) << r.status().message();
  EXPECT_FALSE(CheckXgboostModel(ubj + "x", XgboostFormat::kUbj).ok());  // bytes after the end
}

TEST(XgboostModelCheckTest, ErrorsNeverQuoteTheFile) {
  std::string reg = Testdata("reg.json");
  std::string e =
      ErrorOf(Replace(reg, "\"num_feature\":\"4\",\"num_target\"", "\"num_feature\":\"SECRET\",\"num_target\""));
  EXPECT_EQ(e.find("SECRET"), std::string::npos) << e;
}

}  // namespace
}  // namespace berth
