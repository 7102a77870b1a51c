// A model's configuration, as read from DIR/<model>/model.yaml.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "berth/status.h"
#include "berth/tensor.h"

namespace berth {

struct TensorSpec {
  std::string name;
  DataType dtype = DataType::kFp32;
  // Excludes the batch dimension when max_batch_size > 0; -1 = any size.
  std::vector<int64_t> shape;
  // Inputs, for `berth batch`: the table columns that fill this input, in
  // order (a one-hot column contributes one value per category). Outputs of
  // a `kind: transform` model: the inputs that fill this output, the same way.
  std::vector<std::string> columns;
  // Pipelines' inputs only: the request may leave it out (the steps that
  // need it are skipped).
  bool optional = false;
  // Outputs only: `labels:` in model.yaml, a file of the model directory
  // with one class name per line, for the classification extension; read
  // into `labels` when the model is read from its repository.
  std::string labels_file;
  std::vector<std::string> labels;
};

// Preprocessing of table columns before they fill model inputs (`berth
// batch`); the keys are column names. Applied in this order: fill_missing,
// then one_hot or standardize.
struct Transforms {
  std::map<std::string, std::string> fill_missing;               // value for an empty/NA field
  std::map<std::string, std::pair<double, double>> standardize;  // (x - mean) / std
  std::map<std::string, std::vector<std::string>> one_hot;       // categories, in output order

  bool empty() const { return fill_missing.empty() && standardize.empty() && one_hot.empty(); }
};

// Triton-style dynamic batching: requests wait up to max_queue_delay_us for
// company, then run together in one execution of up to max_batch_size rows.
struct DynamicBatching {
  int64_t max_queue_delay_us = 0;
  std::vector<int64_t> preferred_batch_sizes;  // ascending
};

// Which versions of a model serve (Triton's version_policy).
struct VersionPolicy {
  enum class Kind { kLatest, kAll, kSpecific };
  Kind kind = Kind::kLatest;
  int64_t latest = 1;             // kLatest: the N highest versions
  std::vector<int64_t> specific;  // kSpecific: exactly these
};

// The kinds of model (model.yaml's `kind`): one a backend plugin runs, a
// pipeline of other models (common/pipeline_spec.h), and a table transform
// with no weights (transform/transform_instance.h: the `transforms` of
// `berth batch` as a model, so pipelines preprocess online the same way);
// the repository's loader builds each kind its own way.
inline constexpr const char* kBackendModelKind = "backend";
inline constexpr const char* kPipelineModelKind = "pipeline";
inline constexpr const char* kTransformModelKind = "transform";

struct PipelineSpec;

struct ModelConfig {
  std::string name;  // the model directory's name
  std::string kind = kBackendModelKind;
  std::string backend;  // plugin name, e.g. "torchscript"
  int64_t max_batch_size = 0;
  std::vector<TensorSpec> inputs;
  std::vector<TensorSpec> outputs;
  int instances = 1;
  int threads = 1;
  std::map<std::string, std::string> parameters;    // backend-specific
  std::optional<DynamicBatching> dynamic_batching;  // absent: each request runs alone
  int64_t max_queue_size = 1024;                    // waiting requests; beyond it: 503
  VersionPolicy version_policy;
  // Synthetic requests (zeros) each version runs before it serves; a version
  // whose warm-up fails never serves (a poll-mode update that fails every
  // request is not promoted). `warmup: {requests: 0}` turns it off. The
  // default is 1, or 0 for a model with a BYTES input (zeros are no valid
  // text or image file).
  int64_t warmup_requests = 1;
  bool warmup_set = false;  // model.yaml says warmup.requests
  // An execution longer than this fails its requests with 504 and reports
  // the instance stuck. -1 = the server's --execution-timeout-ms; 0 = none.
  int64_t execution_timeout_ms = -1;
  Transforms transforms;
  // kind: pipeline: its steps and wiring. Its outputs' datatypes and shapes
  // come from the step models when it loads.
  std::shared_ptr<const PipelineSpec> pipeline;

  bool batched() const { return max_batch_size > 0; }
  // The shape clients see: [-1, ...spec] when batched.
  std::vector<int64_t> FullShape(const TensorSpec& spec) const;
  const TensorSpec* FindInput(std::string_view name) const;
  const TensorSpec* FindOutput(std::string_view name) const;
};

// Parses model.yaml text. `source` names the file in error messages, which
// also name the key and what was expected:
//   "models/mlp/model.yaml: inputs[0].datatype: expected one of BOOL, ...; got 'FP33'"
Result<ModelConfig> ParseModelConfig(std::string_view yaml_text, const std::string& model_name,
                                     const std::string& source);

// Like ParseModelConfig, but inputs and outputs may be left out, for a
// backend to infer from the model file (see Backend::InferConfig).
Result<ModelConfig> ParsePartialModelConfig(std::string_view yaml_text, const std::string& model_name,
                                            const std::string& source);

}  // namespace berth
