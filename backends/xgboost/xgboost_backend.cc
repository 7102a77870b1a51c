// The XGBoost backend: the XGBoost C API loads model.json or model.ubj and
// predicts in place from the dense [N, F] input. Every non-zero XGBoost return
// becomes a Status carrying XGBGetLastError(); nothing throws across this edge.
//
// model.yaml must declare max_batch_size > 0, one FP32 or FP64 input of shape
// [F] (F = the booster's num_feature) and one FP32 output of shape [W], where W
// is what one row predicts: 1 for binary:logistic and regression, num_class for
// multi:softprob. NaN inputs are missing values. An input [..., F] with leading
// dimensions (e.g. [-1, F]: several feature rows per request) predicts every
// row of it: the output is then [..., W] with the same leading dimensions.
#include <xgboost/c_api.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "berth/backend_api.h"
#include "common/file_util.h"
#include "model_file_check.h"

namespace berth {
namespace {

// XGBoost messages start with a "[hh:mm:ss] " stamp, may carry a stack trace,
// and quote bytes of a corrupt file verbatim; our reasons end up in JSON
// responses and logs, so keep one readable ASCII line.
std::string LastXgboostError() {
  std::string raw = XGBGetLastError();
  if (raw.size() > 11 && raw[0] == '[' && raw[9] == ']' && raw[10] == ' ') raw.erase(0, 11);
  if (size_t trace = raw.find("Stack trace:"); trace != std::string::npos) raw.resize(trace);
  std::string out;
  out.reserve(raw.size());
  for (unsigned char c : raw) {
    if (c == '\n' || c == '\r' || c == '\t') {
      if (!out.empty() && out.back() != ' ') out.push_back(' ');
    } else if (c >= 0x20 && c < 0x7f) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('?');
    }
  }
  while (!out.empty() && (out.back() == ' ' || out.back() == ':')) out.pop_back();
  constexpr size_t kMaxLength = 400;
  if (out.size() > kMaxLength) out = out.substr(0, kMaxLength) + "...";
  return out.empty() ? "unknown XGBoost error" : out;
}

Status XgbError(int rc, const std::string& what) {
  if (rc == 0) return Status::Ok();
  return Internal("XGBoost: " + what + ": " + LastXgboostError());
}

// Owns a BoosterHandle.
class Booster {
 public:
  Booster() = default;
  Booster(const Booster&) = delete;
  Booster& operator=(const Booster&) = delete;
  ~Booster() {
    if (handle_ != nullptr) XGBoosterFree(handle_);
  }
  BoosterHandle get() const { return handle_; }
  BoosterHandle* out() { return &handle_; }

