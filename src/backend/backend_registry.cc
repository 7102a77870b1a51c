#include "backend/backend_registry.h"

#include <dlfcn.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <filesystem>

namespace berth {

std::string DefaultBackendDir() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "lib/berth/backends";
  return (exe.parent_path().parent_path() / "lib" / "berth" / "backends").string();
}

std::string BackendRegistry::PluginPath(const std::string& name) const {
  return dir_ + "/libberth_backend_" + name + ".so";
}

Result<LoadedBackend*> BackendRegistry::Get(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = loaded_.find(name); it != loaded_.end()) return it->second.get();

  std::string path = PluginPath(name);
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    return NotFound("backend '" + name + "': no plugin at " + path + " (is the backend built and installed?)");
  }
  // Plugins are never dlclose()d: ML libraries register global state that does not survive unloading.
  // Debian's libsentencepiece carries its own protobuf (3.14) while berth's gRPC links the system one
  // (3.21): its plugin binds its own symbols first (RTLD_DEEPBIND), or protobuf's initialisation crashes.
  // AddressSanitizer cannot run such a plugin; sanitizer builds leave it out.
  const int deep_bind = name == "sentencepiece" ? RTLD_DEEPBIND : 0;
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | deep_bind);
  if (!handle) {
    const char* err = dlerror();
    return FailedPrecondition("backend '" + name + "': cannot load " + path + ": " + (err ? err : "unknown error"));
  }
  auto entry = reinterpret_cast<BerthBackendPluginFn>(dlsym(handle, "berth_backend_plugin"));
  if (!entry) {
    return FailedPrecondition("backend '" + name + "': " + path + " does not export berth_backend_plugin()");
  }
  const BackendPlugin* plugin = entry();
  if (!plugin) return FailedPrecondition("backend '" + name + "': " + path + " returned no plugin description");
  std::string built_for = std::to_string(plugin->api_major) + "." + std::to_string(plugin->api_minor);
  std::string ours = std::to_string(kBackendApiMajor) + "." + std::to_string(kBackendApiMinor);
  if (plugin->api_major > kBackendApiMajor) {
    return FailedPrecondition("backend '" + name + "': " + path + " was built for backend API " + built_for +
                              ", newer than this berth's " + ours + "; upgrade berth or rebuild the plugin");
  }
  if (plugin->api_major < kBackendApiMajor) {
    return FailedPrecondition("backend '" + name + "': " + path + " was built for backend API " + built_for +
                              ", older than this berth's " + ours + "; rebuild the plugin");
  }
  if (!plugin->name || name != plugin->name) {
    return FailedPrecondition("backend '" + name + "': " + path + " calls itself '" +
                              (plugin->name ? plugin->name : "") + "'");
  }
  auto loaded = std::make_unique<LoadedBackend>();
  loaded->plugin = plugin;
  loaded->path = path;
  loaded->backend.reset(plugin->create());
  if (!loaded->backend) return FailedPrecondition("backend '" + name + "': plugin failed to initialise");
  spdlog::info("backend '{}' loaded from {} (API {})", name, path, built_for);
  LoadedBackend* out = loaded.get();
  loaded_.emplace(name, std::move(loaded));
  return out;
}

}  // namespace berth
