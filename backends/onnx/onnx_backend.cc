// The ONNX backend: OpenCV DNN imports model.onnx and runs it on the CPU.
// cv::Exception and std::exception stop here and become a Status.
//
// Threads. OpenCV's thread pool (TBB in Debian's build) is process-wide, and
// cv::setNumThreads tears the pool down and rebuilds it, which is not safe
// while another thread is inside a net. So the pool is sized exactly once, when
// the first ONNX instance of the process loads (before any net has run), from
// that model's `threads`; ONNX models loaded later share that pool whatever
// their own `threads` says. OpenCV also runs only one parallel region at a time
// per process (a concurrent one runs serially on its caller), so `threads` > 1
// pays off mainly for a single instance. With the default `threads: 1` every
// executor runs OpenCV serially on its own thread, which is what `threads`
// promises.
//
// Validation at load, so that a mismatch fails the load rather than requests:
// every model.yaml input must be a graph input (the ONNX importer registers
// them as the outputs of OpenCV's input layer, layer 0), every model.yaml
// output a graph output (OpenCV's unconnected outputs), and when every input
// dimension is known a dry run on zeros must produce outputs of the declared
// shapes, which also catches graph inputs model.yaml does not declare and a
// batch dimension that OpenCV cannot vary.
#include <algorithm>
#include <climits>
#include <cstring>
#include <exception>
#include <fstream>
#include <mutex>
#include <opencv2/core.hpp>
#include <opencv2/core/version.hpp>
#include <opencv2/dnn.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "berth/backend_api.h"
#include "common/file_util.h"
#include "onnx_signature.h"

