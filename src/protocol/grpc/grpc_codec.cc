#include "protocol/grpc/grpc_codec.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <limits>
#include <unordered_set>

namespace berth {
namespace {

using inference::InferParameter;
using inference::InferTensorContents;
using inference::ModelInferRequest;

constexpr int64_t kMaxElements = int64_t{1} << 40;

std::string Where(int i, const std::string& name) { return "inputs[" + std::to_string(i) + "] '" + name + "'"; }

// The typed field a datatype travels in, and how many values it holds.
const char* FieldFor(DataType dtype) {
  switch (dtype) {
    case DataType::kBool: return "bool_contents";
    case DataType::kInt8:
    case DataType::kInt16:
    case DataType::kInt32: return "int_contents";
    case DataType::kInt64: return "int64_contents";
    case DataType::kUint8:
    case DataType::kUint16:
    case DataType::kUint32: return "uint_contents";
    case DataType::kUint64: return "uint64_contents";
    case DataType::kFp32: return "fp32_contents";
    case DataType::kFp64: return "fp64_contents";
    case DataType::kBytes: return "bytes_contents";
    case DataType::kFp16: return nullptr;  // no typed field: raw only
  }
  return nullptr;
}

int64_t FieldSize(const InferTensorContents& c, DataType dtype) {
  switch (dtype) {
    case DataType::kBool: return c.bool_contents_size();
    case DataType::kInt8:
    case DataType::kInt16:
    case DataType::kInt32: return c.int_contents_size();
    case DataType::kInt64: return c.int64_contents_size();
    case DataType::kUint8:
    case DataType::kUint16:
    case DataType::kUint32: return c.uint_contents_size();
    case DataType::kUint64: return c.uint64_contents_size();
    case DataType::kFp32: return c.fp32_contents_size();
    case DataType::kFp64: return c.fp64_contents_size();
    case DataType::kBytes: return c.bytes_contents_size();
    case DataType::kFp16: return 0;
  }
  return 0;
}

int64_t AllFieldsSize(const InferTensorContents& c) {
  return int64_t{c.bool_contents_size()} + c.int_contents_size() + c.int64_contents_size() + c.uint_contents_size() +
         c.uint64_contents_size() + c.fp32_contents_size() + c.fp64_contents_size() + c.bytes_contents_size();
}

template <typename T, typename Repeated>
void Pack(const Repeated& values, std::vector<uint8_t>* out) {
  out->resize(static_cast<size_t>(values.size()) * sizeof(T));
  uint8_t* p = out->data();
  for (auto v : values) {
    T x = static_cast<T>(v);
    std::memcpy(p, &x, sizeof(T));
    p += sizeof(T);
  }
}

// Narrows int32/uint32 values into INT8/INT16/UINT8/UINT16, refusing values out of range.
template <typename T, typename Repeated>
Status PackNarrow(const Repeated& values, const std::string& where, std::vector<uint8_t>* out) {
  int64_t k = 0;
  for (auto v : values) {
    if (v < std::numeric_limits<T>::min() || v > std::numeric_limits<T>::max()) {
      return InvalidArgument(where + ": element " + std::to_string(k) + " (" + std::to_string(v) +
                             ") is out of range for its datatype");
    }
    ++k;
  }
  Pack<T>(values, out);
  return Status::Ok();
}

Status FillTyped(const InferTensorContents& c, const std::string& where, int64_t count, Tensor* t) {
  const char* field = FieldFor(t->dtype);
  if (field == nullptr) return InvalidArgument(where + ": FP16 has no typed contents; send raw_input_contents");
  int64_t n = FieldSize(c, t->dtype);
  if (AllFieldsSize(c) != n) {
    return InvalidArgument(where + ": contents of datatype " + std::string(DataTypeName(t->dtype)) + " go in " + field +
                           ", and only there");
  }
  if (n != count) {
    return InvalidArgument(where + ": " + field + " holds " + std::to_string(n) + " values but shape " +
                           ShapeToString(t->shape) + " needs " + std::to_string(count));
  }
  switch (t->dtype) {
    case DataType::kBool: Pack<uint8_t>(c.bool_contents(), &t->data); break;
    case DataType::kInt8: return PackNarrow<int8_t>(c.int_contents(), where, &t->data);
    case DataType::kInt16: return PackNarrow<int16_t>(c.int_contents(), where, &t->data);
    case DataType::kInt32: Pack<int32_t>(c.int_contents(), &t->data); break;
    case DataType::kInt64: Pack<int64_t>(c.int64_contents(), &t->data); break;
    case DataType::kUint8: return PackNarrow<uint8_t>(c.uint_contents(), where, &t->data);
    case DataType::kUint16: return PackNarrow<uint16_t>(c.uint_contents(), where, &t->data);
    case DataType::kUint32: Pack<uint32_t>(c.uint_contents(), &t->data); break;
    case DataType::kUint64: Pack<uint64_t>(c.uint64_contents(), &t->data); break;
    case DataType::kFp32: Pack<float>(c.fp32_contents(), &t->data); break;
    case DataType::kFp64: Pack<double>(c.fp64_contents(), &t->data); break;
    case DataType::kBytes:
      for (const std::string& s : c.bytes_contents()) AppendBytesElement(s, &t->data);
      break;
    case DataType::kFp16: break;
  }
  return Status::Ok();
}

Status FillRaw(const std::string& raw, const std::string& where, int64_t count, Tensor* t) {
  const uint8_t* p = reinterpret_cast<const uint8_t*>(raw.data());
  if (t->dtype == DataType::kBytes) {
    auto elems = SplitBytesElements(p, raw.size());
    if (!elems.ok()) return elems.status().WithContext(where + " raw_input_contents");
    if (static_cast<int64_t>(elems->size()) != count) {
      return InvalidArgument(where + ": raw_input_contents holds " + std::to_string(elems->size()) +
                             " BYTES elements but shape " + ShapeToString(t->shape) + " needs " +
                             std::to_string(count));
    }
  } else {
    uint64_t want = static_cast<uint64_t>(count) * DataTypeSize(t->dtype);
    if (raw.size() != want) {
      return InvalidArgument(where + ": raw_input_contents has " + std::to_string(raw.size()) + " bytes but shape " +
                             ShapeToString(t->shape) + " of " + std::string(DataTypeName(t->dtype)) + " needs " +
                             std::to_string(want));
    }
    if (t->dtype == DataType::kBool) {
      for (size_t k = 0; k < raw.size(); ++k) {
        if (p[k] > 1) {
          return InvalidArgument(where + ": BOOL element " + std::to_string(k) + " is " + std::to_string(p[k]) +
                                 "; expected 0 or 1");
        }
      }
    }
  }
  t->data.assign(p, p + raw.size());
  return Status::Ok();
}

// A request parameter that is a non-negative integer (int64 or uint64, as clients differ).
Result<int64_t> NonNegative(const InferParameter& p, const std::string& where) {
  if (p.parameter_choice_case() == InferParameter::kInt64Param && p.int64_param() >= 0) return p.int64_param();
  if (p.parameter_choice_case() == InferParameter::kUint64Param &&
      p.uint64_param() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return static_cast<int64_t>(p.uint64_param());
  }
  return InvalidArgument(where + ": expected a non-negative integer");
}

template <typename T, typename Repeated>
void Unpack(const Tensor& t, Repeated* out) {
  size_t n = t.data.size() / sizeof(T);
  out->Reserve(static_cast<int>(n));
  for (size_t k = 0; k < n; ++k) {
    T v;
    std::memcpy(&v, t.data.data() + k * sizeof(T), sizeof(T));
    out->Add(v);
  }
}

void FillContents(const Tensor& t, InferTensorContents* c) {
  switch (t.dtype) {
    case DataType::kBool: Unpack<uint8_t>(t, c->mutable_bool_contents()); break;
    case DataType::kInt8: Unpack<int8_t>(t, c->mutable_int_contents()); break;
    case DataType::kInt16: Unpack<int16_t>(t, c->mutable_int_contents()); break;
    case DataType::kInt32: Unpack<int32_t>(t, c->mutable_int_contents()); break;
    case DataType::kInt64: Unpack<int64_t>(t, c->mutable_int64_contents()); break;
    case DataType::kUint8: Unpack<uint8_t>(t, c->mutable_uint_contents()); break;
    case DataType::kUint16: Unpack<uint16_t>(t, c->mutable_uint_contents()); break;
    case DataType::kUint32: Unpack<uint32_t>(t, c->mutable_uint_contents()); break;
    case DataType::kUint64: Unpack<uint64_t>(t, c->mutable_uint64_contents()); break;
    case DataType::kFp32: Unpack<float>(t, c->mutable_fp32_contents()); break;
    case DataType::kFp64: Unpack<double>(t, c->mutable_fp64_contents()); break;
    case DataType::kBytes: {
      auto elems = SplitBytesElements(t.data.data(), t.data.size());  // checked against the config already
      if (elems.ok()) {
        for (std::string_view e : *elems) c->add_bytes_contents(std::string(e));
      }
      break;
    }
    case DataType::kFp16: break;  // never typed (EncodeGrpcInferResponse)
  }
}

// One tensor of a request (InferInputTensor) or a response
// (InferOutputTensor): the same fields. `raw` is its raw contents, or null
// when it travels typed.
template <typename ProtoTensor>
Status DecodeTensor(const ProtoTensor& in, const std::string* raw, const std::string& where, Tensor* t) {
  std::optional<DataType> dtype = ParseDataType(in.datatype());
  if (!dtype) return InvalidArgument(where + ": unknown datatype (expected BOOL, INT8 ... FP64, BYTES)");
  t->name = in.name();
  t->dtype = *dtype;
  for (int d = 0; d < in.shape_size(); ++d) {
    if (in.shape(d) < 0) {
      return InvalidArgument(where + ": shape[" + std::to_string(d) + "] is negative (" + std::to_string(in.shape(d)) +
                             ")");
    }
    t->shape.push_back(in.shape(d));
  }
  Result<int64_t> count = ElementCount(t->shape, kMaxElements);
  if (!count.ok()) return count.status().WithContext(where);
  if (raw != nullptr) {
    if (in.has_contents() && AllFieldsSize(in.contents()) > 0) {
      return InvalidArgument(where + ": has both contents and raw contents");
    }
    return FillRaw(*raw, where, *count, t);
  }
  return FillTyped(in.contents(), where, *count, t);
}

}  // namespace

Result<int64_t> ParseGrpcVersion(const std::string& version) {
  if (version.empty()) return int64_t{-1};
  int64_t v = 0;
  auto [end, ec] = std::from_chars(version.data(), version.data() + version.size(), v);
  if (ec != std::errc() || end != version.data() + version.size() || v < 0) {
    return InvalidArgument("model_version: expected a non-negative integer or \"\" for the latest");
  }
  return v;
}

Result<std::unique_ptr<InferRequest>> DecodeGrpcInferRequest(const ModelInferRequest& in, GrpcRequestForm* form) {
  auto req = std::make_unique<InferRequest>();
  req->id = in.id();
  req->has_id = !in.id().empty();
  for (const auto& [key, value] : in.parameters()) {
    if (key == "timeout" || key == "timeout_us") {
      ASSIGN_OR_RETURN(req->timeout_us, NonNegative(value, "parameters." + key + " (microseconds)"));
    } else if (key == "trace") {
      if (value.parameter_choice_case() != InferParameter::kBoolParam) {
        return InvalidArgument("parameters.trace: expected bool_param");
      }
      req->trace = value.bool_param();
    }
    // Anything else (priority, sequence ids, headers tritonclient forwards) is not ours: ignored.
  }
  const bool raw = in.raw_input_contents_size() > 0;
  form->raw = raw || in.inputs_size() == 0;
  if (raw && in.raw_input_contents_size() != in.inputs_size()) {
    return InvalidArgument("raw_input_contents has " + std::to_string(in.raw_input_contents_size()) + " entries for " +
                           std::to_string(in.inputs_size()) + " inputs: send every input raw, or none");
  }
  std::unordered_set<std::string_view> names;
  req->inputs.reserve(static_cast<size_t>(in.inputs_size()));
  for (int i = 0; i < in.inputs_size(); ++i) {
    const auto& input = in.inputs(i);
    std::string where = Where(i, input.name());
    if (input.name().empty()) return InvalidArgument("inputs[" + std::to_string(i) + "]: name is empty");
    if (!names.insert(input.name()).second) return InvalidArgument(where + ": the input appears twice");
    Tensor t;
    RETURN_IF_ERROR(DecodeTensor(input, raw ? &in.raw_input_contents(i) : nullptr, where, &t));
    req->inputs.push_back(std::move(t));
  }
  std::unordered_set<std::string_view> wanted;
  for (int j = 0; j < in.outputs_size(); ++j) {
    const std::string& name = in.outputs(j).name();
    if (!wanted.insert(name).second) {
      return InvalidArgument("outputs[" + std::to_string(j) + "]: output '" + name + "' is requested twice");
    }
    RequestedOutput ro{name, false, 0};
    for (const auto& [key, value] : in.outputs(j).parameters()) {
      if (key == "classification") {
        ASSIGN_OR_RETURN(ro.classification,
                         NonNegative(value, "outputs[" + std::to_string(j) + "].parameters.classification"));
      }
    }
    req->outputs.push_back(std::move(ro));
  }
  return req;
}

void EncodeGrpcInferResponse(InferResponse&& r, const GrpcRequestForm& form, inference::ModelInferResponse* out) {
  out->set_model_name(r.model_name);
  out->set_model_version(std::to_string(r.model_version));
  if (r.has_id) out->set_id(r.id);
  bool raw = form.raw;
  for (const Tensor& t : r.outputs) raw = raw || t.dtype == DataType::kFp16;
  for (Tensor& t : r.outputs) {
    auto* o = out->add_outputs();
    o->set_name(t.name);
    o->set_datatype(std::string(DataTypeName(t.dtype)));
    for (int64_t d : t.shape) o->add_shape(d);
    if (raw) {
      out->add_raw_output_contents(reinterpret_cast<const char*>(t.data.data()), t.data.size());
    } else {
      FillContents(t, o->mutable_contents());
    }
  }
  for (auto& [key, value] : r.parameters) {
    InferParameter& p = (*out->mutable_parameters())[key];
    if (const int64_t* n = std::get_if<int64_t>(&value)) {
      p.set_int64_param(*n);
    } else {
      p.set_string_param(std::move(std::get<std::string>(value)));
    }
  }
}

void EncodeGrpcInferRequest(const InferRequest& req, const std::string& model, int64_t version,
                            inference::ModelInferRequest* out) {
  out->set_model_name(model);
  if (version > 0) out->set_model_version(std::to_string(version));
  if (req.has_id) out->set_id(req.id);
  if (req.timeout_us > 0) (*out->mutable_parameters())["timeout"].set_int64_param(req.timeout_us);
  if (req.trace) (*out->mutable_parameters())["trace"].set_bool_param(true);
  for (const Tensor& t : req.inputs) {
    auto* in = out->add_inputs();
    in->set_name(t.name);
    in->set_datatype(std::string(DataTypeName(t.dtype)));
    for (int64_t d : t.shape) in->add_shape(d);
    out->add_raw_input_contents(reinterpret_cast<const char*>(t.data.data()), t.data.size());
  }
  for (const RequestedOutput& o : req.outputs) out->add_outputs()->set_name(o.name);
}

Result<InferResponse> DecodeGrpcInferResponse(const inference::ModelInferResponse& in) {
  InferResponse resp;
  resp.model_name = in.model_name();
  auto [p, ec] = std::from_chars(in.model_version().data(), in.model_version().data() + in.model_version().size(),
                                 resp.model_version);
  if (ec != std::errc() || p != in.model_version().data() + in.model_version().size()) resp.model_version = 0;
  resp.id = in.id();
  resp.has_id = !in.id().empty();
  const bool raw = in.raw_output_contents_size() > 0;
  if (raw && in.raw_output_contents_size() != in.outputs_size()) {
    return InvalidArgument("response: raw_output_contents has " + std::to_string(in.raw_output_contents_size()) +
                           " entries for " + std::to_string(in.outputs_size()) + " outputs");
  }
  for (int i = 0; i < in.outputs_size(); ++i) {
    Tensor t;
    RETURN_IF_ERROR(DecodeTensor(in.outputs(i), raw ? &in.raw_output_contents(i) : nullptr,
                                 "response: outputs[" + std::to_string(i) + "] '" + in.outputs(i).name() + "'", &t));
    resp.outputs.push_back(std::move(t));
  }
  resp.binary.assign(resp.outputs.size(), false);
  for (const auto& [key, value] : in.parameters()) {
    if (value.parameter_choice_case() == InferParameter::kInt64Param) {
      resp.parameters.emplace_back(key, value.int64_param());
    } else if (value.parameter_choice_case() == InferParameter::kStringParam) {
      resp.parameters.emplace_back(key, value.string_param());
    }
  }
  // protobuf maps have no order: keep trace keys in a stable one.
  std::sort(resp.parameters.begin(), resp.parameters.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  return resp;
}

StatusCode FromGrpcCode(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return StatusCode::kOk;
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::OUT_OF_RANGE: return StatusCode::kInvalidArgument;
    case grpc::StatusCode::NOT_FOUND: return StatusCode::kNotFound;
    case grpc::StatusCode::ALREADY_EXISTS: return StatusCode::kAlreadyExists;
    case grpc::StatusCode::FAILED_PRECONDITION: return StatusCode::kFailedPrecondition;
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return StatusCode::kResourceExhausted;
    case grpc::StatusCode::UNAVAILABLE: return StatusCode::kUnavailable;
    case grpc::StatusCode::UNIMPLEMENTED: return StatusCode::kUnimplemented;
    case grpc::StatusCode::DEADLINE_EXCEEDED: return StatusCode::kDeadlineExceeded;
    case grpc::StatusCode::UNAUTHENTICATED: return StatusCode::kUnauthenticated;
    case grpc::StatusCode::PERMISSION_DENIED: return StatusCode::kPermissionDenied;
    default: return StatusCode::kInternal;
  }
}

grpc::StatusCode GrpcCodeFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return grpc::StatusCode::OK;
    case StatusCode::kInvalidArgument: return grpc::StatusCode::INVALID_ARGUMENT;
    case StatusCode::kNotFound: return grpc::StatusCode::NOT_FOUND;
    case StatusCode::kAlreadyExists: return grpc::StatusCode::ALREADY_EXISTS;
    case StatusCode::kFailedPrecondition: return grpc::StatusCode::FAILED_PRECONDITION;
    case StatusCode::kResourceExhausted: return grpc::StatusCode::RESOURCE_EXHAUSTED;
    case StatusCode::kUnavailable: return grpc::StatusCode::UNAVAILABLE;
    case StatusCode::kUnimplemented: return grpc::StatusCode::UNIMPLEMENTED;
    case StatusCode::kDeadlineExceeded: return grpc::StatusCode::DEADLINE_EXCEEDED;
    case StatusCode::kUnauthenticated: return grpc::StatusCode::UNAUTHENTICATED;
    case StatusCode::kPermissionDenied: return grpc::StatusCode::PERMISSION_DENIED;
    case StatusCode::kInternal: return grpc::StatusCode::INTERNAL;
  }
  return grpc::StatusCode::INTERNAL;
}

grpc::Status ToGrpcStatus(const Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(GrpcCodeFor(status.code()), status.message());
}

Result<V2ModelMetadata> DecodeGrpcModelMetadata(const inference::ModelMetadataResponse& in) {
  V2ModelMetadata m;
  m.name = in.name();
  m.platform = in.platform();
  for (const auto& v : in.versions()) m.versions.push_back(v);
  for (const auto* list : {&in.inputs(), &in.outputs()}) {
    const bool inputs = list == &in.inputs();
    for (const auto& t : *list) {
      std::optional<DataType> dtype = ParseDataType(t.datatype());
      if (!dtype) {
        return InvalidArgument(std::string("ModelMetadata: ") + (inputs ? "input" : "output") + " '" + t.name() +
                               "' has an unknown datatype");
      }
      (inputs ? m.inputs : m.outputs).push_back({t.name(), *dtype, {t.shape().begin(), t.shape().end()}});
    }
  }
  return m;
}

}  // namespace berth
