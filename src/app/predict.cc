// `berth predict`: load one model directory, run it once, print the response.
#include <simdjson.h>

#include <filesystem>

#include "berth/server.h"
#include "common/file_util.h"
#include "common/json_writer.h"
#include "protocol/v2/v2_codec.h"
#include "server/inference_server.h"

namespace berth {
namespace {

Result<std::string> ReadValue(const std::string& name, const std::string& value) {
  if (value.empty() || value[0] != '@') return value;
  Result<std::string> read = ReadRegularFile(value.substr(1), uint64_t{1} << 32);
  if (!read.ok()) return Status(read.status().code(), "--input " + name + ": " + read.status().message());
  return read;
}

// The shape of a nested JSON array, read along its first elements.
Result<std::vector<int64_t>> ShapeOf(const std::string& name, const std::string& json, std::string* data) {
  simdjson::dom::parser parser;
  simdjson::dom::element e;
  if (auto err = parser.parse(json).get(e)) {
    return InvalidArgument("--input " + name + ": malformed JSON: " + simdjson::error_message(err));
  }
  std::vector<int64_t> shape;
  if (!e.is_array()) {  // a scalar is a one-element vector
    *data = "[" + std::string(simdjson::minify(e)) + "]";
    return std::vector<int64_t>{1};
  }
  *data = std::string(simdjson::minify(e));
  while (e.is_array()) {
    simdjson::dom::array a = e.get_array().value_unsafe();
    shape.push_back(static_cast<int64_t>(a.size()));
    if (a.size() == 0) break;
    e = a.at(0).value_unsafe();
  }
  return shape;
}

}  // namespace

Result<std::string> RunPredict(const PredictOptions& o) {
  std::filesystem::path dir = std::filesystem::path(o.model_dir).lexically_normal();
  if (dir.filename().empty()) dir = dir.parent_path();
  std::string name = dir.filename().string();
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return NotFound(o.model_dir + ": not a model directory");
  // The same server `berth serve` runs, over this one model directory.
  InferenceServer::Options so;
  so.repository.root = dir.string();
  so.repository.single_model = name;
  so.repository.version = o.version;
  so.repository.backend_dir = o.backend_dir;
  ASSIGN_OR_RETURN(std::unique_ptr<InferenceServer> server, InferenceServer::Create(so));
  RETURN_IF_ERROR(server->LoadModel(name));
  ASSIGN_OR_RETURN(ServedModel model, server->Resolve(name, -1));
  const ModelConfig& config = *model.config;

  std::string body;
  JsonWriter w(&body);
  w.BeginObject();
  w.Key("inputs");
  w.BeginArray();
  for (const auto& [input_name, raw] : o.inputs) {
    ASSIGN_OR_RETURN(std::string value, ReadValue(input_name, raw));
    std::string data;
    ASSIGN_OR_RETURN(std::vector<int64_t> shape, ShapeOf(input_name, value, &data));
    const TensorSpec* spec = config.FindInput(input_name);
    if (spec && config.batched() && shape.size() == spec->shape.size()) shape.insert(shape.begin(), 1);
    w.BeginObject();
    WriteTensorHeader(w, input_name, DataTypeName(spec ? spec->dtype : DataType::kFp32), shape);
    w.Key("data");
    w.Raw(data);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();

  ASSIGN_OR_RETURN(InferRequest decoded, DecodeInferRequest(body, std::nullopt));
  Result<InferResponse> response =
      server->Infer(name, model.version, std::make_unique<InferRequest>(std::move(decoded)));
  server->Stop();
  if (!response.ok()) return response.status();
  return EncodeInferResponse(*response).body;
}

}  // namespace berth