namespace berth {
namespace {

constexpr const char* kOpenCv = "OpenCV DNN " CV_VERSION;

// Text between `open` and the next `close` after it in `s`, or "".
std::string Between(const std::string& s, const std::string& open, char close) {
  size_t start = s.find(open);
  if (start == std::string::npos) return "";
  start += open.size();
  size_t end = s.find(close, start);
  return end == std::string::npos ? "" : s.substr(start, end - start);
}

// OpenCV messages nest one another over several lines ("> ..."); a Status is
// one line, so collapse the whitespace and drop the quoting markers.
std::string OneLine(const std::string& text) {
  std::string out;
  bool space = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '>' && (i == 0 || text[i - 1] == '\n')) continue;
    if (c == '\n' || c == '\r' || c == '\t' || c == ' ') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

// The importer names its layers "onnx_node!<node name>"; users know the node name.
std::string NodeName(std::string layer) {
  const std::string prefix = "onnx_node!";
  if (layer.compare(0, prefix.size(), prefix) == 0) layer.erase(0, prefix.size());
  return layer;
}

// Turns an import failure into a message that names what the user must change.
Status ImportError(const std::string& file, const cv::Exception& e) {
  const std::string what = e.what();
  // OpenCV has no layer for the operator: "Can't create layer "onnx_node!/Det" of type "Det"".
  std::string op = Between(what, "of type \"", '"');
  if (what.find("Can't create layer") != std::string::npos && !op.empty()) {
    std::string node = NodeName(Between(what, "Can't create layer \"", '"'));
    return InvalidArgument(file + ": ONNX operator '" + op + "'" + (node.empty() ? "" : " (node '" + node + "')") +
                           " is not supported by " + kOpenCv);
  }
  // Any other failure inside one node: "Node [Op@domain]:(onnx_node!name) parse error: ...".
  std::string node_op = Between(what, "Node [", ']');
  if (!node_op.empty()) {
    std::string node = NodeName(Between(what, "]:(", ')'));
    size_t cause = what.find("parse error:");
    std::string inner = cause == std::string::npos ? what : what.substr(cause + std::strlen("parse error:"));
    // Drop the "OpenCV(4.6.0) ./modules/...cpp:2846: error: (-215:Assertion failed) " preamble.
    size_t code = inner.find("error: (");
    size_t code_end = code == std::string::npos ? code : inner.find(") ", code);
    if (code_end != std::string::npos) inner.erase(0, code_end + 2);
    // The one such failure common in exports with a dynamic batch: x.view(x.size(0), -1).
    if (inner.find("!isDynamicShape") != std::string::npos) {
      inner +=
          "; OpenCV cannot take the Shape of a tensor with a dynamic dimension (export with torch.flatten, or "
          "without dynamic_axes)";
    }
    return InvalidArgument(file + ": " + kOpenCv + " cannot import ONNX operator '" +
                           node_op.substr(0, node_op.find('@')) + "' (node '" + node + "'): " + OneLine(inner));
  }
  if (what.find("Failed to parse ONNX model") != std::string::npos) {
    return InvalidArgument(file + ": not a valid ONNX model (" + kOpenCv + " could not parse it as an ONNX protobuf)");
  }
  return InvalidArgument(file + ": " + kOpenCv + " cannot load the model: " + OneLine(e.err) + " (in " + e.func + ")");
}

std::string Describe(const cv::Exception& e) {
  std::string text = std::string(kOpenCv) + ": " + OneLine(e.err) + (e.func.empty() ? "" : " (in " + e.func + ")");
  // What OpenCV says when a graph input was never set.
  if (e.err == "!inp.empty()") {
    text += ": a graph input was not fed; does model.yaml declare every input of the ONNX graph?";
  }
  return text;
}

std::string Join(const std::vector<cv::String>& names) {
  std::string out;
  for (const cv::String& n : names) out += (out.empty() ? "'" : ", '") + n + "'";
  return out.empty() ? "none" : out;
}

// `spec`'s shape with `batch` in front when the model is batched. (Not
// ModelConfig::FullShape: that lives in the server, which plugins do not link.)
std::vector<int64_t> WithBatch(const BackendModelConfig& config, const BackendTensorSpec& spec, int64_t batch) {
  std::vector<int64_t> shape;
  if (config.batched()) shape.push_back(batch);
  shape.insert(shape.end(), spec.shape.begin(), spec.shape.end());
  return shape;
}

// The row-major dims of `m`. OpenCV has no 1-D or 0-D Mat (a vector of N is
// N x 1), so a rank that differs from model.yaml is not an error by itself.
std::vector<int64_t> MatShape(const cv::Mat& m) { return std::vector<int64_t>(m.size.p, m.size.p + m.dims); }

// The shape to report for output `spec`: OpenCV's own when its rank matches
// model.yaml's (the server checks the dims), else model.yaml's with its -1
// filled in when the element count fits it.
Result<std::vector<int64_t>> OutputShape(const cv::Mat& m, const BackendTensorSpec& spec,
                                         const BackendModelConfig& config, int64_t batch) {
  std::vector<int64_t> got = MatShape(m);
  std::vector<int64_t> want = WithBatch(config, spec, batch);
  if (got.size() == want.size()) return got;

  const int64_t total = static_cast<int64_t>(m.total());
  int64_t known = 1;
  int unknown = -1;
  for (size_t i = 0; i < want.size(); ++i) {
    if (want[i] >= 0) {
      known *= want[i];
    } else if (unknown < 0) {
      unknown = static_cast<int>(i);
    } else {
      unknown = INT_MAX;  // two unknown dims: the count cannot place them
    }
  }
  bool fits = unknown == INT_MAX ? false : unknown < 0 ? known == total : known > 0 && total % known == 0;
  if (!fits) {
    return Internal("output '" + spec.name + "': " + kOpenCv + " produced shape " + ShapeToString(got) +
                    ", which does not fit model.yaml's " + ShapeToString(want));
  }
  if (unknown >= 0) want[unknown] = total / known;
  return want;
}

class OnnxInstance final : public ModelInstance {
 public:
  OnnxInstance(cv::dnn::Net net, BackendModelConfig config) : net_(std::move(net)), config_(std::move(config)) {
    for (const BackendTensorSpec& s : config_.inputs) input_names_.push_back(s.name);
    for (const BackendTensorSpec& s : config_.outputs) output_names_.push_back(s.name);
  }

