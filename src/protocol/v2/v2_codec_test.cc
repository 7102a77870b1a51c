#include "protocol/v2/v2_codec.h"

#include <gtest/gtest.h>

#include <cstring>

#include "common/json_writer.h"
#include "protocol/v2/v2_client_codec.h"

namespace berth {
namespace {

std::string ErrorOf(std::string_view body, std::optional<uint64_t> json_length = std::nullopt) {
  auto r = DecodeInferRequest(body, json_length);
  EXPECT_FALSE(r.ok()) << body;
  return r.ok() ? "" : r.status().message();
}

template <typename T>
std::vector<T> As(const Tensor& t) {
  std::vector<T> v(t.data.size() / sizeof(T));
  std::memcpy(v.data(), t.data.data(), t.data.size());
  return v;
}

TEST(DecodeTest, JsonTensorsNestedAndFlat) {
  auto r = DecodeInferRequest(
      R"({"id":"r1","inputs":[{"name":"a","datatype":"INT32","shape":[2,2],"data":[[1,2],[3,4]]},
                              {"name":"b","datatype":"FP64","shape":[3],"data":[1,2.5,-3e2]}],
          "outputs":[{"name":"y","parameters":{"binary_data":true}}]})",
      std::nullopt);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->id, "r1");
  ASSERT_EQ(r->inputs.size(), 2u);
  EXPECT_EQ(As<int32_t>(r->inputs[0]), (std::vector<int32_t>{1, 2, 3, 4}));
  EXPECT_EQ(As<double>(r->inputs[1]), (std::vector<double>{1, 2.5, -300}));
  ASSERT_EQ(r->outputs.size(), 1u);
  EXPECT_TRUE(r->outputs[0].binary);
}

TEST(DecodeTest, IntegerRangesPerDatatype) {
  auto ok = [](const char* dt, const char* data) {
    std::string body =
        std::string(R"({"inputs":[{"name":"a","datatype":")") + dt + R"(","shape":[2],"data":)" + data + "}]}";
    return DecodeInferRequest(body, std::nullopt).ok();
  };
  EXPECT_TRUE(ok("INT8", "[-128,127]"));
  EXPECT_FALSE(ok("INT8", "[-129,0]"));
  EXPECT_TRUE(ok("UINT8", "[0,255]"));
  EXPECT_FALSE(ok("UINT8", "[300,0]"));
  EXPECT_FALSE(ok("UINT32", "[-1,0]"));
  EXPECT_TRUE(ok("UINT64", "[18446744073709551615,0]"));
  EXPECT_TRUE(ok("INT64", "[-9223372036854775808,9223372036854775807]"));
  EXPECT_FALSE(ok("INT64", "[9223372036854775808,0]"));
  EXPECT_FALSE(ok("INT32", "[1.5,0]"));
  EXPECT_TRUE(ok("BOOL", "[true,false]"));
  EXPECT_FALSE(ok("BOOL", "[1,0]"));
  EXPECT_TRUE(ok("BYTES", R"(["a","bc"])"));
  EXPECT_FALSE(ok("BYTES", "[1,2]"));
  EXPECT_TRUE(ok("FP16", "[1.5,-2]"));
  EXPECT_FALSE(ok("FP32", R"(["1",2])"));
  EXPECT_TRUE(ok("FP32", "[null,2]"));  // null = missing = NaN
  EXPECT_FALSE(ok("INT32", "[null,2]"));
  EXPECT_FALSE(ok("FP32", "[1e39,0]"));  // out of range, not silently infinity
  EXPECT_TRUE(ok("FP64", "[1e39,0]"));
}

TEST(DecodeTest, ErrorsSayWhatAndWhere) {
  EXPECT_NE(ErrorOf("{").find("malformed JSON"), std::string::npos);
  EXPECT_NE(ErrorOf("[]").find("expected a JSON object"), std::string::npos);
  EXPECT_NE(ErrorOf("{}").find("inputs: missing"), std::string::npos);
  EXPECT_NE(ErrorOf(R"({"inputs":{}})").find("inputs: expected an array"), std::string::npos);
  std::string e = ErrorOf(R"({"inputs":[{"name":"x","datatype":"FP32","shape":[3],"data":[1,"two",3]}]})");
  EXPECT_NE(e.find("inputs[0] ('x'): data[1]: expected a number for FP32, got a string"), std::string::npos) << e;
  e = ErrorOf(R"({"inputs":[{"name":"x","datatype":"FP32","shape":[3],"data":[1,2]}]})");
  EXPECT_NE(e.find("data has 2 elements but the shape needs 3"), std::string::npos) << e;
  e = ErrorOf(R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1,2]}]})");
  EXPECT_NE(e.find("more than the 1 elements"), std::string::npos) << e;
  e = ErrorOf(R"({"inputs":[{"name":"x","datatype":"FP32","shape":[-1],"data":[1]}]})");
  EXPECT_NE(e.find("shape[0]: dimension is negative"), std::string::npos) << e;
  e = ErrorOf(R"({"inputs":[{"name":"x","datatype":"FP32","shape":[4294967296,4294967296,4294967296],"data":[1]}]})");
  EXPECT_NE(e.find("too many elements"), std::string::npos) << e;
  e = ErrorOf(R"({"inputs":[{"name":"x","datatype":"FP32","shape":[100000000],"data":[1]}]})");
  EXPECT_NE(e.find("more than the request body holds"), std::string::npos) << e;
  e = ErrorOf(R"({"inputs":[{"name":"x","datatype":"FLOAT","shape":[1],"data":[1]}]})");
  EXPECT_NE(e.find("unknown datatype 'FLOAT'"), std::string::npos) << e;
  e = ErrorOf(
      R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1]},{"name":"x","datatype":"FP32","shape":[1],"data":[1]}]})");
  EXPECT_NE(e.find("given more than once"), std::string::npos) << e;
  e = ErrorOf(R"({"inputs":[{"datatype":"FP32","shape":[1],"data":[1]}]})");
  EXPECT_NE(e.find("inputs[0].name"), std::string::npos) << e;
  e = ErrorOf(R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1]}]})");
  EXPECT_NE(e.find("data: missing"), std::string::npos) << e;
  e = ErrorOf(R"({"id":5,"inputs":[]})");
  EXPECT_NE(e.find("id: expected a string"), std::string::npos) << e;
  e = ErrorOf(R"({"inputs":[],"parameters":[]})");
  EXPECT_NE(e.find("parameters: expected an object"), std::string::npos) << e;
}

