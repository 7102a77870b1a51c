#include "transform/transform_instance.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

namespace berth {
namespace {

// One transform of the kind the README shows: age (a number, missing filled
// and standardized), plan (text, one-hot) and a passed-through tag.
constexpr const char* kYaml = R"(kind: transform
max_batch_size: 8
inputs:
  - {name: age, datatype: FP32, shape: [1]}
  - {name: plan, datatype: BYTES, shape: [1]}
  - {name: tag, datatype: BYTES, shape: [1]}
  - {name: id, datatype: INT64, shape: [1]}
outputs:
  - {name: features, datatype: FP32, shape: [4], columns: [age, plan]}
  - {name: tag_out, datatype: BYTES, shape: [1], columns: [tag]}
  - {name: id_out, datatype: INT64, shape: [1], columns: [id]}
transforms:
  fill_missing: {age: "40", plan: basic}
  standardize: {age: [40, 10]}
  one_hot: {plan: [basic, pro, team]}
)";

Result<ModelConfig> Parse(const std::string& yaml) { return ParseModelConfig(yaml, "t", "t/model.yaml"); }

Status CreateError(const std::string& yaml) {
  Result<ModelConfig> c = Parse(yaml);
  if (!c.ok()) return c.status();
  Result<std::unique_ptr<TransformInstance>> t = TransformInstance::Create(*c);
  return t.ok() ? Status::Ok() : t.status();
}

Tensor Floats(const std::string& name, const std::vector<float>& v) {
  Tensor t{name, DataType::kFp32, {static_cast<int64_t>(v.size()), 1}, {}};
  t.data.resize(v.size() * 4);
  std::memcpy(t.data.data(), v.data(), t.data.size());
  return t;
}

Tensor Texts(const std::string& name, const std::vector<std::string>& v) {
  Tensor t{name, DataType::kBytes, {static_cast<int64_t>(v.size()), 1}, {}};
  for (const auto& s : v) AppendBytesElement(s, &t.data);
  return t;
}

Tensor Int64s(const std::string& name, const std::vector<int64_t>& v) {
  Tensor t{name, DataType::kInt64, {static_cast<int64_t>(v.size()), 1}, {}};
  t.data.resize(v.size() * 8);
  std::memcpy(t.data.data(), v.data(), t.data.size());
  return t;
}

TEST(TransformInstance, AppliesTheTransformsOfBerthBatchRowByRow) {
  Result<ModelConfig> c = Parse(kYaml);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->kind, kTransformModelKind);
  EXPECT_EQ(c->outputs[0].columns, (std::vector<std::string>{"age", "plan"}));
  auto t = TransformInstance::Create(*c);
  ASSERT_TRUE(t.ok()) << t.status().message();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const int64_t big = (int64_t{1} << 60) + 1;  // not a double: must pass through exactly
  std::vector<Tensor> in = {Floats("age", {50, nan, 35.5f}), Texts("plan", {"pro", "", " team "}),
                            Texts("tag", {"a", "", "c,d"}), Int64s("id", {big, -3, 0})};
  std::vector<Tensor> out;
  ASSERT_TRUE((*t)->Execute(in, &out).ok());
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].shape, (std::vector<int64_t>{3, 4}));
  std::vector<float> f(12);
  std::memcpy(f.data(), out[0].data.data(), 48);
  EXPECT_EQ(f, (std::vector<float>{1, 0, 1, 0, 0, 1, 0, 0, -0.45f, 0, 0, 1}));
  auto tags = SplitBytesElements(out[1].data.data(), out[1].data.size());
  ASSERT_TRUE(tags.ok());
  EXPECT_EQ(*tags, (std::vector<std::string_view>{"a", "", "c,d"}));
  std::vector<int64_t> ids(3);
  std::memcpy(ids.data(), out[2].data.data(), 24);
  EXPECT_EQ(ids, (std::vector<int64_t>{big, -3, 0}));
}

TEST(TransformInstance, BadValuesNameTheRowAndTheInput) {
  auto c = Parse(kYaml);
  ASSERT_TRUE(c.ok());
  auto t = TransformInstance::Create(*c);
  ASSERT_TRUE(t.ok());
  std::vector<Tensor> in = {Floats("age", {1, 2}), Texts("plan", {"pro", "gold"}), Texts("tag", {"", ""}),
                            Int64s("id", {1, 2})};
  std::vector<Tensor> out;
  Status s = (*t)->Execute(in, &out);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "row 1: input 'plan': 'gold' is not one of the one_hot categories (basic, pro, team)");
}