  Status Execute(std::vector<Tensor>& inputs, std::vector<Tensor>* outputs) override {
    try {
      return Run(inputs, outputs);
    } catch (const cv::Exception& e) {
      return Internal(Describe(e));
    } catch (const std::exception& e) {
      return Internal(std::string(kOpenCv) + ": " + e.what());
    }
  }

 private:
  Status Run(std::vector<Tensor>& inputs, std::vector<Tensor>* outputs) {
    if (inputs.size() != input_names_.size()) {
      return Internal("got " + std::to_string(inputs.size()) + " inputs, model.yaml declares " +
                      std::to_string(input_names_.size()));
    }
    for (size_t i = 0; i < inputs.size(); ++i) {
      Tensor& in = inputs[i];
      std::vector<int> dims;
      for (int64_t d : in.shape) {
        if (d > INT_MAX) {
          return InvalidArgument("input '" + in.name + "': dimension " + std::to_string(d) +
                                 " is too large for OpenCV");
        }
        dims.push_back(static_cast<int>(d));
      }
      if (dims.empty()) dims.push_back(1);  // a scalar: OpenCV has no 0-D Mat
      // The Mat only wraps the request's buffer; setInput copies it into the net.
      cv::Mat blob(static_cast<int>(dims.size()), dims.data(), CV_32F, in.data.data());
      net_.setInput(blob, input_names_[i]);
    }
    std::vector<cv::Mat> produced;
    net_.forward(produced, output_names_);
    if (produced.size() != output_names_.size()) {
      return Internal(std::string(kOpenCv) + " returned " + std::to_string(produced.size()) + " outputs for " +
                      std::to_string(output_names_.size()) + " requested");
    }

    const int64_t batch = config_.batched() && !inputs.empty() && !inputs[0].shape.empty() ? inputs[0].shape[0] : 0;
    outputs->resize(produced.size());
    for (size_t i = 0; i < produced.size(); ++i) {
      const BackendTensorSpec& spec = config_.outputs[i];
      cv::Mat m = produced[i];
      // OpenCV DNN computes in float; should a layer yield another depth, its
      // values are still what model.yaml's FP32 output means.
      if (m.depth() != CV_32F) m.convertTo(m, CV_32F);
      if (!m.isContinuous()) m = m.clone();
      ASSIGN_OR_RETURN(std::vector<int64_t> shape, OutputShape(m, spec, config_, batch));
      Tensor& out = (*outputs)[i];
      out.name = spec.name;
      out.dtype = DataType::kFp32;
      out.shape = std::move(shape);
      size_t bytes = m.total() * sizeof(float);
      out.data.resize(bytes);
      if (bytes) std::memcpy(out.data.data(), m.data, bytes);
    }
    return Status::Ok();
  }

