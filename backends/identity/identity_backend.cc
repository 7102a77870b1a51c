// The identity backend: output i is input i. No ML library; used to test the
// protocol, the scheduler and the server without one (like Triton's
// query_backend). Parameters: delay_ms (sleep per execution), fail ("true":
// every execution fails).
#include <chrono>
#include <thread>

#include "berth/backend_api.h"

namespace berth {
namespace {

class IdentityInstance final : public ModelInstance {
 public:
  IdentityInstance(int delay_ms, bool fail) : delay_ms_(delay_ms), fail_(fail) {}

  Status Execute(std::vector<Tensor>& inputs, std::vector<Tensor>* outputs) override {
    if (delay_ms_ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms_));
    if (fail_) return Internal("identity backend: execution failed as configured (parameters.fail)");
    outputs->clear();
    for (Tensor& in : inputs) outputs->push_back(std::move(in));
    return Status::Ok();
  }

 private:
  int delay_ms_;
  bool fail_;
};

class IdentityBackend final : public Backend {
 public:
  Result<std::unique_ptr<ModelInstance>> CreateInstance(const BackendModelConfig& ctx) override {
    const BackendModelConfig& c = ctx;
    if (c.outputs.size() > c.inputs.size()) {
      return InvalidArgument("identity backend: model '" + c.name + "' declares " + std::to_string(c.outputs.size()) +
                             " outputs but only " + std::to_string(c.inputs.size()) + " inputs");
    }
    for (size_t i = 0; i < c.outputs.size(); ++i) {
      if (c.outputs[i].dtype != c.inputs[i].dtype) {
        return InvalidArgument("identity backend: output '" + c.outputs[i].name +
                               "' must have the datatype of input '" + c.inputs[i].name + "'");
      }
    }
    int delay_ms = 0;
    bool fail = false;
    for (const auto& [key, value] : c.parameters) {
      if (key == "delay_ms") {
        try {
          delay_ms = std::stoi(value);
        } catch (const std::exception&) {
          delay_ms = -1;
        }
        if (delay_ms < 0 || delay_ms > 60000) {
          return InvalidArgument("model.yaml: parameters.delay_ms: expected milliseconds 0..60000");
        }
      } else if (key == "fail") {
        fail = value == "true";
      } else {
        return InvalidArgument("model.yaml: parameters." + key +
                               ": unknown parameter for the identity backend "
                               "(expected delay_ms, fail)");
      }
    }
    return std::unique_ptr<ModelInstance>(new IdentityInstance(delay_ms, fail));
  }
};

}  // namespace
}  // namespace berth

BERTH_DEFINE_BACKEND("identity", "", berth::IdentityBackend)
