// A pipeline (model.yaml `kind: pipeline`): steps that are models of the
// same repository, wired by tensor references, served as one model.
//
//   kind: pipeline
//   max_batch_size: 8
//   inputs:  [{name: x, datatype: FP32, shape: [16]}, {name: note, datatype: BYTES, shape: [1], optional: true}]
//   outputs: [{name: probs, from: mlp.probs}, {name: second, from: "rerank.probs ?? mlp.probs"}]
//   limits:  {max_inflight: 512, timeout_ms: 200}
//   steps:
//     - {name: mlp, model: mlp, inputs: {x: $in.x}}
//     - {name: rerank, model: mlp2, version: 3, inputs: {x: $in.x}, timeout_ms: 50, on_error: skip,
//        when: "any(mlp.probs > 0.9)"}
//     - {name: churn, remote: {url: "http://scorer:8000", model: churn}, retries: 2, inputs: {features: $in.f}}
//
// Parsing checks what the file alone decides (names, references, cycles);
// the loader checks the rest against the step models (pipeline/).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace berth {

class Condition;  // common/pipeline_condition.h

// `$in.NAME` (a pipeline input) or `STEP.OUTPUT`.
struct TensorRef {
  std::string step;  // "" for a pipeline input
  std::string tensor;

  bool is_input() const { return step.empty(); }
  std::string ToString() const { return (step.empty() ? "$in" : step) + "." + tensor; }
};

// A step served by another server, over v2 HTTP (binary tensors).
enum class RemoteProtocol { kHttp, kGrpc };

struct RemoteModel {
  std::string url;  // http[s]://host:port (the server's base URL; for gRPC, https = TLS)
  // model.yaml may give the URL as ${NAME} or ${NAME:-DEFAULT}: read from the environment when the file is
  // parsed, so one gateway image serves on a laptop, in compose and in Kubernetes. NAME, or "" for a literal.
  std::string url_variable;
  RemoteProtocol protocol = RemoteProtocol::kHttp;  // v2 binary tensors over HTTP, or KServe v2 gRPC
  std::string model;                                // the model there
  int64_t version = -1;                             // -1: the server's choice
  std::string token_file;                           // a bearer token for it, read at load; "" = none
};

struct PipelineStep {
  std::string name;
  std::string model;     // a model (or pipeline) of this repository; "" for a remote step
  int64_t version = -1;  // -1: its highest ready version, at each request
  std::optional<RemoteModel> remote;
  int retries = 0;  // remote steps: tries again on connection failures and 503, while the deadline allows
  // The step model's inputs, each from a tensor; in the order written.
  std::vector<std::pair<std::string, TensorRef>> inputs;
  // `when:`: the step runs only when it holds (else it is skipped, its outputs absent).
  std::shared_ptr<const Condition> when;
  int64_t timeout_ms = 0;      // 0: what is left of the pipeline's deadline
  bool skip_on_error = false;  // on_error: skip (its outputs become absent) rather than fail
};

// Every tensor a step reads: its inputs, and what its `when` reads.
std::vector<TensorRef> StepReads(const PipelineStep& step);

struct PipelineOutput {
  std::string name;
  std::vector<TensorRef> from;  // "a ?? b": the first one present
  bool optional = false;        // may be absent from the answer
};

struct PipelineSpec {
  std::vector<PipelineStep> steps;  // in an order where every step comes after those it reads from
  std::vector<PipelineOutput> outputs;
  int64_t max_inflight = 1024;  // requests in the pipeline at once; beyond: 503 with Retry-After
  int64_t timeout_ms = 0;       // a deadline for every request; 0 = the client's only

  const PipelineStep* FindStep(const std::string& name) const {
    for (const auto& s : steps)
      if (s.name == name) return &s;
    return nullptr;
  }
};

}  // namespace berth
