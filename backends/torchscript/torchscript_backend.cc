// The TorchScript backend: LibTorch loads model.pt and runs forward() under
// inference mode. Exceptions from LibTorch stop here and become a Status.
#include <ATen/Parallel.h>
#include <torch/csrc/jit/runtime/jit_exception.h>
#include <torch/script.h>

#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "berth/backend_api.h"

namespace berth {
namespace {

std::optional<at::ScalarType> ToTorch(DataType d) {
  switch (d) {
    case DataType::kBool: return at::kBool;
    case DataType::kUint8: return at::kByte;
    case DataType::kInt8: return at::kChar;
    case DataType::kInt16: return at::kShort;
    case DataType::kInt32: return at::kInt;
    case DataType::kInt64: return at::kLong;
    case DataType::kFp16: return at::kHalf;
    case DataType::kFp32: return at::kFloat;
    case DataType::kFp64: return at::kDouble;
    default: return std::nullopt;  // UINT16/32/64 and BYTES have no LibTorch tensor type
  }
}

std::optional<DataType> FromTorch(at::ScalarType t) {
  switch (t) {
    case at::kBool: return DataType::kBool;
    case at::kByte: return DataType::kUint8;
    case at::kChar: return DataType::kInt8;
    case at::kShort: return DataType::kInt16;
    case at::kInt: return DataType::kInt32;
    case at::kLong: return DataType::kInt64;
    case at::kHalf: return DataType::kFp16;
    case at::kFloat: return DataType::kFp32;
    case at::kDouble: return DataType::kFp64;
    default: return std::nullopt;
  }
}

// LibTorch's messages carry a TorchScript traceback over several lines (and,
// from C++ frames, the build machine's source paths). A client gets one
// line: the exception's own message ("RuntimeError: ..." on the last line of
// the traceback), with any absolute path cut to its file name.
std::string OneLineError(const std::string& what) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start <= what.size()) {
    size_t nl = what.find('\n', start);
    std::string line = what.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    while (!line.empty() && (line.back() == ' ' || line.back() == '\r')) line.pop_back();
    if (!line.empty()) lines.push_back(line);
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  std::string pick = lines.empty() ? std::string("unknown error") : lines.front();
  for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
    size_t colon = it->find("Error: ");
    if (colon != std::string::npos && it->find(' ') > colon) {  // "RuntimeError: ...", "builtins.ValueError: ..."
      pick = *it;
      if (pick.rfind("builtins.", 0) == 0) pick.erase(0, 9);
      break;
    }
  }
  // "/build/x/aten/src/ATen/native/Foo.cpp:12" -> "Foo.cpp:12"
  std::string out;
  for (size_t i = 0; i < pick.size(); ++i) {
    if (pick[i] == '/' && (i == 0 || pick[i - 1] == ' ' || pick[i - 1] == '(' || pick[i - 1] == '"')) {
      size_t end = pick.find_first_of(" \")'\"", i);
      std::string path = pick.substr(i, end == std::string::npos ? std::string::npos : end - i);
      size_t slash = path.rfind('/');
      if (slash != std::string::npos && path.find('/', 1) != std::string::npos) {
        out += path.substr(slash + 1);
        i += path.size() - 1;
        continue;
      }
    }
    out.push_back(pick[i]);
  }
  constexpr size_t kMax = 500;
  if (out.size() > kMax) out = out.substr(0, kMax) + "...";
  return out;
}

class TorchScriptInstance final : public ModelInstance {
 public:
  TorchScriptInstance(torch::jit::Module module, BackendModelConfig config)
      : module_(std::move(module)), config_(std::move(config)) {}

  Status Execute(std::vector<Tensor>& inputs, std::vector<Tensor>* outputs) override {
    try {
      return Run(inputs, outputs);
    } catch (const torch::jit::JITException& e) {
      // A model refuses input it cannot use with `raise ValueError("...")`: the client's error (400).
      auto cls = e.getPythonClassName();
      if (cls && *cls == "builtins.ValueError") {
        auto original = e.getOriginalMsg();
        return InvalidArgument(OneLineError(original ? *original : std::string(e.what())));
      }
      return Internal("TorchScript error: " + OneLineError(e.what()));
    } catch (const c10::Error& e) {
      return Internal("TorchScript error: " + OneLineError(e.what_without_backtrace()));
    } catch (const std::exception& e) {
      return Internal("TorchScript error: " + OneLineError(e.what()));
    }
  }