 private:
  BoosterHandle handle_ = nullptr;
};

// The value of `"field":"..."` inside the JSON object under `"object":` in
// XGBoost's own compact config (XGBoosterSaveJsonConfig). The objects we read
// (learner_model_param, learner_train_param) hold only string values, so a
// scan bounded by the object's braces is exact without a JSON library, which
// the backend plugins do not link.
std::string ConfigField(const std::string& json, const std::string& object, const std::string& field) {
  size_t begin = json.find("\"" + object + "\":{");
  if (begin == std::string::npos) return "";
  begin = json.find('{', begin);
  int depth = 0;
  bool in_string = false;
  size_t end = begin;
  for (; end < json.size(); ++end) {
    char c = json[end];
    if (in_string) {
      if (c == '\\') {
        ++end;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{') {
      ++depth;
    } else if (c == '}' && --depth == 0) {
      break;
    }
  }
  const std::string key = "\"" + field + "\":\"";
  size_t at = json.find(key, begin);
  if (at == std::string::npos || at >= end) return "";
  at += key.size();
  size_t close = json.find('"', at);
  if (close == std::string::npos || close > end) return "";
  return json.substr(at, close - at);
}

// XGBoost 1.7 trusts its model files (model_file_check.h): the file is read
// once, checked whole, and loaded from the same bytes, so that nothing it
// holds can crash the server and it cannot change between check and load.
constexpr uint64_t kMaxModelFileBytes = uint64_t{4} << 30;

Result<XgboostModelFacts> LoadChecked(BoosterHandle booster, const std::string& path) {
  ASSIGN_OR_RETURN(std::string bytes, ReadRegularFile(path, kMaxModelFileBytes));
  const size_t slash = path.find_last_of('/');
  ASSIGN_OR_RETURN(XgboostFormat format,
                   DetectXgboostFormat(bytes, slash == std::string::npos ? path : path.substr(slash + 1)));
  ASSIGN_OR_RETURN(XgboostModelFacts facts, CheckXgboostModel(bytes, format));
  if (XGBoosterLoadModelFromBuffer(booster, bytes.data(), bytes.size()) != 0) {
    return InvalidArgument(LastXgboostError());
  }
  return facts;
}

// What the loaded booster is, as far as model.yaml must agree with it.
struct BoosterFacts {
  std::string objective;     // e.g. "binary:logistic"; "" if the config does not say
  std::string num_class;     // as the config spells it
  int64_t num_feature = 0;   // columns one row must have
  int64_t output_width = 0;  // floats one row predicts
};

// The __array_interface__ (version 3) that XGBoosterPredictFromDense reads:
// a borrowed pointer to packed row-major data. "<f8" lets XGBoost read FP64
// directly rather than us copying it to FP32 (it converts internally anyway).
std::string DenseArrayInterface(const void* data, int64_t rows, int64_t cols, bool fp64) {
  return "{\"data\":[" + std::to_string(reinterpret_cast<uintptr_t>(data)) + ",true],\"shape\":[" +
         std::to_string(rows) + "," + std::to_string(cols) + "],\"strides\":null,\"typestr\":\"" +
         (fp64 ? "<f8" : "<f4") + "\",\"version\":3}";
}

// Normal prediction over every tree; NaN marks a missing value. XGBoost's JSON
// reader accepts the NaN literal (the Python package sends the same config).
constexpr const char* kPredictConfig =
    "{\"type\":0,\"training\":false,\"iteration_begin\":0,\"iteration_end\":0,"
    "\"strict_shape\":false,\"missing\":NaN,\"cache_id\":0}";

// Predicts `rows` rows; on success *result points into the booster's own
// buffer (valid until its next call) and *count is the number of floats.
Status PredictDense(BoosterHandle booster, const void* data, int64_t rows, int64_t cols, bool fp64,
                    const float** result, uint64_t* count) {
  const std::string array = DenseArrayInterface(data, rows, cols, fp64);
  const bst_ulong* shape = nullptr;
  bst_ulong dim = 0;
  RETURN_IF_ERROR(
      XgbError(XGBoosterPredictFromDense(booster, array.c_str(), kPredictConfig, nullptr, &shape, &dim, result),
               "prediction failed"));
  uint64_t n = 1;
  for (bst_ulong i = 0; i < dim; ++i) n *= shape[i];
  *count = n;
  return Status::Ok();
}

Result<BoosterFacts> InspectBooster(BoosterHandle booster) {
  BoosterFacts facts;
  bst_ulong num_feature = 0;
  RETURN_IF_ERROR(XgbError(XGBoosterGetNumFeature(booster, &num_feature), "reading num_feature"));
  facts.num_feature = static_cast<int64_t>(num_feature);

  bst_ulong len = 0;
  const char* config = nullptr;
  RETURN_IF_ERROR(XgbError(XGBoosterSaveJsonConfig(booster, &len, &config), "reading the model's config"));
  const std::string json(config, len);
  facts.objective = ConfigField(json, "learner_train_param", "objective");
  facts.num_class = ConfigField(json, "learner_model_param", "num_class");
  // What one row predicts depends on the objective (and num_class, num_target);
  // predicting one all-missing row asks the booster itself rather than
  // re-deriving XGBoost's rules here.
  // The file check bounds num_feature; the booster must agree with what it checked.
  if (facts.num_feature <= 0 || facts.num_feature > XgboostModelLimits{}.max_features) {
    return InvalidArgument("the model has " + std::to_string(facts.num_feature) + " features");
  }
  std::vector<float> row(static_cast<size_t>(facts.num_feature), std::numeric_limits<float>::quiet_NaN());
  const float* result = nullptr;
  uint64_t count = 0;
  RETURN_IF_ERROR(PredictDense(booster, row.data(), 1, facts.num_feature, false, &result, &count));
  if (count == 0) return InvalidArgument("the model predicts nothing for a row");
  facts.output_width = static_cast<int64_t>(count);
  return facts;
}

// "the model has objective multi:softprob, num_class 3, num_feature 5"
std::string Describe(const BoosterFacts& f) {
  std::string s = "the model has objective " + (f.objective.empty() ? std::string("unknown") : f.objective);
  if (!f.num_class.empty() && f.num_class != "0") s += ", num_class " + f.num_class;
  return s + ", num_feature " + std::to_string(f.num_feature);
}

// Checks model.yaml against what the booster is. `yaml` names the file.
Status CheckConfig(const BackendModelConfig& c, const BoosterFacts& f, const std::string& yaml) {
  if (c.inputs.size() != 1) {
    return InvalidArgument(yaml + ": inputs: the xgboost backend takes exactly one input (the feature vector); got " +
                           std::to_string(c.inputs.size()));
  }
  const BackendTensorSpec& in = c.inputs[0];
  if (in.dtype != DataType::kFp32 && in.dtype != DataType::kFp64) {
    return InvalidArgument(yaml + ": inputs[0].datatype: expected FP32 or FP64; got " +
                           std::string(DataTypeName(in.dtype)));
  }
  const std::string features = "[" + std::to_string(f.num_feature) + "]";
  if (in.shape.empty() || in.shape.back() != f.num_feature) {
    return InvalidArgument(yaml + ": inputs[0].shape: expected " + features + " (or [..., " +
                           std::to_string(f.num_feature) + "]: several rows), the model's feature count (" +
                           Describe(f) + "); got " + ShapeToString(in.shape));
  }
  const std::vector<int64_t> leading(in.shape.begin(), in.shape.end() - 1);
  if (c.outputs.size() != 1) {
    return InvalidArgument(yaml + ": outputs: the xgboost backend produces exactly one output; got " +
                           std::to_string(c.outputs.size()));
  }
  const BackendTensorSpec& out = c.outputs[0];
  if (out.dtype != DataType::kFp32) {
    return InvalidArgument(yaml + ": outputs[0].datatype: expected FP32 (XGBoost predicts floats); got " +
                           std::string(DataTypeName(out.dtype)));
  }
  std::vector<int64_t> expected = leading;
  expected.push_back(f.output_width);
  if (out.shape.size() != expected.size() || !std::equal(leading.begin(), leading.end(), out.shape.begin()) ||
      (out.shape.back() != f.output_width && out.shape.back() != -1)) {
    return InvalidArgument(yaml + ": outputs[0].shape: expected " + ShapeToString(expected) +
                           ", the values the model predicts per row (" + Describe(f) + ")" +
                           (leading.empty() ? "" : " after the input's leading dimensions") + "; got " +
                           ShapeToString(out.shape));
  }
  return Status::Ok();
}

class XgboostInstance final : public ModelInstance {
 public:
  XgboostInstance(std::unique_ptr<Booster> booster, BackendModelConfig config, int64_t num_feature,
                  int64_t output_width)
      : booster_(std::move(booster)),
        config_(std::move(config)),
        num_feature_(num_feature),
        output_width_(output_width) {}

  Status Execute(std::vector<Tensor>& inputs, std::vector<Tensor>* outputs) override {
    try {
      return Run(inputs, outputs);
    } catch (const std::exception& e) {
      return Internal(std::string("xgboost backend: ") + e.what());
    }
  }

 private:
  Status Run(std::vector<Tensor>& inputs, std::vector<Tensor>* outputs) {
    if (inputs.size() != 1) return Internal("xgboost backend: expected one input tensor");
    const Tensor& in = inputs[0];
    const bool fp64 = in.dtype == DataType::kFp64;
    // [N, ..., F]: every leading dimension is rows (the server has checked the shape against model.yaml).
    int64_t rows = 1;
    for (size_t i = 0; i + 1 < in.shape.size(); ++i) rows *= in.shape[i];
    if (in.shape.size() < 2 || in.shape.back() != num_feature_ ||
        in.data.size() != static_cast<size_t>(rows * num_feature_) * (fp64 ? 8 : 4)) {
      return Internal("xgboost backend: input '" + in.name + "' has shape " + ShapeToString(in.shape) +
                      "; expected [N, ..., " + std::to_string(num_feature_) + "]");
    }
    outputs->resize(1);
    Tensor& out = (*outputs)[0];
    out.name = config_.outputs[0].name;
    out.dtype = DataType::kFp32;
    out.shape.assign(in.shape.begin(), in.shape.end() - 1);
    out.shape.push_back(output_width_);
    out.data.assign(static_cast<size_t>(rows * output_width_) * sizeof(float), 0);
    if (rows == 0) return Status::Ok();

    const float* result = nullptr;
    uint64_t count = 0;
    RETURN_IF_ERROR(PredictDense(booster_->get(), in.data.data(), rows, num_feature_, fp64, &result, &count));
    if (count != static_cast<uint64_t>(rows * output_width_)) {
      return Internal("xgboost backend: the model predicted " + std::to_string(count) + " values for " +
                      std::to_string(rows) + " rows; expected " + std::to_string(output_width_) + " per row");
    }
    // The result buffer belongs to the booster and is reused by its next call.
    std::memcpy(out.data.data(), result, out.data.size());
    return Status::Ok();
  }

  std::unique_ptr<Booster> booster_;
  const BackendModelConfig config_;
  int64_t num_feature_;
  int64_t output_width_;
};

class XgboostBackend final : public Backend {
 public:
  // The booster knows its feature count and what one row predicts: enough for
  // a model.yaml that names only the backend.
  Status InferSignature(const std::string& model_file, BackendSignature* c) override {
    try {
      auto booster = std::make_unique<Booster>();
      if (int rc = XGBoosterCreate(nullptr, 0, booster->out()); rc != 0) return XgbError(rc, "creating a booster");
      if (auto loaded = LoadChecked(booster->get(), model_file); !loaded.ok()) {
        return InvalidArgument("not a loadable XGBoost model: " + loaded.status().message());
      }
      ASSIGN_OR_RETURN(BoosterFacts facts, InspectBooster(booster->get()));
      if (c->max_batch_size == 0) c->max_batch_size = 256;
      c->inputs = {BackendTensorSpec{"features", DataType::kFp32, {facts.num_feature}}};
      c->outputs = {BackendTensorSpec{"predictions", DataType::kFp32, {facts.output_width}}};
      return Status::Ok();
    } catch (const std::exception& e) {
      return Internal(std::string("xgboost backend: ") + e.what());
    }
  }

  Result<std::unique_ptr<ModelInstance>> CreateInstance(const BackendModelConfig& ctx) override {
    try {
      return Create(ctx);
    } catch (const std::exception& e) {
      return Internal(std::string("xgboost backend: ") + e.what());
    }
  }

 private:
  static Result<std::unique_ptr<ModelInstance>> Create(const BackendModelConfig& ctx) {
    const BackendModelConfig& c = ctx;
    const std::string yaml = ctx.model_dir + "/model.yaml";
    if (!c.batched()) {
      return InvalidArgument(yaml +
                             ": max_batch_size: the xgboost backend needs max_batch_size > 0 (inputs arrive as "
                             "[N, features]); got 0");
    }
    if (!c.parameters.empty()) {
      return InvalidArgument(yaml + ": parameters." + c.parameters.begin()->first +
                             ": the xgboost backend takes no parameters");
    }
    if (ctx.model_file.empty()) return InvalidArgument(ctx.version_dir + ": no model.json or model.ubj");

    auto booster = std::make_unique<Booster>();
    if (int rc = XGBoosterCreate(nullptr, 0, booster->out()); rc != 0) {
      return XgbError(rc, "creating a booster");
    }
    if (auto loaded = LoadChecked(booster->get(), ctx.model_file); !loaded.ok()) {
      return InvalidArgument(ctx.model_file + ": not a loadable XGBoost model: " + loaded.status().message());
    }
    // Each instance predicts on its own executor thread; `threads` sizes the
    // booster's OpenMP pool instead of XGBoost's default of every core. Set
    // after loading so that nothing the file carries overrides it.
    const std::string threads = std::to_string(c.threads);
    if (int rc = XGBoosterSetParam(booster->get(), "nthread", threads.c_str()); rc != 0) {
      return XgbError(rc, "setting nthread");
    }
    Result<BoosterFacts> facts = InspectBooster(booster->get());
    if (!facts.ok()) {
      return InvalidArgument(ctx.model_file + ": not a valid XGBoost model: " + facts.status().message());
    }
    RETURN_IF_ERROR(CheckConfig(c, *facts, yaml));
    return std::unique_ptr<ModelInstance>(
        new XgboostInstance(std::move(booster), ctx, facts->num_feature, facts->output_width));
  }
};

}  // namespace
}  // namespace berth

BERTH_DEFINE_BACKEND("xgboost", "model.json,model.ubj", berth::XgboostBackend)
