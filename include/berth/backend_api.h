// The backend plugin interface.
//
// A backend is a shared library `libberth_backend_<name>.so` that exports
//   extern "C" const berth::BackendPlugin* berth_backend_plugin();
// (use BERTH_DEFINE_BACKEND). The server dlopen()s it by the `backend:` name
// in model.yaml and refuses a plugin whose api_major is newer than its own.
//
// Backends see tensors and configs, never HTTP. Exceptions from ML libraries
// must be caught inside the backend and returned as a Status.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "berth/model_config.h"
#include "berth/status.h"
#include "berth/tensor.h"

namespace berth {

// Bump the major version on any incompatible change to the types below.
inline constexpr int kBackendApiMajor = 1;
inline constexpr int kBackendApiMinor = 1;  // 1.1 added Backend::InferConfig

// What a backend needs to create one executor of one model version.
struct InstanceContext {
  const ModelConfig* config = nullptr;  // outlives the instance
  std::string version_dir;              // DIR/<model>/<version>
  std::string model_file;               // the model file found in version_dir ("" if none)
  int64_t version = 0;
  int instance_index = 0;
};

// One executor. Execute is called one call at a time, but not always from
// the same thread: usually from the instance's executor thread, and, for a
// model measured to take at most `berth serve --inline-max-us` per call, also
// from the HTTP I/O thread that read the request (never two at once).
// Thread-local state in a backend must allow for that.
class ModelInstance {
 public:
  virtual ~ModelInstance() = default;

  // `inputs` follow config->inputs order, shapes include the batch dimension
  // when the model is batched, and have been validated against the config.
  // On success `outputs` holds every configured output in config order.
  virtual Status Execute(std::vector<Tensor>& inputs, std::vector<Tensor>* outputs) = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  // Loads the model for one instance. Called from a loader thread.
  virtual Result<std::unique_ptr<ModelInstance>> CreateInstance(const InstanceContext& ctx) = 0;

  // API 1.1: fills config->inputs, config->outputs (and max_batch_size when
  // it is 0) from what `model_file` says about itself, for a model.yaml that
  // leaves them out. Unimplemented where the file does not say enough.
  virtual Status InferConfig(const std::string& model_file, ModelConfig* config) {
    (void)model_file;
    (void)config;
    return Unimplemented("this backend cannot infer a model's inputs and outputs from its file");
  }
};

struct BackendPlugin {
  int api_major;
  int api_minor;
  const char* name;  // must equal the name in model.yaml
  // File expected in each version directory ("" if none); alternatives are
  // comma-separated in order of preference: "model.json,model.ubj".
  const char* model_file;
  // Creates the backend once per process; the server owns the result.
  Backend* (*create)();
};

}  // namespace berth

extern "C" {
using BerthBackendPluginFn = const berth::BackendPlugin* (*)();
}

#define BERTH_DEFINE_BACKEND(NAME, MODEL_FILE, CLASS)                                                                  \
  extern "C" __attribute__((visibility("default"))) const ::berth::BackendPlugin* berth_backend_plugin() {             \
    static const ::berth::BackendPlugin plugin{::berth::kBackendApiMajor, ::berth::kBackendApiMinor, NAME, MODEL_FILE, \
                                               []() -> ::berth::Backend* { return new CLASS(); }};                     \
    return &plugin;                                                                                                    \
  }
