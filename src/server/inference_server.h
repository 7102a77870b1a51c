// InferenceServer: the one API that every front end (HTTP today; gRPC, TF
// Serving REST and the web page next) and every internal caller (`berth
// predict`, `berth batch`, warm-up, pipeline steps) goes through. It owns the
// request policy so that no caller repeats it: looking the model up,
// validation, deadlines, whether a request may run inline on its caller's
// thread, request metrics, and keeping a model version alive until its
// requests have finished. Front ends only translate their protocol to
// InferRequest and back (Triton's TRITONSERVER_ServerInferAsync plays this
// part for its front ends and ensemble steps).
//
// Thread-safe: every method may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "berth/status.h"
#include "metrics/model_metrics.h"
#include "repository/model_repository.h"
#include "request/infer_request.h"
#include "scheduler/scheduler.h"

namespace berth {

struct InferOptions {
  // The caller is an I/O thread that would answer sooner by running a
  // measured-fast model on its own thread (InstancePool, "inline
  // execution"). The server decides: only while the server is nearly idle.
  bool allow_inline = false;
  // Requests the calling front end has read and not yet answered, this one
  // included (HTTP counts until the response is written, which keeps the
  // server "busy" a little longer than its own count does: measured, inline
  // execution under load costs the I/O thread more than it saves). -1 = unknown.
  int64_t caller_in_flight = -1;
  // A pipeline step: part of a request the server already counts as in
  // flight, so it does not count twice towards the inline decision.
  bool nested = false;
  // When the request arrived: the deadline and the duration metric count
  // from here. Unset: when InferAsync is called.
  std::optional<std::chrono::steady_clock::time_point> received;
};

struct TensorMetadata {
  std::string name;
  DataType dtype = DataType::kFp32;
  std::vector<int64_t> shape;  // as clients send it: a leading -1 when the model is batched
  bool optional = false;       // a pipeline's input the request may leave out
};

// What the v2 model metadata endpoint (and its gRPC twin) answers.
struct ModelMetadata {
  std::string name;
  std::vector<int64_t> versions;  // the ready ones, ascending
  std::string platform;           // the backend
  std::vector<TensorMetadata> inputs;
  std::vector<TensorMetadata> outputs;
};

// A model version that serves, as a caller that sends it requests sees it.
struct ServedModel {
  std::string name;
  int64_t version = 0;
  std::shared_ptr<const ModelConfig> config;
  std::shared_ptr<const ModelMetrics> metrics;
};

class InferenceServer {
 public:
  struct Options {
    ModelRepository::Options repository;  // its warm-up hook is the server's own
    int64_t default_timeout_us = 0;       // queue timeout for requests that set none; 0 = none
    // Inline execution is allowed while at most this many requests are in
    // flight (one per I/O thread: under load the I/O threads are better spent
    // reading and writing), counting the server's own and what the calling
    // front end reports, whichever is more. 0 = never.
    int64_t inline_slots = 0;
  };

  // Opens the repository (loads nothing yet).
  static Result<std::unique_ptr<InferenceServer>> Create(Options options);
  ~InferenceServer();  // Stop()

  // --- inference

  // Runs `request` on `model` (`version` -1 = the highest ready one) and
  // calls `done` exactly once: on an executor thread, or on this thread when
  // the request is refused at once (unknown model, invalid request, full
  // queue) or runs inline. Never blocks otherwise. The request is validated
  // and reordered into the model's input order here. A front end passes a
  // request it could not decode as its error: the model is looked up first
  // (an unknown model is a 404 whatever the body), and the failure counted.
  void InferAsync(std::string_view model, int64_t version, Result<std::unique_ptr<InferRequest>> request,
                  InferCompletion done, const InferOptions& options = {});
  // InferAsync, waiting for the answer (CLI, batch files, tests).
  Result<InferResponse> Infer(std::string_view model, int64_t version, std::unique_ptr<InferRequest> request);

  // Requests accepted and not yet answered, over every caller.
  int64_t in_flight() const { return in_flight_.load(std::memory_order_relaxed); }

  // --- health and models

  // Ok once the initial load finished and until draining starts; else Unavailable.
  Status Ready() const;
  Result<ModelMetadata> Metadata(std::string_view model, int64_t version) const;
  // Ok if the version (or, for -1, any version) serves; the reason otherwise.
  Status ModelReady(std::string_view model, int64_t version) const;
  // The version `version` (-1 = the highest ready) resolves to now.
  Result<ServedModel> Resolve(std::string_view model, int64_t version) const;
  std::vector<IndexEntry> Index() const;
  // Every serving version's metrics (Prometheus).
  std::vector<VersionMetrics> MetricsSnapshot() const;
  // The versions whose statistics a client asked for (Triton's statistics
  // extension): every serving version for "", every ready version of
  // `model` for -1, or exactly one.
  Result<std::vector<ServedModel>> Statistics(std::string_view model, int64_t version) const;

  // --- model control: load/unload take seconds, so they run on the
  // repository's control thread and `done` runs there. LoadModel blocks.

  void LoadModelAsync(std::string name, std::function<void(Status)> done);
  void UnloadModelAsync(std::string name, std::function<void(Status)> done);
  Status LoadModel(const std::string& name);

  // --- kinds of model

  // Models of `kind` (model.yaml) load with `factory`: pipelines (pipeline/),
  // whose steps call back into this server. Call before loading.
  void RegisterKind(const std::string& kind, ModelLoader::SchedulerFactory factory) {
    repository_->RegisterKind(kind, std::move(factory));
  }

  // --- lifecycle (driven by app/)

  // Loads every model of the repository (or, in explicit mode, none: the
  // caller loads what --load-model names), then marks the server loaded.
  void LoadAll();
  void MarkLoaded() { loaded_ = true; }
  bool loaded() const { return loaded_.load(); }
  // Starts the control thread: submitted loads, polling every `poll_secs`
  // seconds (0 = never), retiring drained versions.
  void StartBackground(int poll_secs);
  // From now on Ready() is Unavailable; requests already accepted finish.
  void BeginDrain() { draining_ = true; }
  bool draining() const { return draining_.load(); }
  // The one draining flag, read by every front end on each request.
  const std::atomic<bool>& draining_flag() const { return draining_; }
  // Stops the control thread and every model (finishing queued requests).
  void Stop();

 private:
  explicit InferenceServer(Options options);
  // The request path after the lookup: validate, deadline, count, enqueue.
  void Run(std::shared_ptr<ModelVersion> version, std::unique_ptr<InferRequest> request, InferCompletion done,
           const InferOptions& options, bool count);
  // Runs a new version's warm-up requests through Run before it serves.
  Status WarmUp(const std::shared_ptr<ModelVersion>& version);

  Options options_;
  std::unique_ptr<ModelRepository> repository_;
  std::atomic<int64_t> in_flight_{0};
  std::atomic<bool> loaded_{false};
  std::atomic<bool> draining_{false};
};

}  // namespace berth
