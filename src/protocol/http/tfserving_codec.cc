#include "protocol/http/tfserving_codec.h"

#include <simdjson.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <unordered_set>

#include "common/base64.h"
#include "common/json_writer.h"
#include "protocol/v2/json_numbers.h"

namespace berth {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

constexpr size_t kMaxDepth = 64;

std::string TypeOf(const element& e) {
  switch (e.type()) {
    case element_type::ARRAY: return "an array";
    case element_type::OBJECT: return "an object";
    case element_type::INT64:
    case element_type::UINT64:
    case element_type::DOUBLE: return "a number";
    case element_type::STRING: return "a string";
    case element_type::BOOL: return "a boolean";
    case element_type::NULL_VALUE: return "null";
  }
  return "a value";
}

// {"b64": "..."}: one binary value, not a nesting level.
bool IsB64(const element& e) {
  if (e.type() != element_type::OBJECT) return false;
  simdjson::dom::object o = e.get_object().value_unsafe();
  return o.size() == 1 && (*o.begin()).key == "b64";
}

// A tensor in its natural nesting: the shape it spells and its values in row-major order.
struct Nested {
  std::vector<int64_t> shape;
  std::vector<element> values;
  size_t leaf_depth = SIZE_MAX;  // where the values sit; every value at the same depth
};

Status Collect(const element& e, size_t depth, const std::string& where, Nested* out) {
  if (e.type() != element_type::ARRAY || IsB64(e)) {
    if (out->leaf_depth == SIZE_MAX) out->leaf_depth = depth;
    if (depth != out->leaf_depth) {
      return InvalidArgument(where + ": values at nesting depths " + std::to_string(out->leaf_depth) + " and " +
                             std::to_string(depth) + ": a tensor's lists must all be equally deep");
    }
    out->values.push_back(e);
    return Status::Ok();
  }
  if (depth >= kMaxDepth) return InvalidArgument(where + ": nested more than 64 deep");
  if (depth >= out->leaf_depth) {
    return InvalidArgument(where + ": a list at depth " + std::to_string(depth) + " where other entries hold values");
  }
  simdjson::dom::array items = e.get_array().value_unsafe();
  int64_t n = static_cast<int64_t>(items.size());
  if (depth == out->shape.size()) {
    out->shape.push_back(n);
  } else if (out->shape[depth] != n) {
    return InvalidArgument(where + ": a list at depth " + std::to_string(depth) + " has " + std::to_string(n) +
                           " entries where an earlier one has " + std::to_string(out->shape[depth]) +
                           " (ragged tensors are not supported)");
  }
  for (element child : items) RETURN_IF_ERROR(Collect(child, depth + 1, where, out));
  return Status::Ok();
}

template <typename T>
Status PutInt(const element& e, const std::string& where, size_t i, uint8_t* out) {
  T v{};
  JsonInt read = ReadJsonInt(e, &v);
  if (read == JsonInt::kNotAnInteger) {
    return InvalidArgument(where + "[" + std::to_string(i) + "]: expected an integer, got " + TypeOf(e));
  }
  if (read == JsonInt::kOutOfRange) {
    return InvalidArgument(where + "[" + std::to_string(i) + "]: out of range for the input's datatype");
  }
  std::memcpy(out + i * sizeof(T), &v, sizeof(T));
  return Status::Ok();
}

Result<double> FloatOf(const element& e, const std::string& where, size_t i) {
  switch (e.type()) {
    case element_type::INT64: return static_cast<double>(e.get_int64().value_unsafe());
    case element_type::UINT64: return static_cast<double>(e.get_uint64().value_unsafe());
    case element_type::DOUBLE: return e.get_double().value_unsafe();
    case element_type::STRING: {  // the NaN / Infinity tokens, read as strings (see Parse)
      std::string_view s = e.get_string().value_unsafe();
      if (s == "NaN") return std::numeric_limits<double>::quiet_NaN();
      if (s == "Infinity") return std::numeric_limits<double>::infinity();
      if (s == "-Infinity") return -std::numeric_limits<double>::infinity();
      break;
    }
    default: break;
  }
  return InvalidArgument(where + "[" + std::to_string(i) + "]: expected a number, NaN or Infinity, got " + TypeOf(e));
}

Status FillTensor(const Nested& n, const std::string& where, Tensor* t) {
  t->shape = n.shape;
  const size_t count = n.values.size();
  if (t->dtype == DataType::kBytes) {
    for (size_t i = 0; i < count; ++i) {
      const element& e = n.values[i];
      if (e.type() == element_type::STRING) {
        AppendBytesElement(e.get_string().value_unsafe(), &t->data);
      } else if (IsB64(e)) {
        std::string_view text;
        if ((*e.get_object().value_unsafe().begin()).value.get(text)) {
          return InvalidArgument(where + "[" + std::to_string(i) + "].b64: expected a base64 string");
        }
        Result<std::string> bytes = Base64Decode(text);
        if (!bytes.ok()) return InvalidArgument(where + "[" + std::to_string(i) + "].b64: not base64");
        AppendBytesElement(*bytes, &t->data);
      } else {
        return InvalidArgument(where + "[" + std::to_string(i) + "]: expected a string or {\"b64\": ...}, got " +
                               TypeOf(e));
      }
    }
    return Status::Ok();
  }
  t->data.resize(count * DataTypeSize(t->dtype));
  uint8_t* out = t->data.data();
  for (size_t i = 0; i < count; ++i) {
    const element& e = n.values[i];
    Status s;
    switch (t->dtype) {
      case DataType::kBool:
        if (e.type() != element_type::BOOL) {
          return InvalidArgument(where + "[" + std::to_string(i) + "]: expected true or false, got " + TypeOf(e));
        }
        out[i] = e.get_bool().value_unsafe() ? 1 : 0;
        break;
      case DataType::kInt8: s = PutInt<int8_t>(e, where, i, out); break;
      case DataType::kInt16: s = PutInt<int16_t>(e, where, i, out); break;
      case DataType::kInt32: s = PutInt<int32_t>(e, where, i, out); break;
      case DataType::kInt64: s = PutInt<int64_t>(e, where, i, out); break;
      case DataType::kUint8: s = PutInt<uint8_t>(e, where, i, out); break;
      case DataType::kUint16: s = PutInt<uint16_t>(e, where, i, out); break;
      case DataType::kUint32: s = PutInt<uint32_t>(e, where, i, out); break;
      case DataType::kUint64: s = PutInt<uint64_t>(e, where, i, out); break;
      case DataType::kFp16:
      case DataType::kFp32:
      case DataType::kFp64: {
        Result<double> v = FloatOf(e, where, i);
        if (!v.ok()) return v.status();
        if (t->dtype == DataType::kFp64) {
          std::memcpy(out + i * 8, &*v, 8);
        } else if (t->dtype == DataType::kFp32) {
          float f = static_cast<float>(*v);
          std::memcpy(out + i * 4, &f, 4);
        } else {
          uint16_t h = FloatToHalf(static_cast<float>(*v));
          std::memcpy(out + i * 2, &h, 2);
        }
        break;
      }
      case DataType::kBytes: break;
    }
    RETURN_IF_ERROR(s);
  }
  return Status::Ok();
}

// Bare NaN / Infinity / -Infinity (TF Serving's JSON, not RFC 8259) become
// strings, which FloatOf reads. Only after the strict parse failed.
std::string TokensAsStrings(std::string_view json) {
  std::string out;
  out.reserve(json.size() + 16);
  bool in_string = false;
  for (size_t i = 0; i < json.size(); ++i) {
    char c = json[i];
    if (in_string) {
      out.push_back(c);
      if (c == '\\' && i + 1 < json.size()) {
        out.push_back(json[++i]);
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') in_string = true;
    bool matched = false;
    for (std::string_view token : {"-Infinity", "Infinity", "NaN"}) {
      if (json.substr(i, token.size()) == token) {
        out.push_back('"');
        out.append(token);
        out.push_back('"');
        i += token.size() - 1;
        matched = true;
        break;
      }
    }
    if (!matched) out.push_back(c);
  }
  return out;
}

Status UniqueKeys(const simdjson::dom::object& o, const std::string& where) {
  std::unordered_set<std::string_view> seen;
  for (auto field : o) {
    if (!seen.insert(field.key).second) {
      return InvalidArgument(where + ": key '" + std::string(field.key).substr(0, 64) + "' appears twice");
    }
  }
  return Status::Ok();
}

std::string InputNames(const ModelConfig& c) {
  std::string s;
  for (const TensorSpec& spec : c.inputs) s += (s.empty() ? "" : ", ") + spec.name;
  return s;
}

// Named inputs ({"name": value, ...}) into tensors of the model's datatypes.
// `stacked`: the values of each name across the instances of the row format.
Status AddInput(const ModelConfig& config, std::string_view name, const std::vector<element>& values, bool stacked,
                const std::string& where, InferRequest* req) {
  const TensorSpec* spec = config.FindInput(name);
  if (spec == nullptr) {
    return InvalidArgument(where + ": unknown input '" + std::string(name).substr(0, 64) + "' (model '" + config.name +
                           "' expects: " + InputNames(config) + ")");
  }
  Nested n;
  if (stacked) {
    n.shape.push_back(static_cast<int64_t>(values.size()));
    for (const element& v : values) RETURN_IF_ERROR(Collect(v, 1, where + "." + spec->name, &n));
  } else {
    RETURN_IF_ERROR(Collect(values[0], 0, where + "." + spec->name, &n));
  }
  Tensor t;
  t.name = spec->name;
  t.dtype = spec->dtype;
  RETURN_IF_ERROR(FillTensor(n, where + "." + spec->name, &t));
  req->inputs.push_back(std::move(t));
  return Status::Ok();
}

Status DecodeRow(const element& instances, const ModelConfig& config, InferRequest* req) {
  if (instances.type() != element_type::ARRAY) return InvalidArgument("instances: expected a list");
  simdjson::dom::array rows = instances.get_array().value_unsafe();
  if (rows.size() == 0) return InvalidArgument("instances: the list is empty");
  element first = rows.at(0).value_unsafe();
  bool named = first.type() == element_type::OBJECT && !IsB64(first);
  if (!named) {
    if (config.inputs.size() != 1) {
      return InvalidArgument("instances: model '" + config.name + "' has " + std::to_string(config.inputs.size()) +
                             " inputs (" + InputNames(config) + "): each instance must be an object naming them");
    }
    return AddInput(config, config.inputs[0].name, {instances}, false, "instances", req);
  }
  // Every instance names the same inputs; each input stacks its values along a new 0-th dimension.
  std::vector<std::string_view> names;
  size_t i = 0;
  for (element row : rows) {
    std::string where = "instances[" + std::to_string(i) + "]";
    if (row.type() != element_type::OBJECT || IsB64(row)) {
      return InvalidArgument(where + ": expected an object naming the inputs, as instances[0] does");
    }
    simdjson::dom::object o = row.get_object().value_unsafe();
    RETURN_IF_ERROR(UniqueKeys(o, where));
    if (i == 0) {
      for (auto field : o) names.push_back(field.key);
    } else if (o.size() != names.size()) {
      return InvalidArgument(where + ": names " + std::to_string(o.size()) + " inputs, instances[0] names " +
                             std::to_string(names.size()));
    }
    ++i;
  }
  for (std::string_view name : names) {
    std::vector<element> values;
    size_t k = 0;
    for (element row : rows) {
      element v;
      if (row.at_key(name).get(v)) {
        return InvalidArgument("instances[" + std::to_string(k) + "]: input '" + std::string(name).substr(0, 64) +
                               "' is missing (instances[0] has it)");
      }
      values.push_back(v);
      ++k;
    }
    RETURN_IF_ERROR(AddInput(config, name, values, true, "instances", req));
  }
  return Status::Ok();
}

Status DecodeColumnar(const element& inputs, const ModelConfig& config, InferRequest* req) {
  if (inputs.type() == element_type::OBJECT && !IsB64(inputs)) {
    simdjson::dom::object o = inputs.get_object().value_unsafe();
    RETURN_IF_ERROR(UniqueKeys(o, "inputs"));
    for (auto field : o) RETURN_IF_ERROR(AddInput(config, field.key, {field.value}, false, "inputs", req));
    return Status::Ok();
  }
  if (config.inputs.size() != 1) {
    return InvalidArgument("inputs: model '" + config.name + "' has " + std::to_string(config.inputs.size()) +
                           " inputs (" + InputNames(config) + "): name them in an object");
  }
  return AddInput(config, config.inputs[0].name, {inputs}, false, "inputs", req);
}

// --- responses

void WriteValue(JsonWriter& w, const Tensor& t, const std::vector<std::string_view>& bytes, bool b64, size_t i) {
  const uint8_t* p = t.data.data();
  auto floating = [&w](double v) {
    if (std::isnan(v)) return w.Raw("NaN");
    if (std::isinf(v)) return w.Raw(v > 0 ? "Infinity" : "-Infinity");
    w.Float(v);
  };
  auto load = [p, i](auto zero) {
    decltype(zero) v;
    std::memcpy(&v, p + i * sizeof(v), sizeof(v));
    return v;
  };
  switch (t.dtype) {
    case DataType::kBool: w.Bool(p[i] != 0); break;
    case DataType::kInt8: w.Int(load(int8_t{})); break;
    case DataType::kInt16: w.Int(load(int16_t{})); break;
    case DataType::kInt32: w.Int(load(int32_t{})); break;
    case DataType::kInt64: w.Int(load(int64_t{})); break;
    case DataType::kUint8: w.Int(load(uint8_t{})); break;
    case DataType::kUint16: w.Int(load(uint16_t{})); break;
    case DataType::kUint32: w.Int(load(uint32_t{})); break;
    case DataType::kUint64: w.Int(load(uint64_t{})); break;
    case DataType::kFp16: {
      float f = HalfToFloat(load(uint16_t{}));
      if (std::isnan(f) || std::isinf(f)) {
        floating(f);
      } else {
        w.Float(f);
      }
      break;
    }
    case DataType::kFp32: {
      float f = load(float{});
      if (std::isnan(f) || std::isinf(f)) {
        floating(f);
      } else {
        w.Float(f);
      }
      break;
    }
    case DataType::kFp64: floating(load(double{})); break;
    case DataType::kBytes:
      if (b64 || !JsonWriter::IsValidUtf8(bytes[i])) {
        w.BeginObject();
        w.Key("b64");
        w.String(Base64Encode(bytes[i]));
        w.EndObject();
      } else {
        w.String(bytes[i]);
      }
      break;
  }
}

// Writes elements [*index, ...) of `t` nested as shape[dim..] says.
void WriteNested(JsonWriter& w, const Tensor& t, const std::vector<std::string_view>& bytes, bool b64, size_t dim,
                 size_t* index) {
  if (dim == t.shape.size()) {
    WriteValue(w, t, bytes, b64, (*index)++);
    return;
  }
  w.BeginArray();
  for (int64_t k = 0; k < t.shape[dim]; ++k) WriteNested(w, t, bytes, b64, dim + 1, index);
  w.EndArray();
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

std::string_view TfTypeName(DataType dtype) {
  switch (dtype) {
    case DataType::kBool: return "DT_BOOL";
    case DataType::kUint8: return "DT_UINT8";
    case DataType::kUint16: return "DT_UINT16";
    case DataType::kUint32: return "DT_UINT32";
    case DataType::kUint64: return "DT_UINT64";
    case DataType::kInt8: return "DT_INT8";
    case DataType::kInt16: return "DT_INT16";
    case DataType::kInt32: return "DT_INT32";
    case DataType::kInt64: return "DT_INT64";
    case DataType::kFp16: return "DT_HALF";
    case DataType::kFp32: return "DT_FLOAT";
    case DataType::kFp64: return "DT_DOUBLE";
    case DataType::kBytes: return "DT_STRING";
  }
  return "DT_INVALID";
}

Result<TfPredictRequest> DecodeTfPredict(std::string_view body, const ModelConfig& config) {
  thread_local simdjson::dom::parser parser;
  std::string rewritten;
  element doc;
  auto err = parser.parse(body.data(), body.size()).get(doc);
  if (err) {
    rewritten = TokensAsStrings(body);
    if (parser.parse(rewritten.data(), rewritten.size()).get(doc)) {
      return InvalidArgument(std::string("malformed JSON in request body: ") + simdjson::error_message(err));
    }
  }
  // Keep a parser's memory small after a large body (see DecodeInferRequest).
  struct Release {
    size_t size;
    ~Release() {
      if (size > (4u << 20)) parser = simdjson::dom::parser();
    }
  } release{body.size()};
  if (doc.type() != element_type::OBJECT) return InvalidArgument("request body: expected a JSON object");
  simdjson::dom::object top = doc.get_object().value_unsafe();
  RETURN_IF_ERROR(UniqueKeys(top, "request body"));
  TfPredictRequest out;
  out.request = std::make_unique<InferRequest>();
  element sig;
  if (!doc.at_key("signature_name").get(sig)) {
    std::string_view name;
    if (sig.get(name) || (!name.empty() && name != "serving_default")) {
      return InvalidArgument("signature_name: berth models have one signature, \"serving_default\"");
    }
  }
  element instances, inputs;
  bool has_instances = !doc.at_key("instances").get(instances);
  bool has_inputs = !doc.at_key("inputs").get(inputs);
  if (has_instances == has_inputs) {
    return InvalidArgument("request body: expected either \"instances\" (row format) or \"inputs\" (columnar format)");
  }
  if (has_instances) {
    out.format = TfFormat::kRow;
    RETURN_IF_ERROR(DecodeRow(instances, config, out.request.get()));
  } else {
    out.format = TfFormat::kColumnar;
    RETURN_IF_ERROR(DecodeColumnar(inputs, config, out.request.get()));
  }
  return out;
}

Result<std::string> EncodeTfPredict(const InferResponse& r, TfFormat format) {
  std::vector<std::vector<std::string_view>> bytes(r.outputs.size());
  for (size_t k = 0; k < r.outputs.size(); ++k) {
    const Tensor& t = r.outputs[k];
    if (t.dtype != DataType::kBytes) continue;
    auto elems = SplitBytesElements(t.data.data(), t.data.size());  // checked against the config already
    if (!elems.ok()) return elems.status();
    bytes[k] = std::move(elems).value();
  }
  std::string out;
  JsonWriter w(&out);
  w.BeginObject();
  const bool single = r.outputs.size() == 1;
  if (format == TfFormat::kColumnar || single) {
    w.Key(format == TfFormat::kColumnar ? "outputs" : "predictions");
    if (!single) w.BeginObject();
    for (size_t k = 0; k < r.outputs.size(); ++k) {
      const Tensor& t = r.outputs[k];
      if (!single) w.Key(t.name);
      size_t index = 0;
      WriteNested(w, t, bytes[k], EndsWith(t.name, "_bytes"), 0, &index);
    }
    if (!single) w.EndObject();
  } else {
    // Rows of objects: every output must share the 0-th dimension.
    int64_t rows = -1;
    for (const Tensor& t : r.outputs) {
      int64_t n = t.shape.empty() ? -1 : t.shape[0];
      if (n < 0 || (rows >= 0 && n != rows)) {
        return InvalidArgument(
            "the model's outputs do not share a 0-th dimension: send the columnar format "
            "({\"inputs\": ...}) to get them");
      }
      rows = n;
    }
    w.Key("predictions");
    w.BeginArray();
    std::vector<size_t> index(r.outputs.size(), 0);
    for (int64_t i = 0; i < rows; ++i) {
      w.BeginObject();
      for (size_t k = 0; k < r.outputs.size(); ++k) {
        const Tensor& t = r.outputs[k];
        w.Key(t.name);
        WriteNested(w, t, bytes[k], EndsWith(t.name, "_bytes"), 1, &index[k]);
      }
      w.EndObject();
    }
    w.EndArray();
  }
  w.EndObject();
  return out;
}

}  // namespace berth