TEST(TransformInstance, ConfigMistakesNameTheKey) {
  auto with = [](const std::string& from, const std::string& to) {
    std::string y = kYaml;
    size_t at = y.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return y.replace(at, from.size(), to);
  };
  EXPECT_TRUE(CreateError(kYaml).ok());
  EXPECT_EQ(
      CreateError(with("name: age, datatype: FP32, shape: [1]", "name: age, datatype: FP32, shape: [2]")).message(),
      "model.yaml: inputs[0] 'age': a transform takes one value per row (a table column): expected shape "
      "[1], got [2]");
  EXPECT_EQ(CreateError(with(", columns: [tag]", "")).message(),
            "model.yaml: outputs[1] 'tag_out': columns: missing (list the inputs that fill this output, in order)");
  EXPECT_EQ(CreateError(with("columns: [age, plan]", "columns: [age, plan, nope]")).message(),
            "model.yaml: outputs[0] 'features'.columns: 'nope' is not an input of this transform (its inputs: age, "
            "plan, tag, id)");
  EXPECT_EQ(CreateError(with("shape: [4], columns", "shape: [5], columns")).message(),
            "model.yaml: outputs[0] 'features': shape [5] holds 5 values per row, but its columns give 4 (a one_hot "
            "input gives one per category)");
  EXPECT_EQ(CreateError(with(", columns: [id]", ", columns: [tag]")).message(),
            "model.yaml: inputs[3] 'id': no output's columns use it");
  EXPECT_EQ(CreateError(with("fill_missing: {age: \"40\", plan: basic}", "fill_missing: {agee: \"40\"}")).message(),
            "model.yaml: transforms.fill_missing.agee: not an input of this transform (its inputs: age, plan, tag, "
            "id)");
  EXPECT_EQ(CreateError(with("name: features, datatype: FP32", "name: features, datatype: INT32")).message(),
            "model.yaml: transforms.standardize.age: output 'features' is INT32; standardize needs a floating-point "
            "output");
  // Keys of other kinds are refused by the parser.
  EXPECT_EQ(CreateError(with("max_batch_size: 8", "max_batch_size: 8\nbackend: identity")).message(),
            "t/model.yaml: backend: unknown key (expected one of: dynamic_batching, inputs, instances, kind, "
            "max_batch_size, outputs, transforms, version_policy, warmup)");
  EXPECT_EQ(CreateError("kind: transform\nmax_batch_size: 8\ninputs: []\noutputs: []\n").message(),
            "t/model.yaml: inputs: expected at least one input");
}

TEST(TransformInstance, NoDefaultWarmUpAndSizesAreChecked) {
  // Zeros need not be a valid row (0 is no one_hot category here): a transform warms up only when asked to.
  auto c = Parse(
      "kind: transform\nmax_batch_size: 4\ninputs: [{name: region, datatype: INT64, shape: [1]}]\n"
      "outputs: [{name: f, datatype: FP32, shape: [3], columns: [region]}]\ntransforms: {one_hot: {region: [1, 2, "
      "3]}}\n");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->warmup_requests, 0);
  auto t = TransformInstance::Create(*c);
  ASSERT_TRUE(t.ok());
  std::vector<Tensor> in = {Int64s("region", {2, 3})};
  in[0].data.resize(8);  // two rows, one value
  std::vector<Tensor> out;
  EXPECT_EQ((*t)->Execute(in, &out).code(), StatusCode::kInvalidArgument);
  in = {Int64s("region", {2, 3})};
  ASSERT_TRUE((*t)->Execute(in, &out).ok());
  std::vector<float> f(6);
  std::memcpy(f.data(), out[0].data.data(), 24);
  EXPECT_EQ(f, (std::vector<float>{0, 1, 0, 0, 0, 1}));
}

TEST(TransformInstance, UnbatchedModelsTakeOneRow) {
  std::string y = kYaml;
  y.replace(y.find("max_batch_size: 8"), 17, "max_batch_size: 0");
  auto c = Parse(y);
  ASSERT_TRUE(c.ok());
  auto t = TransformInstance::Create(*c);
  ASSERT_TRUE(t.ok());
  std::vector<Tensor> in = {Floats("age", {60}), Texts("plan", {"basic"}), Texts("tag", {"x"}), Int64s("id", {7})};
  for (Tensor& x : in) x.shape = {1};
  std::vector<Tensor> out;
  ASSERT_TRUE((*t)->Execute(in, &out).ok());
  EXPECT_EQ(out[0].shape, (std::vector<int64_t>{4}));
  float first;
  std::memcpy(&first, out[0].data.data(), 4);
  EXPECT_EQ(first, 2.0f);
}

}  // namespace
}  // namespace berth