 private:
  Status Run(std::vector<Tensor>& inputs, std::vector<Tensor>* outputs) {
    // Size LibTorch's intra-op pool once per calling thread (the executor, or an HTTP thread running a fast
    // model inline; see backend_api.h).
    thread_local int threads_set = 0;
    if (threads_set != config_.threads) {
      at::set_num_threads(config_.threads);
      threads_set = config_.threads;
    }
    c10::InferenceMode guard;
    std::vector<c10::IValue> args;
    args.reserve(inputs.size());
    for (Tensor& in : inputs) {
      args.emplace_back(torch::from_blob(in.data.data(), in.shape, torch::TensorOptions().dtype(*ToTorch(in.dtype))));
    }
    c10::IValue result = module_.forward(std::move(args));

    std::vector<at::Tensor> produced(config_.outputs.size());
    if (result.isTensor()) {
      if (produced.size() != 1) return Mismatch("a single tensor");
      produced[0] = result.toTensor();
    } else if (result.isTuple() || result.isTensorList() || result.isList()) {
      std::vector<c10::IValue> items;
      if (result.isTuple()) {
        items = result.toTupleRef().elements().vec();
      } else {
        for (const c10::IValue& v : result.toListRef()) items.push_back(v);
      }
      if (items.size() != produced.size()) return Mismatch(std::to_string(items.size()) + " values");
      for (size_t i = 0; i < items.size(); ++i) {
        if (!items[i].isTensor()) return Internal("forward() result item " + std::to_string(i) + " is not a tensor");
        produced[i] = items[i].toTensor();
      }
    } else if (result.isGenericDict()) {
      auto dict = result.toGenericDict();
      for (size_t i = 0; i < produced.size(); ++i) {
        const std::string& name = config_.outputs[i].name;
        auto it = dict.find(c10::IValue(name));
        if (it == dict.end() || !it->value().isTensor()) {
          return Internal("forward() returned a dict without a tensor named '" + name + "'");
        }
        produced[i] = it->value().toTensor();
      }
    } else {
      return Internal("forward() returned " + result.tagKind() + "; expected a tensor, tuple, list or dict of tensors");
    }

    outputs->resize(produced.size());
    for (size_t i = 0; i < produced.size(); ++i) {
      at::Tensor t = produced[i].contiguous();
      auto dtype = FromTorch(t.scalar_type());
      if (!dtype) {
        return Internal("output '" + config_.outputs[i].name + "' has unsupported tensor type " +
                        std::string(c10::toString(t.scalar_type())));
      }
      Tensor& out = (*outputs)[i];
      out.name = config_.outputs[i].name;
      out.dtype = *dtype;
      out.shape.assign(t.sizes().begin(), t.sizes().end());
      size_t bytes = t.numel() * t.element_size();
      out.data.resize(bytes);
      if (bytes) std::memcpy(out.data.data(), t.data_ptr(), bytes);
    }
    return Status::Ok();
  }

  Status Mismatch(const std::string& got) const {
    return Internal("forward() returned " + got + " but model.yaml declares " + std::to_string(config_.outputs.size()) +
                    " outputs");
  }

  torch::jit::Module module_;
  const BackendModelConfig config_;
};

class TorchScriptBackend final : public Backend {
 public:
  Result<std::unique_ptr<ModelInstance>> CreateInstance(const BackendModelConfig& ctx) override {
    const BackendModelConfig& c = ctx;
    for (const auto* specs : {&c.inputs, &c.outputs}) {
      for (const BackendTensorSpec& s : *specs) {
        if (!ToTorch(s.dtype)) {
          return InvalidArgument("model.yaml: '" + s.name + "': datatype " + std::string(DataTypeName(s.dtype)) +
                                 " is not supported by the torchscript backend");
        }
      }
    }
    if (!c.parameters.empty()) {
      return InvalidArgument("model.yaml: parameters." + c.parameters.begin()->first +
                             ": the torchscript backend takes no parameters");
    }
    try {
      c10::InferenceMode guard;
      torch::jit::Module module = torch::jit::load(ctx.model_file, torch::kCPU);
      module.eval();
      return std::unique_ptr<ModelInstance>(new TorchScriptInstance(std::move(module), ctx));
    } catch (const c10::Error& e) {
      return InvalidArgument(ctx.model_file +
                             ": not a loadable TorchScript model: " + OneLineError(e.what_without_backtrace()));
    } catch (const std::exception& e) {
      return InvalidArgument(ctx.model_file + ": not a loadable TorchScript model: " + OneLineError(e.what()));
    }
  }
};

}  // namespace
}  // namespace berth

BERTH_DEFINE_BACKEND("torchscript", "model.pt", berth::TorchScriptBackend)