  cv::dnn::Net net_;  // not thread-safe: each instance owns its own
  const BackendModelConfig config_;
  std::vector<cv::String> input_names_;   // config order
  std::vector<cv::String> output_names_;  // config order
};

// Checks that model.yaml's names are the graph's. OpenCV 4.6 exposes no list
// of the graph inputs, only a lookup of a name on its input layer (layer 0)
// that answers the input's position in the graph.
Status CheckNames(const cv::dnn::Net& net, const BackendModelConfig& c, const std::string& file) {
  cv::Ptr<cv::dnn::Layer> input_layer = net.getLayer(0);
  for (const BackendTensorSpec& s : c.inputs) {
    int index = input_layer->outputNameToIndex(s.name);
    if (index < 0) {
      return InvalidArgument("model.yaml: input '" + s.name + "' is not an input of the ONNX graph in " + file);
    }
    if (index >= static_cast<int>(c.inputs.size())) {
      return InvalidArgument("the ONNX graph in " + file + " has more inputs than the " +
                             std::to_string(c.inputs.size()) + " model.yaml declares (input '" + s.name +
                             "' is its input " + std::to_string(index + 1) +
                             "); declare every input of the ONNX graph");
    }
  }
  std::vector<cv::String> graph_outputs = net.getUnconnectedOutLayersNames();
  for (const BackendTensorSpec& s : c.outputs) {
    if (std::find(graph_outputs.begin(), graph_outputs.end(), s.name) == graph_outputs.end()) {
      return InvalidArgument("model.yaml: output '" + s.name + "' is not an output of the ONNX graph in " + file +
                             " (its outputs: " + Join(graph_outputs) + ")");
    }
  }
  return Status::Ok();
}

// Runs the net once on zeros of the declared shapes with `batch` rows and
// checks the output shapes. Skipped (OK) when an input dim is -1: there is no
// shape to try.
Status TryRun(OnnxInstance& instance, const BackendModelConfig& c, int64_t batch) {
  std::vector<Tensor> inputs;
  for (const BackendTensorSpec& s : c.inputs) {
    if (std::find(s.shape.begin(), s.shape.end(), -1) != s.shape.end()) return Status::Ok();
    Tensor t;
    t.name = s.name;
    t.dtype = s.dtype;
    t.shape = WithBatch(c, s, batch);
    auto count = ElementCount(t.shape, int64_t{1} << 28);
    if (!count.ok()) return Status::Ok();  // too big to try; requests will tell
    t.data.assign(*count * sizeof(float), 0);
    inputs.push_back(std::move(t));
  }
  std::vector<Tensor> outputs;
  RETURN_IF_ERROR(instance.Execute(inputs, &outputs));
  for (size_t i = 0; i < outputs.size(); ++i) {
    const BackendTensorSpec& spec = c.outputs[i];
    const std::vector<int64_t>& shape = outputs[i].shape;
    std::vector<int64_t> want = WithBatch(c, spec, batch);
    bool match = shape.size() == want.size();
    for (size_t d = 0; match && d < want.size(); ++d) match = want[d] < 0 || want[d] == shape[d];
    if (!match) {
      return InvalidArgument("output '" + spec.name + "' has shape " + ShapeToString(shape) + " for inputs of shape " +
                             ShapeToString(inputs.empty() ? std::vector<int64_t>{} : inputs[0].shape) +
                             ", model.yaml declares " + ShapeToString(want));
    }
  }
  return Status::Ok();
}

// A trial run at load, with 2 rows when batched: OpenCV 4.6 folds some
// dynamic batch dimensions to the exported size at import (a Reshape built
// from x.size(0), say), and such a graph must fail its load, not every
// request of more than one row.
Status DryRun(OnnxInstance& instance, const BackendModelConfig& c) {
  const int64_t batch = std::min<int64_t>(2, c.max_batch_size);
  Status s = TryRun(instance, c, batch);
  if (s.ok() || batch < 2 || !TryRun(instance, c, 1).ok()) return s;
  return InvalidArgument("the graph runs on 1 row but not on " + std::to_string(batch) + " (" + s.message() +
                         "): its batch dimension is fixed as OpenCV imports it (build flattening reshapes with "
                         "torch.flatten(x, 1), not x.view(x.size(0), -1)), or set max_batch_size: 1");
}

// ONNX TensorProto.DataType -> v2 datatype.
std::optional<DataType> FromOnnxType(int32_t t) {
  switch (t) {
    case 1: return DataType::kFp32;
    case 2: return DataType::kUint8;
    case 3: return DataType::kInt8;
    case 4: return DataType::kUint16;
    case 5: return DataType::kInt16;
    case 6: return DataType::kInt32;
    case 7: return DataType::kInt64;
    case 8: return DataType::kBytes;
    case 9: return DataType::kBool;
    case 10: return DataType::kFp16;
    case 11: return DataType::kFp64;
    case 12: return DataType::kUint32;
    case 13: return DataType::kUint64;
    default: return std::nullopt;
  }
}

// ONNX files carry their weights: large ones are fine, unbounded ones are not.
constexpr uint64_t kMaxModelFileBytes = uint64_t{4} << 30;

class OnnxBackend final : public Backend {
 public:
  // The graph names its inputs and outputs with types and dims; a leading
  // symbolic dim on every one of them is the batch dimension.
  Status InferSignature(const std::string& model_file, BackendSignature* c) override {
    ASSIGN_OR_RETURN(std::string bytes, ReadRegularFile(model_file, kMaxModelFileBytes));
    ASSIGN_OR_RETURN(OnnxSignature sig, ParseOnnxSignature(bytes));
    if (sig.outputs.empty()) return InvalidArgument("the graph has no outputs");
    bool batched = true;
    for (const auto* list : {&sig.inputs, &sig.outputs}) {
      for (const OnnxValueInfo& v : *list) batched &= !v.dims.empty() && v.dims[0].value < 0;
    }
    auto specs = [&](const std::vector<OnnxValueInfo>& list, std::vector<BackendTensorSpec>* out) -> Status {
      for (const OnnxValueInfo& v : list) {
        auto dtype = FromOnnxType(v.elem_type);
        if (!dtype) return InvalidArgument("'" + v.name + "' has ONNX element type " + std::to_string(v.elem_type));
        BackendTensorSpec spec{v.name, *dtype, {}};
        for (size_t i = batched ? 1 : 0; i < v.dims.size(); ++i) spec.shape.push_back(v.dims[i].value);
        out->push_back(std::move(spec));
      }
      return Status::Ok();
    };
    RETURN_IF_ERROR(specs(sig.inputs, &c->inputs));
    RETURN_IF_ERROR(specs(sig.outputs, &c->outputs));
    if (batched && c->max_batch_size == 0) c->max_batch_size = 64;
    if (!batched) c->max_batch_size = 0;
    return Status::Ok();
  }

