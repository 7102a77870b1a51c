#include "request/validate.h"

#include <algorithm>

#include "request/classification.h"

namespace berth {
namespace {

std::string ExpectedNames(const std::vector<TensorSpec>& specs) {
  if (specs.empty()) return "no inputs";
  std::string s;
  for (const auto& spec : specs) s += (s.empty() ? "" : ", ") + spec.name;
  return s;
}

// Checks `shape` against the config's full shape (batch dim first when batched).
Status CheckShape(const ModelConfig& config, const TensorSpec& spec, const std::vector<int64_t>& shape,
                  const std::string& what) {
  std::vector<int64_t> full = config.FullShape(spec);
  if (shape.size() != full.size()) {
    return InvalidArgument(what + " '" + spec.name + "': shape " + ShapeToString(shape) + " has " +
                           std::to_string(shape.size()) + " dimensions, the model expects " +
                           std::to_string(full.size()) + " " + ShapeToString(full));
  }
  for (size_t i = 0; i < full.size(); ++i) {
    if (full[i] != -1 && full[i] != shape[i]) {
      return InvalidArgument(what + " '" + spec.name + "': shape " + ShapeToString(shape) + " does not match " +
                             ShapeToString(full) + " at dimension " + std::to_string(i));
    }
  }
  return Status::Ok();
}

}  // namespace

Status ValidateRequest(const ModelConfig& config, InferRequest* request) {
  for (const Tensor& t : request->inputs) {
    if (!config.FindInput(t.name)) {
      return InvalidArgument("unknown input '" + t.name + "' (model '" + config.name +
                             "' expects: " + ExpectedNames(config.inputs) + ")");
    }
  }
  std::vector<Tensor> ordered;
  ordered.reserve(config.inputs.size());
  request->batch_size = 1;
  for (const TensorSpec& spec : config.inputs) {
    auto it = std::find_if(request->inputs.begin(), request->inputs.end(),
                           [&](const Tensor& t) { return t.name == spec.name; });
    if (it == request->inputs.end()) {
      if (spec.optional) continue;  // a pipeline's optional input: the steps that read it are skipped
      return InvalidArgument("missing input '" + spec.name + "' (model '" + config.name +
                             "' expects: " + ExpectedNames(config.inputs) + ")");
    }
    if (it->dtype != spec.dtype) {
      return InvalidArgument("input '" + spec.name + "': datatype " + std::string(DataTypeName(it->dtype)) +
                             " does not match the model's " + std::string(DataTypeName(spec.dtype)));
    }
    RETURN_IF_ERROR(CheckShape(config, spec, it->shape, "input"));
    if (config.batched()) {
      int64_t b = it->shape[0];
      if (b < 1 || b > config.max_batch_size) {
        return InvalidArgument("input '" + spec.name + "': batch size " + std::to_string(b) + " is outside 1.." +
                               std::to_string(config.max_batch_size) + " (max_batch_size of model '" + config.name +
                               "')");
      }
      if (ordered.empty()) {
        request->batch_size = b;
      } else if (b != request->batch_size) {
        return InvalidArgument("input '" + spec.name + "': batch size " + std::to_string(b) + " differs from input '" +
                               ordered[0].name + "' (" + std::to_string(request->batch_size) + ")");
      }
    }
    ordered.push_back(std::move(*it));
  }
  request->inputs = std::move(ordered);

  for (size_t i = 0; i < request->outputs.size(); ++i) {
    const std::string& name = request->outputs[i].name;
    if (!config.FindOutput(name)) {
      return InvalidArgument("outputs[" + std::to_string(i) + "]: unknown output '" + name + "' (model '" +
                             config.name + "' has: " + ExpectedNames(config.outputs) + ")");
    }
    if (request->outputs[i].classification > 0 && config.FindOutput(name)->dtype == DataType::kBytes) {
      return InvalidArgument("outputs[" + std::to_string(i) + "]: output '" + name +
                             "' is BYTES: parameters.classification needs numeric classes");
    }
    for (size_t j = 0; j < i; ++j) {
      if (request->outputs[j].name == name) {
        return InvalidArgument("outputs[" + std::to_string(i) + "]: output '" + name + "' requested twice");
      }
    }
  }
  return Status::Ok();
}

Status ValidateOutputs(const ModelConfig& config, int64_t batch_size, const std::vector<Tensor>& outputs) {
  if (outputs.size() != config.outputs.size()) {
    return Internal("model '" + config.name + "' produced " + std::to_string(outputs.size()) +
                    " outputs, model.yaml declares " + std::to_string(config.outputs.size()));
  }
  for (size_t i = 0; i < outputs.size(); ++i) {
    const TensorSpec& spec = config.outputs[i];
    const Tensor& t = outputs[i];
    std::string where = "model '" + config.name + "' output '" + spec.name + "'";
    if (t.dtype != spec.dtype) {
      return Internal(where + ": produced " + std::string(DataTypeName(t.dtype)) + ", model.yaml declares " +
                      std::string(DataTypeName(spec.dtype)));
    }
    Status s = CheckShape(config, spec, t.shape, "output");
    if (!s.ok()) return Internal("model '" + config.name + "' produced " + s.message());
    if (config.batched() && t.shape[0] != batch_size) {
      return Internal(where + ": produced " + std::to_string(t.shape[0]) + " rows for a batch of " +
                      std::to_string(batch_size));
    }
    auto count = ElementCount(t.shape);
    if (!count.ok()) return Internal(where + ": " + count.status().message());
    if (t.dtype == DataType::kBytes) {
      auto elems = SplitBytesElements(t.data.data(), t.data.size());
      if (!elems.ok() || static_cast<int64_t>(elems->size()) != *count) {
        return Internal(where + ": BYTES data does not match shape " + ShapeToString(t.shape));
      }
    } else if (t.data.size() != static_cast<size_t>(*count) * DataTypeSize(t.dtype)) {
      return Internal(where + ": " + std::to_string(t.data.size()) + " bytes do not match shape " +
                      ShapeToString(t.shape));
    }
  }
  return Status::Ok();
}

InferResponse MakeResponse(const ModelConfig& config, int64_t version, InferRequest& request,
                           std::vector<Tensor>&& outputs) {
  for (size_t i = 0; i < outputs.size() && i < config.outputs.size(); ++i) outputs[i].name = config.outputs[i].name;
  InferResponse r;
  r.model_name = config.name;
  r.model_version = version;
  r.id = std::move(request.id);
  r.has_id = request.has_id;
  if (request.outputs.empty()) {
    r.outputs = std::move(outputs);
    r.binary.assign(r.outputs.size(), request.binary_output);
  } else {
    for (const RequestedOutput& ro : request.outputs) {
      for (size_t i = 0; i < config.outputs.size(); ++i) {
        if (config.outputs[i].name == ro.name) {
          r.outputs.push_back(ro.classification > 0
                                  ? Classify(outputs[i], config.outputs[i], config.batched(), ro.classification)
                                  : std::move(outputs[i]));
          r.binary.push_back(ro.binary);
        }
      }
    }
  }
  return r;
}

}  // namespace berth
