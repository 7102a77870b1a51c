#include "common/model_config.h"

#include <gtest/gtest.h>

namespace berth {
namespace {

Result<ModelConfig> Parse(const std::string& yaml) { return ParseModelConfig(yaml, "m", "models/m/model.yaml"); }

std::string ErrorOf(const std::string& yaml) {
  auto r = Parse(yaml);
  EXPECT_FALSE(r.ok()) << yaml;
  return r.ok() ? "" : r.status().message();
}

constexpr const char* kGood = R"(
backend: torchscript
max_batch_size: 64
inputs:
  - {name: x, datatype: FP32, shape: [16]}
outputs:
  - {name: probs, datatype: FP32, shape: [-1, 4]}
instances: 2
threads: 3
parameters: {delay_ms: 5}
)";

TEST(ModelConfigTest, ParsesEveryKey) {
  auto r = Parse(kGood);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->name, "m");
  EXPECT_EQ(r->backend, "torchscript");
  EXPECT_EQ(r->max_batch_size, 64);
  EXPECT_EQ(r->instances, 2);
  EXPECT_EQ(r->threads, 3);
  ASSERT_EQ(r->inputs.size(), 1u);
  EXPECT_EQ(r->inputs[0].dtype, DataType::kFp32);
  EXPECT_EQ(r->FullShape(r->inputs[0]), (std::vector<int64_t>{-1, 16}));
  EXPECT_EQ(r->FullShape(r->outputs[0]), (std::vector<int64_t>{-1, -1, 4}));
  EXPECT_EQ(r->parameters.at("delay_ms"), "5");
}

TEST(ModelConfigTest, DefaultsAndNoInputs) {
  auto r = Parse("backend: torchscript\noutputs: [{name: m, datatype: FP32, shape: [10, 10]}]\n");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->max_batch_size, 0);
  EXPECT_EQ(r->instances, 1);
  EXPECT_EQ(r->threads, 1);
  EXPECT_TRUE(r->inputs.empty());
  EXPECT_FALSE(r->batched());
}

