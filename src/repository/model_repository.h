// The model repository: DIR/<model>/model.yaml and DIR/<model>/<version>/.
// The state machine of every model and version: it discovers models, loads
// the versions their version_policy selects, reloads what changed on disk
// (poll mode) or what the load/unload API asks for (explicit mode), retires
// replaced versions once their requests finish, and records why a model or
// version is unavailable. Every model loads independently of the others,
// and a version that fails to (re)load never takes down one that is serving.
//
// Reading a model directory is model_source.h; building a version is
// model_loader.h.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "backend/backend_registry.h"
#include "repository/model_loader.h"
#include "repository/model_source.h"

namespace berth {

enum class ModelState { kLoading, kReady, kUnavailable };
std::string_view ModelStateName(ModelState state);

struct VersionSlot {
  ModelState state = ModelState::kLoading;
  std::string reason;
  std::shared_ptr<ModelVersion> loaded;  // what serves (the previous files while a reload fails)
  std::string fingerprint;               // of model.yaml and the version's files when loaded
};

struct ModelEntry {
  std::string name;
  std::string reason;  // a model-level problem: bad model.yaml, no versions, unloaded
  // A pipeline that could not load because a step was unavailable (a remote service not up yet, say):
  // the background thread loads it again, in every model control mode, until it serves or is unloaded.
  bool retry_load = false;
  std::map<int64_t, VersionSlot> versions;

  // READY if any version is; LOADING if one is loading; else UNAVAILABLE.
  ModelState State() const;
  std::vector<int64_t> ReadyVersions() const;
};

struct IndexEntry {
  std::string name;
  std::string version;  // "" when no version could be determined
  ModelState state;
  std::string reason;
};

class ModelRepository {
 public:
  struct Options {
    std::string root;
    std::string backend_dir;           // "" = DefaultBackendDir()
    int64_t inline_max_us = 0;         // InstancePool::Options::inline_max_us for every model
    int64_t execution_timeout_ms = 0;  // for models whose model.yaml sets none; 0 = no limit
    // The repository is the one model directory `root`, named `single_model`
    // (`berth predict`, `berth batch`); "" = root holds model directories.
    std::string single_model;
    // Set: exactly this version of each model serves (-1 = the highest on
    // disk), whatever model.yaml's version_policy says.
    std::optional<int64_t> version;
    ModelLoader::WarmUp warmup;  // see ModelLoader
  };

  // Checks that the root is a readable directory. Loads nothing yet.
  static Result<std::unique_ptr<ModelRepository>> Create(Options options);
  ~ModelRepository();

  // Another kind of model (ModelLoader::RegisterKind); call before loading.
  void RegisterKind(const std::string& kind, ModelLoader::SchedulerFactory factory) {
    loader_.RegisterKind(kind, std::move(factory));
  }

  // Loads every model in the repository, the models a pipeline runs before
  // the pipeline; failures are recorded, never fatal.
  void LoadAll();
  // (Re)loads one model: versions that are new or changed on disk load and
  // then replace the serving ones; versions no longer selected are retired
  // after their in-flight requests finish. NotFound for a name with no
  // directory; the load error otherwise (also recorded for the index).
  Status LoadModel(const std::string& name);
  // Retires every version of a model (they drain first). NotFound if unknown.
  Status UnloadModel(const std::string& name);
  // LoadModel for every directory, UnloadModel for models whose directory went away.
  void Poll();

  // Runs a background thread that executes submitted control tasks, polls
  // every `poll_secs` seconds (0 = never) and retires drained versions.
  void StartBackground(int poll_secs);
  // Queues `task` on the background thread (load/unload requests must not
  // block I/O threads).
  void Submit(std::function<void()> task);

  // The version to serve: `version` or, when -1, the highest ready version.
  // NotFound for unknown models/versions, Unavailable for models that failed.
  Result<std::shared_ptr<ModelVersion>> Get(std::string_view name, int64_t version) const;
  // A copy of one model's entry (NotFound if unknown).
  Result<ModelEntry> Entry(std::string_view name) const;
  std::vector<IndexEntry> Index() const;
  // Every serving version, by model name then version.
  std::vector<std::shared_ptr<ModelVersion>> LoadedVersions() const;

  // Stops the background thread and every scheduler (finishing queued work).
  void StopAll();

 private:
  explicit ModelRepository(Options options);
  std::string ModelDir(const std::string& name) const;
  // `names` (sorted) with every pipeline after the models it runs.
  std::vector<std::string> LoadOrder(const std::vector<std::string>& names,
                                     const std::map<std::string, Result<ModelSource>>& sources) const;
  // LoadModel with the directory already read (nullopt: read it here).
  // `only_if_retrying`: do nothing unless the model is still marked retry_load once the load lock is held
  // (an unload between RetryPipelines' look and the load wins).
  Status LoadModel(const std::string& name, std::optional<Result<ModelSource>> read, bool only_if_retrying = false);
  void Retire(std::shared_ptr<ModelVersion> version);  // REQUIRES(mu_)
  // `s` with the server's own paths (repository root, backend directory) cut
  // out of its message: what clients may see.
  Status Public(const Status& s) const;
  void ReapRetired();
  void BackgroundLoop(int poll_secs);
  // Loads again the pipelines marked retry_load; sets `*delay` until the next try.
  void RetryPipelines(std::chrono::milliseconds* delay);

  Options options_;
  BackendRegistry backends_;
  ModelLoader loader_;
  std::vector<std::string> server_paths_;  // prefixes Public() removes, longest first
  std::mutex load_mu_;                     // serialises LoadModel/UnloadModel/Poll
  mutable std::mutex mu_;
  std::map<std::string, ModelEntry, std::less<>> models_;  // GUARDED_BY(mu_)
  // Replaced or unloaded versions, stopped once nothing else holds them.
  std::vector<std::shared_ptr<ModelVersion>> retired_;  // GUARDED_BY(mu_)

  std::mutex bg_mu_;
  std::condition_variable bg_cv_;
  std::deque<std::function<void()>> tasks_;  // GUARDED_BY(bg_mu_)
  bool bg_stop_ = false;                     // GUARDED_BY(bg_mu_)
  std::thread background_;
};

}  // namespace berth