std::string WithBinary(const std::string& json, const std::string& binary) { return json + binary; }

TEST(DecodeTest, BinaryInputs) {
  float f[2] = {1.5f, -2.0f};
  std::string bin(reinterpret_cast<const char*>(f), sizeof f);
  std::vector<uint8_t> bytes;
  AppendBytesElement("hi", &bytes);
  std::string bin2(bytes.begin(), bytes.end());
  std::string json = R"({"inputs":[{"name":"a","datatype":"FP32","shape":[2],"parameters":{"binary_data_size":8}},
                                   {"name":"s","datatype":"BYTES","shape":[1],"parameters":{"binary_data_size":6}}]})";
  auto r = DecodeInferRequest(WithBinary(json, bin + bin2), json.size());
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(As<float>(r->inputs[0]), (std::vector<float>{1.5f, -2.0f}));
  EXPECT_EQ(r->inputs[1].data, bytes);

  EXPECT_NE(ErrorOf(WithBinary(json, bin + bin2 + "x"), json.size()).find("bytes follow the JSON header"),
            std::string::npos);
  EXPECT_NE(ErrorOf(WithBinary(json, bin), json.size()).find("runs past the end"), std::string::npos);
  EXPECT_NE(ErrorOf(json, json.size() + 10).find("Inference-Header-Content-Length"), std::string::npos);
  std::string wrong = R"({"inputs":[{"name":"a","datatype":"FP32","shape":[3],"parameters":{"binary_data_size":8}}]})";
  EXPECT_NE(ErrorOf(WithBinary(wrong, bin), wrong.size()).find("needs 12 bytes"), std::string::npos);
}

TEST(EncodeTest, JsonAndBinaryOutputs) {
  InferResponse r;
  r.model_name = "m";
  r.model_version = 2;
  r.id = "q\"1";
  r.has_id = true;
  Tensor a{"a", DataType::kFp32, {2}, {}};
  float f[2] = {12.0f, 0.5f};
  a.data.assign(reinterpret_cast<uint8_t*>(f), reinterpret_cast<uint8_t*>(f) + 8);
  Tensor b{"b", DataType::kInt64, {1}, {}};
  int64_t i = -7;
  b.data.assign(reinterpret_cast<uint8_t*>(&i), reinterpret_cast<uint8_t*>(&i) + 8);
  Tensor s{"s", DataType::kBytes, {2}, {}};
  AppendBytesElement("x", &s.data);
  AppendBytesElement("y\n", &s.data);
  r.outputs = {a, b, s};
  r.binary = {false, true, false};
  EncodedResponse e = EncodeInferResponse(r);
  ASSERT_TRUE(e.json_length.has_value());
  std::string json = e.body.substr(0, *e.json_length);
  EXPECT_EQ(json, R"({"model_name":"m","model_version":"2","id":"q\"1","outputs":[)"
                  R"({"name":"a","datatype":"FP32","shape":[2],"data":[12.0,0.5]},)"
                  R"({"name":"b","datatype":"INT64","shape":[1],"parameters":{"binary_data_size":8}},)"
                  R"({"name":"s","datatype":"BYTES","shape":[2],"data":["x","y\n"]}]})");
  EXPECT_EQ(e.body.size(), json.size() + 8);
  int64_t back;
  std::memcpy(&back, e.body.data() + json.size(), 8);
  EXPECT_EQ(back, -7);
}

