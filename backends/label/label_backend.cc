// The label backend: a processing step after a classifier, so that a
// pipeline answers with a class name rather than a tensor. Its one input is
// FP32 scores per row:
//
//   [K], K >= 2: one score per class; the label is the class with the
//                highest score (the first on a tie)
//   [1]:         one probability; the label is the second class when it is
//                at least parameters.threshold (default 0.5), else the first
//
// Its first output is BYTES [1], the label; an optional second output FP32
// [1] is the chosen class's score ([1]: the probability itself). Class names
// come from a file of the model directory with one name per line
// (parameters.labels, default labels.txt): K names, or 2 for [1].
//
// With an INT64 [K] input instead (ids, e.g. a recommender's top K items),
// its one output is BYTES [K]: the name on line id + 1 of the file, which
// may hold any number of names; an id outside the file is a request error.
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "berth/backend_api.h"

namespace berth {
namespace {

struct Options {
  std::string input;
  bool ids = false;  // INT64 ids -> their names, rather than scores -> the best class's name
  int64_t classes = 0;
  std::vector<std::string> labels;
  float threshold = 0.5f;
  bool with_score = false;
  std::string label_output;
  std::string score_output;
};

Status ConfigError(const std::string& why) { return InvalidArgument("model.yaml: " + why); }

Result<Options> ParseOptions(const BackendModelConfig& c) {
  Options o;
  if (c.inputs.size() != 1 || (c.inputs[0].dtype != DataType::kFp32 && c.inputs[0].dtype != DataType::kInt64) ||
      c.inputs[0].shape.size() != 1 || c.inputs[0].shape[0] < 1) {
    return ConfigError(
        "the label backend takes one input: FP32 [K] class scores, FP32 [1] a probability, or INT64 [K] ids");
  }
  o.input = c.inputs[0].name;
  o.ids = c.inputs[0].dtype == DataType::kInt64;
  o.classes = c.inputs[0].shape[0];
  if (o.ids) {
    if (c.outputs.size() != 1 || c.outputs[0].dtype != DataType::kBytes || c.outputs[0].shape != c.inputs[0].shape) {
      return ConfigError("the label backend with INT64 [" + std::to_string(o.classes) +
                         "] ids has one output: BYTES [" + std::to_string(o.classes) + "] (their names)");
    }
  } else if (c.outputs.empty() || c.outputs.size() > 2 || c.outputs[0].dtype != DataType::kBytes ||
             c.outputs[0].shape != std::vector<int64_t>{1}) {
    return ConfigError("the label backend has a BYTES [1] output (the label) and optionally an FP32 [1] (its score)");
  }
  o.label_output = c.outputs[0].name;
  if (c.outputs.size() == 2) {
    if (c.outputs[1].dtype != DataType::kFp32 || c.outputs[1].shape != std::vector<int64_t>{1}) {
      return ConfigError("output '" + c.outputs[1].name + "': expected FP32 [1] (the label's score)");
    }
    o.with_score = true;
    o.score_output = c.outputs[1].name;
  }
  std::string file = "labels.txt";
  for (const auto& [key, v] : c.parameters) {
    if (key == "labels") {
      if (v.empty() || v.find("..") != std::string::npos || v[0] == '/') {
        return ConfigError("parameters.labels: expected a file name in the model directory");
      }
      file = v;
    } else if (key == "threshold") {
      try {
        size_t used = 0;
        o.threshold = std::stof(v, &used);
        if (used != v.size() || !(o.threshold >= 0.0f && o.threshold <= 1.0f)) throw std::exception();
      } catch (const std::exception&) {
        return ConfigError("parameters.threshold: expected a probability, 0 to 1");
      }
    } else {
      return ConfigError("parameters." + key +
                         ": unknown parameter for the label backend (expected labels, threshold)");
    }
  }
  std::ifstream in(c.model_dir + "/" + file);
  if (!in) return ConfigError("parameters.labels: " + file + " cannot be read");
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (o.ids && line.empty()) {  // a skipped line would shift every id after it
      return ConfigError(file + ": line " + std::to_string(o.labels.size() + 1) + " is empty (one name per id)");
    }
    if (!line.empty()) o.labels.push_back(line);
  }
  if (o.ids) {
    if (o.labels.empty()) return ConfigError(file + ": no names");
    return o;
  }
  const size_t want = o.classes == 1 ? 2 : static_cast<size_t>(o.classes);
  if (o.labels.size() != want) {
    return ConfigError(file + ": " + std::to_string(o.labels.size()) + " labels for " + std::to_string(want) +
                       " classes" + (o.classes == 1 ? " (a probability: the negative class, then the positive)" : ""));
  }
  return o;
}

class LabelInstance final : public ModelInstance {
 public:
  LabelInstance(Options o, bool batched) : o_(std::move(o)), batched_(batched) {}

  Status Execute(std::vector<Tensor>& inputs, std::vector<Tensor>* outputs) override {
    if (o_.ids) return Names(inputs[0], outputs);
    const Tensor& in = inputs[0];
    const float* scores = reinterpret_cast<const float*>(in.data.data());
    const size_t rows = in.data.size() / sizeof(float) / static_cast<size_t>(o_.classes);
    Tensor label{o_.label_output, DataType::kBytes, {}, {}};
    Tensor score{o_.score_output, DataType::kFp32, {}, {}};
    label.shape = batched_ ? std::vector<int64_t>{static_cast<int64_t>(rows), 1} : std::vector<int64_t>{1};
    score.shape = label.shape;
    score.data.resize(rows * sizeof(float));
    for (size_t r = 0; r < rows; ++r) {
      const float* row = scores + r * static_cast<size_t>(o_.classes);
      size_t best = 0;
      float value = row[0];
      if (o_.classes == 1) {
        best = row[0] >= o_.threshold ? 1 : 0;
      } else {
        for (int64_t k = 1; k < o_.classes; ++k) {
          if (row[k] > row[best]) best = static_cast<size_t>(k);
        }
        value = row[best];
      }
      AppendBytesElement(o_.labels[best], &label.data);
      reinterpret_cast<float*>(score.data.data())[r] = value;
    }
    outputs->clear();
    outputs->push_back(std::move(label));
    if (o_.with_score) outputs->push_back(std::move(score));
    return Status::Ok();
  }

 private:
  Status Names(const Tensor& in, std::vector<Tensor>* outputs) const {
    const size_t n = in.data.size() / sizeof(int64_t);
    Tensor names{o_.label_output, DataType::kBytes, in.shape, {}};
    for (size_t i = 0; i < n; ++i) {
      int64_t id;
      std::memcpy(&id, in.data.data() + i * sizeof(id), sizeof(id));
      if (id < 0 || static_cast<uint64_t>(id) >= o_.labels.size()) {
        return InvalidArgument("input '" + o_.input + "': element " + std::to_string(i) + ": id " + std::to_string(id) +
                               " is not one of the " + std::to_string(o_.labels.size()) + " names");
      }
      AppendBytesElement(o_.labels[static_cast<size_t>(id)], &names.data);
    }
    outputs->clear();
    outputs->push_back(std::move(names));
    return Status::Ok();
  }

  Options o_;
  bool batched_;
};

class LabelBackend final : public Backend {
 public:
  Result<std::unique_ptr<ModelInstance>> CreateInstance(const BackendModelConfig& c) override {
    ASSIGN_OR_RETURN(Options o, ParseOptions(c));
    return std::unique_ptr<ModelInstance>(new LabelInstance(std::move(o), c.batched()));
  }
};

}  // namespace
}  // namespace berth

BERTH_DEFINE_BACKEND("label", "", berth::LabelBackend)
