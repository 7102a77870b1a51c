// The backend plugin interface.
//
// A backend is a shared library `libberth_backend_<name>.so` that exports
//   extern "C" const berth::BackendPlugin* berth_backend_plugin();
// (use BERTH_DEFINE_BACKEND). The server dlopen()s it by the `backend:` name
// in model.yaml and refuses a plugin built for another api_major.
//
// Backends see tensors and the narrow config below, never HTTP, and never
// the server's own configuration (batching, queues, version policy,
// warm-up, batch-file columns): those can change without touching this
// boundary. Exceptions from ML libraries must be caught inside the backend
// and returned as a Status.
//
// Every type here crosses the boundary as C++ objects, so their layout is
// part of the API: backend_api_test.cc pins the size and field offsets of
// each one against kBackendApiMajor, and fails when a type changes without
// a bump.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "berth/status.h"
#include "berth/tensor.h"

namespace berth {

// Bump the major version on any change to the types below (fields added,
// removed, reordered or retyped); the minor version for added virtual
// functions at the end of Backend with a default implementation.
// 2.0: the narrow BackendModelConfig replaced the server's ModelConfig.
inline constexpr int kBackendApiMajor = 2;
inline constexpr int kBackendApiMinor = 0;

// An input or output of the model.
struct BackendTensorSpec {
  std::string name;
  DataType dtype = DataType::kFp32;
  // Excludes the batch dimension when max_batch_size > 0; -1 = any size.
  std::vector<int64_t> shape;
};

// What a backend needs to create one executor of one model version.
struct BackendModelConfig {
  std::string name;            // the model's name
  int64_t max_batch_size = 0;  // 0 = no batch dimension; else inputs arrive as [N, ...spec] with N <= this
  std::vector<BackendTensorSpec> inputs;
  std::vector<BackendTensorSpec> outputs;
  int threads = 1;                                // intra-op threads this executor may use
  std::map<std::string, std::string> parameters;  // model.yaml `parameters`, backend-specific
  std::string model_dir;                          // DIR/<model> (holds model.yaml)
  std::string version_dir;                        // DIR/<model>/<version>
  std::string model_file;                         // the model file found in version_dir ("" if none)
  int64_t version = 0;
  int instance_index = 0;  // 0 .. instances - 1

  bool batched() const { return max_batch_size > 0; }
};

// What a model file says about its signature (Backend::InferSignature).
struct BackendSignature {
  int64_t max_batch_size = 0;  // in: model.yaml's (0 if unset); out: what the backend chose
  std::vector<BackendTensorSpec> inputs;
  std::vector<BackendTensorSpec> outputs;
};

// One executor. Execute is called one call at a time, but not always from
// the same thread: usually from the instance's executor thread, and, for a
// model measured to take at most `berth serve --inline-max-us` per call, also
// from the HTTP I/O thread that read the request (never two at once).
// Thread-local state in a backend must allow for that.
class ModelInstance {
 public:
  virtual ~ModelInstance() = default;

  // `inputs` follow the config's inputs order, shapes include the batch
  // dimension when the model is batched, and have been validated against
  // the config. On success `outputs` holds every configured output in order.
  virtual Status Execute(std::vector<Tensor>& inputs, std::vector<Tensor>* outputs) = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  // Loads the model for one instance. Called from a loader thread; `config`
  // lives only for the call (copy what the instance keeps).
  virtual Result<std::unique_ptr<ModelInstance>> CreateInstance(const BackendModelConfig& config) = 0;

  // Fills `signature` from what `model_file` says about itself, for a
  // model.yaml that leaves inputs and outputs out. Unimplemented where the
  // file does not say enough.
  virtual Status InferSignature(const std::string& model_file, BackendSignature* signature) {
    (void)model_file;
    (void)signature;
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