// The client half (v2_client_codec.h) against the server half: what one encodes the other decodes.
TEST(V2ClientCodecTest, RequestsRoundTripThroughTheServerDecoder) {
  InferRequest r;
  r.id = "r1";
  r.has_id = true;
  Tensor x{"x", DataType::kFp32, {2, 2}, {}};
  for (float f : {1.5f, -2.0f, 0.0f, 3.25f}) {
    x.data.insert(x.data.end(), reinterpret_cast<uint8_t*>(&f), reinterpret_cast<uint8_t*>(&f) + 4);
  }
  Tensor s{"s", DataType::kBytes, {1}, {}};
  AppendBytesElement("h\xc3\xa9", &s.data);
  r.inputs = {x, s};
  r.outputs = {{"y", false}};
  for (bool binary : {false, true}) {
    EncodedRequest e = EncodeInferRequest(r, binary);
    EXPECT_EQ(e.json_length.has_value(), binary);
    auto back = DecodeInferRequest(e.body, e.json_length);
    ASSERT_TRUE(back.ok()) << back.status().message();
    EXPECT_EQ(back->id, "r1");
    ASSERT_EQ(back->inputs.size(), 2u);
    EXPECT_EQ(back->inputs[0].data, x.data);
    EXPECT_EQ(back->inputs[0].shape, x.shape);
    EXPECT_EQ(back->inputs[1].data, s.data);
    ASSERT_EQ(back->outputs.size(), 1u);
    EXPECT_EQ(back->binary_output, binary);
  }
}

TEST(V2ClientCodecTest, ResponsesRoundTripJsonAndBinary) {
  InferResponse r;
  r.model_name = "m";
  r.model_version = 3;
  Tensor y{"y", DataType::kInt64, {3}, {}};
  for (int64_t v : {int64_t{-1}, int64_t{0}, int64_t{1} << 40}) {
    y.data.insert(y.data.end(), reinterpret_cast<uint8_t*>(&v), reinterpret_cast<uint8_t*>(&v) + 8);
  }
  r.outputs = {y};
  for (bool binary : {false, true}) {
    r.binary = {binary};
    EncodedResponse e = EncodeInferResponse(r);
    auto back = DecodeInferResponse(e.body, e.json_length);
    ASSERT_TRUE(back.ok()) << back.status().message();
    EXPECT_EQ(back->model_name, "m");
    EXPECT_EQ(back->model_version, 3);
    ASSERT_EQ(back->outputs.size(), 1u);
    EXPECT_EQ(back->outputs[0].data, y.data);
    EXPECT_EQ(back->outputs[0].dtype, DataType::kInt64);
  }
  EXPECT_FALSE(DecodeInferResponse("{\"outputs\":7}", std::nullopt).ok());
  EXPECT_FALSE(DecodeInferResponse("nope", std::nullopt).ok());
  auto bad =
      DecodeInferResponse(R"({"outputs":[{"name":"y","datatype":"FP32","shape":[2],"data":[1]}]})", std::nullopt);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("outputs[0]"), std::string::npos) << bad.status().message();
}

TEST(V2ClientCodecTest, ModelMetadata) {
  auto m = DecodeModelMetadata(R"({"name":"mlp","versions":["1","2"],"platform":"torchscript",)"
                               R"("inputs":[{"name":"x","datatype":"FP32","shape":[-1,16]}],)"
                               R"("outputs":[{"name":"p","datatype":"FP32","shape":[-1,4]}]})");
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->versions, (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ(m->inputs.at(0).shape, (std::vector<int64_t>{-1, 16}));
  EXPECT_EQ(m->outputs.at(0).name, "p");
  EXPECT_FALSE(DecodeModelMetadata(R"({"inputs":[{"name":"x"}]})").ok());
}

TEST(JsonWriterTest, InvalidUtf8BecomesReplacementCharacter) {
  std::string out;
  JsonWriter w(&out);
  w.String(std::string("a\xff\xc3\xa9\xc3(\xed\xa0\x80\x01", 10));
  EXPECT_EQ(out, "\"a\\ufffd\xc3\xa9\\ufffd(\\ufffd\\ufffd\\ufffd\\u0001\"");
}

}  // namespace
}  // namespace berth