TEST(ModelConfigTest, ErrorsNameFileKeyAndExpectation) {
  std::string base = "backend: identity\noutputs: [{name: y, datatype: FP32, shape: [1]}]\n";
  std::string e = ErrorOf(base + "max_batch_sise: 4\n");
  EXPECT_NE(e.find("models/m/model.yaml"), std::string::npos) << e;
  EXPECT_NE(e.find("max_batch_sise"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown key"), std::string::npos) << e;

  e = ErrorOf(base + "max_batch_size: abc\n");
  EXPECT_NE(e.find("max_batch_size: expected an integer"), std::string::npos) << e;
  EXPECT_NE(e.find("got a string"), std::string::npos) << e;
  EXPECT_EQ(e.find("abc"), std::string::npos) << e;  // text from the file is never quoted

  e = ErrorOf(base + "max_batch_size: -1\n");
  EXPECT_NE(e.find("max_batch_size"), std::string::npos) << e;
  EXPECT_NE(e.find("got -1"), std::string::npos) << e;  // numbers are shown

  e = ErrorOf("root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n");
  EXPECT_EQ(e.find("root"), std::string::npos) << e;  // a file that is not model.yaml at all

  e = ErrorOf(base + "instances: 0\n");
  EXPECT_NE(e.find("instances"), std::string::npos) << e;

  e = ErrorOf(base + "inputs: [{name: x, datatype: FP33, shape: [1]}]\n");
  EXPECT_NE(e.find("inputs[0].datatype"), std::string::npos) << e;
  EXPECT_EQ(e.find("FP33"), std::string::npos) << e;

  e = ErrorOf(base + "inputs: [{name: x, datatype: FP32, shape: [-2]}]\n");
  EXPECT_NE(e.find("inputs[0].shape[0]"), std::string::npos) << e;

  e = ErrorOf(base + "inputs: [{name: x, datatype: FP32, shape: 3}]\n");
  EXPECT_NE(e.find("inputs[0].shape: expected a list"), std::string::npos) << e;

  e = ErrorOf(base + "inputs: [{name: x, datatype: FP32, shape: [1], colour: red}]\n");
  EXPECT_NE(e.find("inputs[0].colour: unknown key"), std::string::npos) << e;

  e = ErrorOf(base + "inputs: [{name: x, datatype: FP32}]\n");
  EXPECT_NE(e.find("inputs[0].shape: missing"), std::string::npos) << e;

  e = ErrorOf(base + "inputs:\n  - {name: x, datatype: FP32, shape: [1]}\n  - {name: x, datatype: FP32, shape: [1]}\n");
  EXPECT_NE(e.find("duplicate name 'x'"), std::string::npos) << e;

  e = ErrorOf("outputs: [{name: y, datatype: FP32, shape: [1]}]\n");
  EXPECT_NE(e.find("backend: missing"), std::string::npos) << e;

  e = ErrorOf("backend: identity\n");
  EXPECT_NE(e.find("outputs"), std::string::npos) << e;

  e = ErrorOf("backend: ../../etc\noutputs: [{name: y, datatype: FP32, shape: [1]}]\n");
  EXPECT_NE(e.find("backend: expected a plugin name"), std::string::npos) << e;
}

TEST(ModelConfigTest, VersionPolicyAndWarmup) {
  std::string base = "backend: identity\noutputs: [{name: y, datatype: FP32, shape: [1]}]\n";
  auto all = Parse(base + "version_policy: all\nwarmup: {requests: 3}\n");
  ASSERT_TRUE(all.ok()) << all.status().message();
  EXPECT_EQ(all->version_policy.kind, VersionPolicy::Kind::kAll);
  EXPECT_EQ(all->warmup_requests, 3);
  auto latest = Parse(base + "version_policy: {latest: 2}\n");
  ASSERT_TRUE(latest.ok());
  EXPECT_EQ(latest->version_policy.latest, 2);
  auto specific = Parse(base + "version_policy: {specific: [1, 3]}\n");
  ASSERT_TRUE(specific.ok());
  EXPECT_EQ(specific->version_policy.specific, (std::vector<int64_t>{1, 3}));
  EXPECT_NE(ErrorOf(base + "version_policy: newest\n").find("version_policy: expected 'all'"), std::string::npos);
  EXPECT_NE(ErrorOf(base + "version_policy: {latest: 0}\n").find("version_policy.latest"), std::string::npos);
  EXPECT_NE(ErrorOf(base + "version_policy: {specific: []}\n").find("version_policy.specific"), std::string::npos);
  EXPECT_NE(ErrorOf(base + "warmup: {rounds: 2}\n").find("warmup.rounds: unknown key"), std::string::npos);
}

TEST(ModelConfigTest, SyntaxErrorsGiveLineAndColumn) {
  std::string e = ErrorOf("backend: identity\ninputs: [\n");
  EXPECT_NE(e.find("models/m/model.yaml: line"), std::string::npos) << e;
  e = ErrorOf("- just\n- a list\n");
  EXPECT_NE(e.find("expected a mapping"), std::string::npos) << e;
}

// Found by the model_config fuzzer (10M-execution run): a multi-line plain
// scalar used as a key was quoted whole in "unknown key" (4.8 KB of file text).
TEST(ModelConfigTest, LongOrMultiLineKeysAreNotQuoted) {
  std::string text(900, 'k');  // yaml-cpp takes plain keys up to 1024
  std::string e = ErrorOf("backend: identity\n" + text + ": 1\n");
  EXPECT_NE(e.find("(a key of 900 bytes): unknown key"), std::string::npos) << e;
  EXPECT_EQ(e.find("kkkk"), std::string::npos) << e;
  e = ErrorOf("kind: pipeline\nsecret line one\n  secret line two: 1\n");
  EXPECT_EQ(e.find("secret"), std::string::npos) << e;
}

}  // namespace
}  // namespace berth

namespace berth {
namespace {

TEST(ModelConfigTest, ParameterListsAndBytesInputsWarmUp) {
  const std::string base =
      "backend: image\nmax_batch_size: 2\ninputs: [{name: image, datatype: BYTES, shape: [1]}]\n"
      "outputs: [{name: p, datatype: FP32, shape: [3, 2, 2]}]\n";
  auto r = Parse(base + "parameters: {mean: [0.485, 0.456, 0.406], layout: NCHW}\n");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->parameters.at("mean"), "0.485,0.456,0.406");
  EXPECT_EQ(r->parameters.at("layout"), "NCHW");
  // Zeros are no valid image: no warm-up by default, unless asked for.
  EXPECT_EQ(r->warmup_requests, 0);
  auto asked = Parse(base + "warmup: {requests: 2}\n");
  ASSERT_TRUE(asked.ok());
  EXPECT_EQ(asked->warmup_requests, 2);
  EXPECT_NE(ErrorOf(base + "parameters: {mean: [[1], 2]}\n").find("parameters.mean: expected a scalar value or a list"),
            std::string::npos);
}

}  // namespace
}  // namespace berth