  Result<std::unique_ptr<ModelInstance>> CreateInstance(const BackendModelConfig& ctx) override {
    const BackendModelConfig& c = ctx;
    for (const auto* specs : {&c.inputs, &c.outputs}) {
      for (const BackendTensorSpec& s : *specs) {
        if (s.dtype != DataType::kFp32) {
          return InvalidArgument("model.yaml: '" + s.name + "': datatype " + std::string(DataTypeName(s.dtype)) +
                                 " is not supported by the onnx backend (" + kOpenCv + " computes in FP32; use FP32)");
        }
      }
    }
    if (!c.parameters.empty()) {
      return InvalidArgument("model.yaml: parameters." + c.parameters.begin()->first +
                             ": the onnx backend takes no parameters");
    }
    try {
      // Before any net exists, so no instance can be inside the pool it rebuilds.
      std::call_once(pool_sized_, [&c] { cv::setNumThreads(std::max(1, c.threads)); });
      cv::dnn::Net net;
      try {
        net = cv::dnn::readNetFromONNX(ctx.model_file);
      } catch (const cv::Exception& e) {
        return ImportError(ctx.model_file, e);
      }
      if (net.empty()) return InvalidArgument(ctx.model_file + ": the ONNX graph has no layers");
      net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
      net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
      RETURN_IF_ERROR(CheckNames(net, c, ctx.model_file));

      auto instance = std::make_unique<OnnxInstance>(std::move(net), ctx);
      Status dry = DryRun(*instance, c);
      if (!dry.ok()) return InvalidArgument(ctx.model_file + ": trial run on zeros failed: " + dry.message());
      return std::unique_ptr<ModelInstance>(std::move(instance));
    } catch (const cv::Exception& e) {
      return InvalidArgument(ctx.model_file + ": " + Describe(e));
    } catch (const std::exception& e) {
      return InvalidArgument(ctx.model_file + ": " + kOpenCv + ": " + e.what());
    }
  }

 private:
  std::once_flag pool_sized_;
};

}  // namespace
}  // namespace berth

BERTH_DEFINE_BACKEND("onnx", "model.onnx", berth::OnnxBackend)
