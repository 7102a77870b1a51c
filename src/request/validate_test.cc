#include "request/validate.h"

#include <gtest/gtest.h>

#include "protocol/v2/v2_codec.h"

namespace berth {
namespace {

ModelConfig Mlp() {
  auto c = ParseModelConfig(R"(
backend: identity
max_batch_size: 8
inputs:
  - {name: x, datatype: FP32, shape: [4]}
  - {name: k, datatype: INT64, shape: [-1]}
outputs:
  - {name: x_out, datatype: FP32, shape: [4]}
  - {name: k_out, datatype: INT64, shape: [-1]}
)",
                            "m", "model.yaml");
  return c.value();
}

Status Check(const std::string& body, InferRequest* out = nullptr) {
  auto r = DecodeInferRequest(body, std::nullopt);
  if (!r.ok()) return r.status();
  ModelConfig c = Mlp();
  Status s = ValidateRequest(c, &r.value());
  if (out) *out = std::move(r).value();
  return s;
}

std::string X(int batch) {
  std::string data = "[";
  for (int i = 0; i < batch * 4; ++i) data += (i ? "," : "") + std::to_string(i);
  return R"({"name":"x","datatype":"FP32","shape":[)" + std::to_string(batch) + R"(,4],"data":)" + data + "]}";
}
std::string K(int batch, int n) {
  std::string data = "[";
  for (int i = 0; i < batch * n; ++i) data += (i ? "," : "") + std::to_string(i);
  return R"({"name":"k","datatype":"INT64","shape":[)" + std::to_string(batch) + "," + std::to_string(n) +
         R"(],"data":)" + data + "]}";
}

TEST(ValidateTest, AcceptsAndReordersIntoConfigOrder) {
  InferRequest r;
  Status s = Check(R"({"inputs":[)" + K(3, 2) + "," + X(3) + "]}", &r);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(r.inputs[0].name, "x");
  EXPECT_EQ(r.inputs[1].name, "k");
  EXPECT_EQ(r.batch_size, 3);
}

TEST(ValidateTest, Rejections) {
  auto msg = [](const std::string& body) { return Check(body).message(); };
  EXPECT_NE(msg(R"({"inputs":[)" + X(1) + "]}").find("missing input 'k'"), std::string::npos);
  EXPECT_NE(msg(R"({"inputs":[)" + X(1) + "," + K(1, 1) + R"(,{"name":"z","datatype":"FP32","shape":[1],"data":[1]}]})")
                .find("unknown input 'z'"),
            std::string::npos);
  EXPECT_NE(msg(R"({"inputs":[{"name":"x","datatype":"FP64","shape":[1,4],"data":[1,2,3,4]},)" + K(1, 1) + "]}")
                .find("datatype FP64 does not match the model's FP32"),
            std::string::npos);
  EXPECT_NE(msg(R"({"inputs":[{"name":"x","datatype":"FP32","shape":[4],"data":[1,2,3,4]},)" + K(1, 1) + "]}")
                .find("has 1 dimensions, the model expects 2"),
            std::string::npos);
  EXPECT_NE(msg(R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1,3],"data":[1,2,3]},)" + K(1, 1) + "]}")
                .find("at dimension 1"),
            std::string::npos);
  EXPECT_NE(msg(R"({"inputs":[)" + X(9) + "," + K(9, 1) + "]}").find("batch size 9 is outside 1..8"),
            std::string::npos);
  EXPECT_NE(msg(R"({"inputs":[)" + X(2) + "," + K(3, 1) + "]}").find("differs from input 'x'"), std::string::npos);
  EXPECT_NE(
      msg(R"({"inputs":[)" + X(1) + "," + K(1, 1) + R"(],"outputs":[{"name":"nope"}]})").find("unknown output 'nope'"),
      std::string::npos);
}

TEST(ValidateTest, OutputsMustMatchConfig) {
  ModelConfig c = Mlp();
  Tensor x{"x_out", DataType::kFp32, {2, 4}, std::vector<uint8_t>(32)};
  Tensor k{"k_out", DataType::kInt64, {2, 3}, std::vector<uint8_t>(48)};
  EXPECT_TRUE(ValidateOutputs(c, 2, {x, k}).ok());
  EXPECT_EQ(ValidateOutputs(c, 3, {x, k}).code(), StatusCode::kInternal);  // wrong row count
  EXPECT_EQ(ValidateOutputs(c, 2, {x}).code(), StatusCode::kInternal);     // missing output
  Tensor bad = k;
  bad.data.resize(40);
  EXPECT_EQ(ValidateOutputs(c, 2, {x, bad}).code(), StatusCode::kInternal);  // bytes do not match shape
  bad = k;
  bad.dtype = DataType::kInt32;
  EXPECT_EQ(ValidateOutputs(c, 2, {x, bad}).code(), StatusCode::kInternal);
}

TEST(ValidateTest, ResponseKeepsRequestedOutputsInRequestOrder) {
  ModelConfig c = Mlp();
  InferRequest r;
  r.outputs = {{"k_out", true}, {"x_out", false}};
  Tensor x{"", DataType::kFp32, {1, 4}, std::vector<uint8_t>(16)};
  Tensor k{"", DataType::kInt64, {1, 1}, std::vector<uint8_t>(8)};
  InferResponse resp = MakeResponse(c, 3, r, {x, k});
  ASSERT_EQ(resp.outputs.size(), 2u);
  EXPECT_EQ(resp.outputs[0].name, "k_out");
  EXPECT_TRUE(resp.binary[0]);
  EXPECT_EQ(resp.outputs[1].name, "x_out");
  EXPECT_FALSE(resp.binary[1]);
  EXPECT_EQ(resp.model_version, 3);
}

}  // namespace
}  // namespace berth
