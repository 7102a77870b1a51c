#include "transform/table_mapper.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

namespace berth {
namespace {

ModelConfig Parse(const std::string& yaml) {
  auto c = ParseModelConfig(yaml, "m", "model.yaml");
  EXPECT_TRUE(c.ok()) << c.status().message();
  return c.ok() ? *c : ModelConfig{};
}

std::vector<float> Floats(const std::vector<uint8_t>& d) {
  std::vector<float> v(d.size() / 4);
  std::memcpy(v.data(), d.data(), d.size());
  return v;
}

TEST(TableMapper, ColumnsListedInModelYaml) {
  ModelConfig c = Parse(
      "backend: identity\nmax_batch_size: 8\n"
      "inputs: [{name: f, datatype: FP32, shape: [3], columns: [c, a, b]}]\n"
      "outputs: [{name: f, datatype: FP32, shape: [3]}]\n");
  auto m = TableMapper::Create(c, {"a", "b", "c", "unused"});
  ASSERT_TRUE(m.ok()) << m.status().message();
  std::vector<std::vector<uint8_t>> data(1);
  ASSERT_TRUE(m->AppendRow({"1", " 2 ", "+3e0", "zzz"}, &data).ok());
  ASSERT_TRUE(m->AppendRow({"", "NA", "nan", ""}, &data).ok());
  auto v = Floats(data[0]);
  ASSERT_EQ(v.size(), 6u);
  EXPECT_EQ(v[0], 3);
  EXPECT_EQ(v[1], 1);
  EXPECT_EQ(v[2], 2);
  EXPECT_TRUE(std::isnan(v[3]) && std::isnan(v[4]) && std::isnan(v[5]));
}

TEST(TableMapper, NamesFromTheHeader) {
  ModelConfig c = Parse(
      "backend: identity\nmax_batch_size: 8\n"
      "inputs: [{name: x, datatype: FP32, shape: [2]}, {name: n, datatype: INT64, shape: [1]}]\n"
      "outputs: [{name: x, datatype: FP32, shape: [2]}]\n");
  auto m = TableMapper::Create(c, {"n", "x_1", "x_0"});
  ASSERT_TRUE(m.ok()) << m.status().message();
  std::vector<std::vector<uint8_t>> data(2);
  ASSERT_TRUE(m->AppendRow({"7", "2.5", "1.5"}, &data).ok());
  EXPECT_EQ(Floats(data[0]), (std::vector<float>{1.5f, 2.5f}));
  int64_t n;
  std::memcpy(&n, data[1].data(), 8);
  EXPECT_EQ(n, 7);

  auto missing = TableMapper::Create(c, {"n", "x_0"});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("no column 'x_1'"), std::string::npos) << missing.status().message();
}

TEST(TableMapper, BadValuesAreReasonsAndRollBack) {
  ModelConfig c = Parse(
      "backend: identity\nmax_batch_size: 8\n"
      "inputs: [{name: a, datatype: FP32, shape: [1]}, {name: b, datatype: INT32, shape: [1]}]\n"
      "outputs: [{name: a, datatype: FP32, shape: [1]}]\n");
  auto m = TableMapper::Create(c, {"a", "b"});
  ASSERT_TRUE(m.ok());
  std::vector<std::vector<uint8_t>> data(2);
  Status s = m->AppendRow({"1.0", "x"}, &data);
  EXPECT_NE(s.message().find("column 'b': 'x' is not an integer"), std::string::npos) << s.message();
  EXPECT_TRUE(data[0].empty() && data[1].empty());
  s = m->AppendRow({"abc", "1"}, &data);
  EXPECT_NE(s.message().find("'abc' is not a number"), std::string::npos) << s.message();
  s = m->AppendRow({"1", ""}, &data);
  EXPECT_NE(s.message().find("missing value"), std::string::npos) << s.message();
  s = m->AppendRow({"1", "99999999999"}, &data);
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(m->AppendRow({"1", "-5"}, &data).ok());
}

TEST(TableMapper, Transforms) {
  ModelConfig c = Parse(
      "backend: identity\nmax_batch_size: 8\n"
      "inputs: [{name: f, datatype: FP32, shape: [-1], columns: [age, plan, income]}]\n"
      "outputs: [{name: f, datatype: FP32, shape: [5]}]\n"
      "transforms:\n"
      "  fill_missing: {plan: basic, income: 100}\n"
      "  standardize: {age: [40, 10]}\n"
      "  one_hot: {plan: [basic, pro, team]}\n");
  auto m = TableMapper::Create(c, {"age", "plan", "income"});
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->row_shape(0), (std::vector<int64_t>{5}));
  std::vector<std::vector<uint8_t>> data(1);
  ASSERT_TRUE(m->AppendRow({"50", "pro", "7"}, &data).ok());
  ASSERT_TRUE(m->AppendRow({"30", "", ""}, &data).ok());
  EXPECT_EQ(Floats(data[0]), (std::vector<float>{1, 0, 1, 0, 7, -1, 1, 0, 0, 100}));
  Status s = m->AppendRow({"30", "gold", "1"}, &data);
  EXPECT_NE(s.message().find("'gold' is not one of the one_hot categories"), std::string::npos) << s.message();
}

TEST(TableMapper, ShapeMustMatchColumnCount) {
  ModelConfig c = Parse(
      "backend: identity\nmax_batch_size: 8\n"
      "inputs: [{name: f, datatype: FP32, shape: [4], columns: [a, b]}]\n"
      "outputs: [{name: f, datatype: FP32, shape: [4]}]\n");
  auto m = TableMapper::Create(c, {"a", "b"});
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("give 2 values per row"), std::string::npos) << m.status().message();
}

TEST(TableMapper, UnknownTransformColumnIsAnError) {
  ModelConfig c = Parse(
      "backend: identity\nmax_batch_size: 8\n"
      "inputs: [{name: a, datatype: FP32, shape: [1]}]\n"
      "outputs: [{name: a, datatype: FP32, shape: [1]}]\n"
      "transforms: {standardize: {agee: [1, 2]}}\n");
  auto m = TableMapper::Create(c, {"a"});
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("transforms.standardize.agee"), std::string::npos);
}

TEST(ModelConfigTransforms, BadValuesNameTheKey) {
  auto c = ParseModelConfig(
      "backend: identity\ninputs: [{name: a, datatype: FP32, shape: [1]}]\n"
      "outputs: [{name: a, datatype: FP32, shape: [1]}]\ntransforms: {standardize: {a: [1, 0]}}\n",
      "m", "model.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("transforms.standardize.a[1]"), std::string::npos) << c.status().message();
  c = ParseModelConfig(
      "backend: identity\ninputs: [{name: a, datatype: FP32, shape: [1], columns: []}]\n"
      "outputs: [{name: a, datatype: FP32, shape: [1]}]\n",
      "m", "model.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("inputs[0].columns"), std::string::npos) << c.status().message();
}

TEST(IsMissingText, PandasDefaults) {
  for (const char* s : {"", "NA", "NaN", "nan", "null", "NULL", "N/A", "n/a", "None", "<NA>", "#N/A"}) {
    EXPECT_TRUE(IsMissingText(s)) << s;
  }
  for (const char* s : {"0", "na", "missing", " "}) EXPECT_FALSE(IsMissingText(s)) << s;
}

}  // namespace
}  // namespace berth
