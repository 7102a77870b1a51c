#include "pipeline/pipeline_kind.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <set>

#include "common/pipeline_condition.h"
#include "pipeline/pipeline_scheduler.h"
#include "pipeline/remote_step.h"

namespace berth {
namespace {

// A tensor as the step that reads it sees it: datatype and full shape (with
// the batch dimension, -1, when batched), and whether it may be absent.
struct TensorType {
  DataType dtype = DataType::kFp32;
  std::vector<int64_t> shape;
  bool maybe_absent = false;
  std::string why_absent;  // for the error when an output that may be absent is not optional
};

// What a step's model takes and gives, from its config (local) or its
// metadata (remote). Shapes are full: with the batch dimension.
struct Signature {
  struct Tensor {
    std::string name;
    DataType dtype;
    std::vector<int64_t> shape;
    bool optional = false;
  };
  std::string what;  // "model 'm'" or "remote ... model m"
  std::vector<Tensor> inputs, outputs;
  bool batched = false;
  int64_t max_batch_size = -1;  // -1: not known (remote)
};

Signature FromConfig(const ModelConfig& m) {
  Signature s;
  s.what = "model '" + m.name + "'";
  for (const auto& t : m.inputs) s.inputs.push_back({t.name, t.dtype, m.FullShape(t), t.optional});
  for (const auto& t : m.outputs) s.outputs.push_back({t.name, t.dtype, m.FullShape(t), false});
  s.batched = m.batched();
  s.max_batch_size = m.max_batch_size;
  return s;
}

Signature FromMetadata(const RemoteStep& r) {
  Signature s;
  s.what = r.where();
  for (const auto& t : r.metadata().inputs) s.inputs.push_back({t.name, t.dtype, t.shape, false});
  for (const auto& t : r.metadata().outputs) s.outputs.push_back({t.name, t.dtype, t.shape, false});
  s.batched = !s.inputs.empty() && !s.inputs[0].shape.empty() && s.inputs[0].shape[0] == -1;
  return s;
}

bool ShapesCompatible(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] != -1 && b[i] != -1 && a[i] != b[i]) return false;
  }
  return true;
}

class Checker {
 public:
  Checker(const ModelSource& source, ModelConfig* config, InferenceServer* server)
      : where_(source.yaml_path()), config_(config), spec_(*config->pipeline), server_(server) {}

  Status Error(const std::string& key, const std::string& what) const {
    return InvalidArgument(where_ + ": " + key + ": " + what);
  }

  Status Check() {
    for (const TensorSpec& in : config_->inputs) {
      TensorType t{in.dtype, config_->FullShape(in), in.optional,
                   in.optional ? "input '" + in.name + "' is optional" : ""};
      types_["$in." + in.name] = t;
    }
    remotes_.resize(spec_.steps.size());
    for (size_t i = 0; i < spec_.steps.size(); ++i) RETURN_IF_ERROR(CheckStep(i));
    for (size_t i = 0; i < spec_.outputs.size(); ++i) RETURN_IF_ERROR(TypeOutput(i));
    return Status::Ok();
  }

