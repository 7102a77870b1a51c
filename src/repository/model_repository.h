// The model repository: DIR/<model>/model.yaml and DIR/<model>/<version>/.
// Discovers models, loads the highest version of each, and records why a
// model is unavailable. Every model loads independently of the others.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backend/backend_registry.h"
#include "berth/model_config.h"
#include "metrics/model_metrics.h"
#include "scheduler/scheduler.h"

namespace berth {

enum class ModelState { kLoading, kReady, kUnavailable };
std::string_view ModelStateName(ModelState state);

// One loaded (or failed) version of one model.
struct ModelVersion {
  std::string name;
  int64_t version = 0;
  std::shared_ptr<const ModelConfig> config;
  std::shared_ptr<ModelMetrics> metrics;
  std::unique_ptr<Scheduler> scheduler;  // set when ready
};

struct ModelEntry {
  std::string name;
  ModelState state = ModelState::kLoading;
  std::string reason;             // why it is unavailable
  std::vector<int64_t> versions;  // loaded versions, ascending
  std::shared_ptr<const ModelConfig> config;
  std::map<int64_t, std::shared_ptr<ModelVersion>> loaded;
};

struct IndexEntry {
  std::string name;
  std::string version;  // "" when no version could be determined
  ModelState state;
  std::string reason;
};

// True for names we accept as model directory names: [A-Za-z0-9_.-]+, not "." or "..".
bool IsValidModelName(std::string_view name);

// Loads the model in `model_dir` (version -1 = the highest). Used by the
// repository and by `berth predict`.
Result<std::shared_ptr<ModelVersion>> LoadModelVersion(const std::string& model_dir, const std::string& name,
                                                       int64_t version, BackendRegistry* backends);

class ModelRepository {
 public:
  struct Options {
    std::string root;
    std::string backend_dir;
  };

  // Checks that the root is a readable directory. Loads nothing yet.
  static Result<std::unique_ptr<ModelRepository>> Create(const Options& options);
  ~ModelRepository();

  // Discovers and loads every model; failures are recorded, never fatal.
  void LoadAll();
  bool loaded() const { return loaded_.load(); }

  // The version to serve: `version` or, when -1, the highest ready version.
  // NotFound for unknown models/versions, Unavailable for models that failed.
  Result<std::shared_ptr<ModelVersion>> Get(std::string_view name, int64_t version) const;

  // A copy of one model's entry (NotFound if unknown).
  Result<ModelEntry> Entry(std::string_view name) const;

  std::vector<IndexEntry> Index() const;

  // Every loaded version, by model name then version.
  std::vector<std::shared_ptr<ModelVersion>> LoadedVersions() const;

  // Stops every scheduler (finishing queued work).
  void StopAll();

 private:
  explicit ModelRepository(Options options);
  ModelEntry LoadOne(const std::string& name);

  Options options_;
  BackendRegistry backends_;
  std::atomic<bool> loaded_{false};
  mutable std::mutex mu_;
  std::map<std::string, ModelEntry, std::less<>> models_;  // GUARDED_BY(mu_)
};

}  // namespace berth
