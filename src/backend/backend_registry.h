// Finds backend plugins by name and loads each at most once per process.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "berth/backend_api.h"
#include "berth/status.h"

namespace berth {

// Where plugins are when no directory is given: ../lib/berth/backends next
// to the running binary (the layout of the build tree and of an install).
std::string DefaultBackendDir();

struct LoadedBackend {
  const BackendPlugin* plugin = nullptr;
  std::unique_ptr<Backend> backend;
  std::string path;
};

class BackendRegistry {
 public:
  // `dir` holds libberth_backend_<name>.so files; "" = DefaultBackendDir().
  explicit BackendRegistry(std::string dir) : dir_(dir.empty() ? DefaultBackendDir() : std::move(dir)) {}
  const std::string& dir() const { return dir_; }

  // Returns the backend named `name`, loading its plugin on first use.
  // NotFound if there is no plugin file; FailedPrecondition if it cannot be
  // loaded, lacks the entry point, names another backend, or was built for
  // an incompatible backend API major version. Thread-safe. The pointer
  // stays valid for the registry's lifetime (plugins are never unloaded).
  Result<LoadedBackend*> Get(const std::string& name);

  // The plugin file for `name`.
  std::string PluginPath(const std::string& name) const;

 private:
  std::string dir_;
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<LoadedBackend>> loaded_;  // GUARDED_BY(mu_)
};

}  // namespace berth