 private:
  Status CheckStep(size_t index) {
    const PipelineStep& step = spec_.steps[index];
    std::string key = "steps." + step.name;
    Signature m;
    if (step.remote) {
      // Every request is bounded by the pipeline's deadline as well; this bounds the metadata fetch and any
      // request made without one.
      std::chrono::milliseconds timeout(step.timeout_ms > 0    ? step.timeout_ms
                                        : spec_.timeout_ms > 0 ? spec_.timeout_ms
                                                               : 60'000);
      Result<std::unique_ptr<RemoteStep>> remote = RemoteStep::Create(step, timeout);
      if (!remote.ok()) {
        // A service that does not answer yet stays UNAVAILABLE: the repository loads the pipeline again.
        Status s = Error(key + ".remote", remote.status().message());
        return remote.status().code() == StatusCode::kUnavailable ? Unavailable(s.message()) : s;
      }
      m = FromMetadata(**remote);
      remotes_[index] = std::move(remote).value();
    } else {
      Result<ServedModel> served = server_->Resolve(step.model, step.version);
      if (!served.ok()) {
        return Error(key + ".model", "model '" + step.model + "'" +
                                         (step.version > 0 ? " version " + std::to_string(step.version) : "") +
                                         " does not serve (" + served.status().message() +
                                         "); a pipeline loads after the models it runs");
      }
      m = FromConfig(*served->config);
    }
    if (config_->batched() && (!m.batched || (m.max_batch_size >= 0 && m.max_batch_size < config_->max_batch_size))) {
      return Error(key + (step.remote ? ".remote" : ".model"),
                   m.what + " takes batches of at most " + std::to_string(std::max<int64_t>(m.max_batch_size, 0)) +
                       " rows, the pipeline's max_batch_size is " + std::to_string(config_->max_batch_size));
    }
    bool maybe_absent = step.skip_on_error || step.when;
    std::string why = step.skip_on_error ? "step '" + step.name + "' has on_error: skip"
                      : step.when        ? "step '" + step.name + "' runs only when its condition holds"
                                         : "";
    if (step.when) {
      for (const TensorRef& ref : step.when->refs()) {
        auto t = types_.find(ref.ToString());
        if (t == types_.end()) {
          return Error(key + ".when", "step '" + ref.step + "' has no output '" + ref.tensor + "'");
        }
        if (t->second.dtype == DataType::kBytes || t->second.dtype == DataType::kFp16) {
          return Error(key + ".when", ref.ToString() + " is " + std::string(DataTypeName(t->second.dtype)) +
                                          ": conditions compare numbers");
        }
      }
    }
    for (const auto& [name, ref] : step.inputs) {
      const std::string& wanted = name;  // (a structured binding cannot be captured in C++17)
      auto in = std::find_if(m.inputs.begin(), m.inputs.end(), [&](const auto& t) { return t.name == wanted; });
      if (in == m.inputs.end()) {
        std::string names;
        for (const auto& t : m.inputs) names += (names.empty() ? "" : ", ") + t.name;
        return Error(key + ".inputs." + name, m.what + " has no input '" + name + "' (it has: " + names + ")");
      }
      auto t = types_.find(ref.ToString());
      if (t == types_.end()) {
        return Error(key + ".inputs." + name, "step '" + ref.step + "' has no output '" + ref.tensor + "'");
      }
      if (t->second.dtype != in->dtype) {
        return Error(key + ".inputs." + name, ref.ToString() + " is " + std::string(DataTypeName(t->second.dtype)) +
                                                  ", " + m.what + " takes " + std::string(DataTypeName(in->dtype)));
      }
      if (!ShapesCompatible(t->second.shape, in->shape)) {
        return Error(key + ".inputs." + name, ref.ToString() + " has shape " + ShapeToString(t->second.shape) + ", " +
                                                  m.what + " takes " + ShapeToString(in->shape));
      }
      if (t->second.maybe_absent && !maybe_absent) {
        maybe_absent = true;
        why = "step '" + step.name + "' reads " + ref.ToString() + " (" + t->second.why_absent + ")";
      }
    }
    for (const auto& in : m.inputs) {
      bool wired =
          std::any_of(step.inputs.begin(), step.inputs.end(), [&](const auto& kv) { return kv.first == in.name; });
      if (!wired && !in.optional) return Error(key + ".inputs", m.what + " input '" + in.name + "' is not wired");
    }
    for (const auto& out : m.outputs) {
      types_[step.name + "." + out.name] = TensorType{out.dtype, out.shape, maybe_absent, why};
    }
    return Status::Ok();
  }

  Status TypeOutput(size_t i) {
    const PipelineOutput& out = spec_.outputs[i];
    std::string key = "outputs[" + std::to_string(i) + "]";
    const TensorType* first = nullptr;
    bool always = false;
    std::string why;
    for (const TensorRef& ref : out.from) {
      auto t = types_.find(ref.ToString());
      if (t == types_.end()) return Error(key + ".from", "step '" + ref.step + "' has no output '" + ref.tensor + "'");
      if (first && (t->second.dtype != first->dtype || !ShapesCompatible(t->second.shape, first->shape))) {
        return Error(key + ".from", "the alternatives differ in datatype or shape");
      }
      if (!first) first = &t->second;
      if (!t->second.maybe_absent) always = true;
      if (why.empty()) why = t->second.why_absent;
    }
    if (!always && !out.optional) {
      return Error(key, "output '" + out.name + "' may be absent (" + why +
                            "): add `optional: true`, or an alternative that is always there (a ?? b)");
    }
    TensorSpec& spec = config_->outputs[i];
    spec.dtype = first->dtype;
    spec.shape = first->shape;
    if (config_->batched()) {
      if (spec.shape.empty() || spec.shape[0] != -1) {
        return Error(key + ".from", "a batched pipeline's outputs must come from batched steps");
      }
      spec.shape.erase(spec.shape.begin());
    }
    if (!spec.labels.empty() && !spec.shape.empty() && spec.shape.back() > 0 &&
        static_cast<int64_t>(spec.labels.size()) != spec.shape.back()) {
      return Error(key + ".labels", std::to_string(spec.labels.size()) + " labels for " +
                                        std::to_string(spec.shape.back()) + " classes (the output's last dimension)");
    }
    if (!spec.labels.empty() && spec.shape.size() > 1) {
      return Error(key + ".labels", "labels need an output of one dimension (the classes)");
    }
    if (!spec.labels.empty() && spec.dtype == DataType::kBytes) {
      return Error(key + ".labels", "a BYTES output has no classes to label");
    }
    return Status::Ok();
  }

  std::string where_;
  ModelConfig* config_;
  const PipelineSpec& spec_;
  InferenceServer* server_;
  std::map<std::string, TensorType> types_;

 public:
  std::vector<std::unique_ptr<RemoteStep>> remotes_;  // by step; null for local steps
};

}  // namespace

ModelLoader::SchedulerFactory PipelineKind(InferenceServer* server) {
  return [server](const ModelSource& source, int64_t version,
                  std::shared_ptr<ModelMetrics> metrics) -> Result<ModelLoader::Built> {
    if (!source.config.pipeline) return Internal(source.yaml_path() + ": not a pipeline");
    auto config = std::make_shared<ModelConfig>(source.config);
    Checker checker(source, config.get(), server);
    RETURN_IF_ERROR(checker.Check());
    ModelLoader::Built built;
    built.config = config;
    built.scheduler =
        std::make_unique<PipelineScheduler>(server, config, version, std::move(metrics), std::move(checker.remotes_));
    return built;
  };
}

}  // namespace berth
