// Loading one model version: from a ModelSource (one read of the model
// directory) to what serves it, built by a scheduler factory chosen by the
// model's kind. Backend models resolve their plugin and model file and run
// on an InstancePool, as transforms do on TransformInstances; other kinds
// (pipelines) register factories of their own.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "backend/backend_registry.h"
#include "common/model_config.h"
#include "metrics/model_metrics.h"
#include "repository/model_source.h"
#include "scheduler/scheduler.h"

namespace berth {

// One loaded version of one model: immutable once built.
struct ModelVersion {
  std::string name;
  int64_t version = 0;
  std::shared_ptr<const ModelConfig> config;
  std::shared_ptr<ModelMetrics> metrics;
  std::unique_ptr<Scheduler> scheduler;
};

// A backend model version's config with everything the load needs.
struct ResolvedModel {
  ModelConfig config;
  int64_t version = 0;
  std::string version_dir;
  std::string model_file;  // "" if the backend needs none
  LoadedBackend* backend = nullptr;
  bool inferred = false;  // inputs and outputs came from the model file, not model.yaml
};

// Picks version `version` of `source` (-1 = the highest) and finds its
// backend (named by model.yaml, or implied by the model file's name) and
// model file; asks the backend for the signature model.yaml leaves out.
Result<ResolvedModel> ResolveModel(const ModelSource& source, int64_t version, BackendRegistry* backends);

// The part of a config a backend sees (include/berth/backend_api.h).
BackendModelConfig ToBackendConfig(const ResolvedModel& model, int instance_index);

class ModelLoader {
 public:
  // What a factory builds for one version.
  struct Built {
    std::shared_ptr<const ModelConfig> config;
    std::unique_ptr<Scheduler> scheduler;
  };
  using SchedulerFactory =
      std::function<Result<Built>(const ModelSource& source, int64_t version, std::shared_ptr<ModelMetrics> metrics)>;
  // Runs a new version's warm-up requests (the server's request path)
  // before it serves; an error keeps the version from serving.
  using WarmUp = std::function<Status(const std::shared_ptr<ModelVersion>& version)>;

  struct Options {
    BackendRegistry* backends = nullptr;  // outlives the loader
    int64_t inline_max_us = 0;            // InstancePool::Options::inline_max_us
    int64_t execution_timeout_ms = 0;     // for models whose config sets none; 0 = no limit
    WarmUp warmup;                        // none: versions serve without warm-up
  };

  // Knows the "backend" and "transform" kinds; more kinds with RegisterKind.
  explicit ModelLoader(Options options);

  // Call before the first Load.
  void RegisterKind(const std::string& kind, SchedulerFactory factory);

  // Loads version `version` (-1 = the highest on disk) of `source`, runs its
  // warm-up, and returns it ready to serve. Thread-safe.
  Result<std::shared_ptr<ModelVersion>> Load(const ModelSource& source, int64_t version) const;

 private:
  Result<Built> LoadBackendModel(const ModelSource& source, int64_t version,
                                 std::shared_ptr<ModelMetrics> metrics) const;
  // An InstancePool of config.instances executors made by `make_instance`
  // (called with 0 .. instances - 1).
  using MakeInstance = std::function<Result<std::unique_ptr<ModelInstance>>(int instance_index)>;
  Result<Built> BuildPool(ModelConfig config, int64_t version, std::shared_ptr<ModelMetrics> metrics,
                          const MakeInstance& make_instance) const;

  Options options_;
  std::map<std::string, SchedulerFactory> kinds_;
};

}  // namespace berth
