#include "protocol/v2/v2_codec.h"

#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <type_traits>
#include <unordered_set>

#include "common/json_writer.h"
#include "protocol/v2/json_numbers.h"
#include "protocol/v2/v2_client_codec.h"

namespace berth {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

// Upper bound on elements in one tensor: beyond it no body size could hold the data.
constexpr int64_t kMaxElements = int64_t{1} << 40;

std::string TypeOf(const element& e) {
  switch (e.type()) {
    case element_type::ARRAY: return "an array";
    case element_type::OBJECT: return "an object";
    case element_type::INT64:
    case element_type::UINT64: return "an integer";
    case element_type::DOUBLE: return "a number";
    case element_type::STRING: return "a string";
    case element_type::BOOL: return "a boolean";
    case element_type::NULL_VALUE: return "null";
  }
  return "something else";
}

// An object whose keys are all distinct (a duplicate is an error, not "the first wins").
Status UniqueKeys(const element& obj, const std::string& where) {
  if (obj.type() != element_type::OBJECT) return Status::Ok();
  simdjson::dom::object members = obj.get_object().value_unsafe();
  std::vector<std::string_view> seen;
  for (auto [key, value] : members) {
    if (std::find(seen.begin(), seen.end(), key) != seen.end()) {
      return InvalidArgument((where.empty() ? std::string("request body") : where) + ": key '" + std::string(key) +
                             "' appears more than once");
    }
    seen.push_back(key);
  }
  return Status::Ok();
}

// Walks `data` in row-major order, calling leaf(element, index). `data` is
// flat (one array of every element) or nested exactly as the shape says: a
// ragged or mis-shaped nesting is an error, never silently flattened.
class DataWalker {
 public:
  DataWalker(const std::string& where, int64_t expected, const std::vector<int64_t>* shape = nullptr)
      : where_(where), expected_(expected), shape_(shape) {}

  template <typename Leaf>
  Status Walk(const element& e, Leaf&& leaf, int depth = 0) {
    if (e.type() == element_type::ARRAY) {
      if (depth > 64) return InvalidArgument(where_ + ": data is nested too deeply");
      simdjson::dom::array items = e.get_array().value_unsafe();
      if (depth == 0) {
        element first;
        nested_ = !items.at(0).get(first) && first.type() == element_type::ARRAY;
      }
      if (nested_ && shape_) {
        const size_t rank = shape_->size();
        if (static_cast<size_t>(depth) >= rank) {
          return InvalidArgument(where_ + ": data is nested deeper than the shape's " + std::to_string(rank) +
                                 " dimensions");
        }
        if (static_cast<int64_t>(items.size()) != (*shape_)[static_cast<size_t>(depth)]) {
          return InvalidArgument(where_ + ": data at depth " + std::to_string(depth) + " has " +
                                 std::to_string(items.size()) + " entries but the shape " + ShapeToString(*shape_) +
                                 " needs " + std::to_string((*shape_)[static_cast<size_t>(depth)]));
        }
      }
      for (element child : items) {
        if (nested_ && shape_ &&
            (child.type() == element_type::ARRAY) != (static_cast<size_t>(depth) + 1 < shape_->size())) {
          return InvalidArgument(where_ + ": data mixes arrays and values at depth " + std::to_string(depth + 1) +
                                 " (nest it as the shape " + ShapeToString(*shape_) + " says, or send it flat)");
        }
        RETURN_IF_ERROR(Walk(child, leaf, depth + 1));
      }
      return Status::Ok();
    }
    if (depth == 0) return InvalidArgument(where_ + ": data: expected an array, got " + TypeOf(e));
    if (index_ >= expected_) return TooMany();
    RETURN_IF_ERROR(leaf(e, index_));
    ++index_;
    return Status::Ok();
  }

  Status Finish() const {
    if (index_ != expected_) {
      return InvalidArgument(where_ + ": data has " + std::to_string(index_) + " elements but the shape needs " +
                             std::to_string(expected_));
    }
    return Status::Ok();
  }

  std::string At(int64_t i) const { return where_ + ": data[" + std::to_string(i) + "]"; }

 private:
  Status TooMany() const {
    return InvalidArgument(where_ + ": data has more than the " + std::to_string(expected_) +
                           " elements the shape needs");
  }

  const std::string& where_;
  int64_t expected_;
  const std::vector<int64_t>* shape_;
  bool nested_ = false;
  int64_t index_ = 0;
};

template <typename T>
Status FillInts(const element& data, DataWalker& walker, std::string_view dtype, uint8_t* out) {
  return walker.Walk(data, [&](const element& e, int64_t i) -> Status {
    T v{};
    JsonInt read = ReadJsonInt(e, &v);
    if (read == JsonInt::kNotAnInteger) {
      return InvalidArgument(walker.At(i) + ": expected an integer for " + std::string(dtype) + ", got " + TypeOf(e));
    }
    if (read == JsonInt::kOutOfRange) {
      return InvalidArgument(walker.At(i) + ": " + std::string(simdjson::minify(e)) + " is out of range for " +
                             std::string(dtype));
    }
    std::memcpy(out + i * sizeof(T), &v, sizeof(T));
    return Status::Ok();
  });
}

Result<double> NumberOf(const element& e) {
  switch (e.type()) {
    case element_type::DOUBLE: return e.get_double().value_unsafe();
    case element_type::INT64: return static_cast<double>(e.get_int64().value_unsafe());
    case element_type::UINT64: return static_cast<double>(e.get_uint64().value_unsafe());
    default: return InvalidArgument(TypeOf(e));
  }
}

template <typename T>
Status FillFloats(const element& data, DataWalker& walker, std::string_view dtype, uint8_t* out) {
  return walker.Walk(data, [&](const element& e, int64_t i) -> Status {
    if (e.type() == element_type::NULL_VALUE) {  // null = missing value (NaN), as XGBoost and pandas read it
      if constexpr (std::is_same_v<T, uint16_t>) {
        uint16_t h = 0x7e00;
        std::memcpy(out + i * 2, &h, 2);
      } else {
        T v = std::numeric_limits<T>::quiet_NaN();
        std::memcpy(out + i * sizeof(T), &v, sizeof(T));
      }
      return Status::Ok();
    }
    if (e.type() == element_type::STRING) {  // what an overflowing number (1e999) was read as, and the spellings
      std::string_view text = e.get_string().value_unsafe();
      double special = text == "Infinity" ? HUGE_VAL : text == "-Infinity" ? -HUGE_VAL : text == "NaN" ? NAN : 0;
      if (special != 0 || std::isnan(special)) {
        if constexpr (std::is_same_v<T, uint16_t>) {
          uint16_t h = FloatToHalf(static_cast<float>(special));
          std::memcpy(out + i * 2, &h, 2);
        } else {
          T v = static_cast<T>(special);
          std::memcpy(out + i * sizeof(T), &v, sizeof(T));
        }
        return Status::Ok();
      }
    }
    auto d = NumberOf(e);
    if (!d.ok()) {
      return InvalidArgument(walker.At(i) + ": expected a number for " + std::string(dtype) + ", got " +
                             d.status().message());
    }
    // Narrowing an out-of-range double is undefined behaviour: refuse it instead.
    constexpr double kMax = std::is_same_v<T, uint16_t> ? 65504.0 : static_cast<double>(std::numeric_limits<T>::max());
    if (std::abs(*d) > kMax) {
      return InvalidArgument(walker.At(i) + ": " + std::string(simdjson::minify(e)) + " is out of range for " +
                             std::string(dtype));
    }
    if constexpr (std::is_same_v<T, uint16_t>) {
      uint16_t h = FloatToHalf(static_cast<float>(*d));
      std::memcpy(out + i * 2, &h, 2);
    } else {
      T v = static_cast<T>(*d);
      std::memcpy(out + i * sizeof(T), &v, sizeof(T));
    }
    return Status::Ok();
  });
}

Status FillFromJson(const element& data, const std::string& where, Tensor* t, int64_t count) {
  DataWalker walker(where, count, &t->shape);
  std::string_view dt = DataTypeName(t->dtype);
  if (t->dtype == DataType::kBytes) {
    RETURN_IF_ERROR(walker.Walk(data, [&](const element& e, int64_t i) -> Status {
      if (e.type() != element_type::STRING) {
        return InvalidArgument(walker.At(i) + ": expected a string for BYTES, got " + TypeOf(e));
      }
      AppendBytesElement(e.get_string().value_unsafe(), &t->data);
      return Status::Ok();
    }));
    return walker.Finish();
  }
  t->data.resize(static_cast<size_t>(count) * DataTypeSize(t->dtype));
  uint8_t* out = t->data.data();
  Status s;
  switch (t->dtype) {
    case DataType::kBool:
      s = walker.Walk(data, [&](const element& e, int64_t i) -> Status {
        if (e.type() != element_type::BOOL) {
          return InvalidArgument(walker.At(i) + ": expected true or false for BOOL, got " + TypeOf(e));
        }
        out[i] = e.get_bool().value_unsafe() ? 1 : 0;
        return Status::Ok();
      });
      break;
    case DataType::kUint8: s = FillInts<uint8_t>(data, walker, dt, out); break;
    case DataType::kUint16: s = FillInts<uint16_t>(data, walker, dt, out); break;
    case DataType::kUint32: s = FillInts<uint32_t>(data, walker, dt, out); break;
    case DataType::kUint64: s = FillInts<uint64_t>(data, walker, dt, out); break;
    case DataType::kInt8: s = FillInts<int8_t>(data, walker, dt, out); break;
    case DataType::kInt16: s = FillInts<int16_t>(data, walker, dt, out); break;
    case DataType::kInt32: s = FillInts<int32_t>(data, walker, dt, out); break;
    case DataType::kInt64: s = FillInts<int64_t>(data, walker, dt, out); break;
    case DataType::kFp16: s = FillFloats<uint16_t>(data, walker, dt, out); break;
    case DataType::kFp32: s = FillFloats<float>(data, walker, dt, out); break;
    case DataType::kFp64: s = FillFloats<double>(data, walker, dt, out); break;
    case DataType::kBytes: break;
  }
  RETURN_IF_ERROR(s);
  return walker.Finish();
}

// Reads a `parameters` object; calls on_param(key, value) for each member.
template <typename F>
Status ForEachParameter(const element& parent, const std::string& where, F&& on_param) {
  element params;
  if (parent.at_key("parameters").get(params)) return Status::Ok();  // absent
  if (params.type() != element_type::OBJECT) {
    return InvalidArgument(where + "parameters: expected an object, got " + TypeOf(params));
  }
  RETURN_IF_ERROR(UniqueKeys(params, where + "parameters"));
  simdjson::dom::object members = params.get_object().value_unsafe();
  for (auto [key, value] : members) {
    RETURN_IF_ERROR(on_param(key, value));
  }
  return Status::Ok();
}

Result<bool> BoolParam(const element& v, const std::string& where) {
  if (v.type() != element_type::BOOL) return InvalidArgument(where + ": expected true or false, got " + TypeOf(v));
  return v.get_bool().value_unsafe();
}

struct PendingBinary {
  size_t input_index;
  uint64_t size;
  std::string where;
};

Status DecodeInput(const element& in, size_t index, size_t json_size, InferRequest* req,
                   std::vector<PendingBinary>* binary, std::unordered_set<std::string_view>* names,
                   std::string_view list = "inputs") {
  std::string where = std::string(list) + "[" + std::to_string(index) + "]";
  if (in.type() != element_type::OBJECT) return InvalidArgument(where + ": expected an object, got " + TypeOf(in));
  RETURN_IF_ERROR(UniqueKeys(in, where));
  Tensor t;
  std::string_view name;
  if (in.at_key("name").get(name)) return InvalidArgument(where + ".name: missing or not a string");
  t.name = std::string(name);
  where += " ('" + t.name + "')";
  if (!names->insert(name).second) return InvalidArgument(where + ": input given more than once");

  std::string_view dt;
  if (in.at_key("datatype").get(dt)) return InvalidArgument(where + ".datatype: missing or not a string");
  auto dtype = ParseDataType(dt);
  if (!dtype) return InvalidArgument(where + ".datatype: unknown datatype '" + std::string(dt) + "'");
  t.dtype = *dtype;

  element shape;
  if (in.at_key("shape").get(shape) || shape.type() != element_type::ARRAY) {
    return InvalidArgument(where + ".shape: missing or not an array of integers");
  }
  size_t d = 0;
  simdjson::dom::array dims = shape.get_array().value_unsafe();
  for (element dim : dims) {
    std::string at = where + ".shape[" + std::to_string(d++) + "]";
    if (dim.type() == element_type::UINT64) return InvalidArgument(at + ": dimension is too large");
    if (dim.type() != element_type::INT64) return InvalidArgument(at + ": expected an integer, got " + TypeOf(dim));
    int64_t v = dim.get_int64().value_unsafe();
    if (v < 0) return InvalidArgument(at + ": dimension is negative (" + std::to_string(v) + ")");
    t.shape.push_back(v);
  }
  auto count = ElementCount(t.shape, kMaxElements);
  if (!count.ok()) return count.status().WithContext(where + ".shape");

  std::optional<uint64_t> binary_size;
  RETURN_IF_ERROR(ForEachParameter(in, where + ".", [&](std::string_view key, const element& v) -> Status {
    if (key == "binary_data_size") {
      if (v.type() != element_type::INT64 && v.type() != element_type::UINT64) {
        return InvalidArgument(where + ".parameters.binary_data_size: expected a non-negative integer");
      }
      int64_t s = v.type() == element_type::INT64 ? v.get_int64().value_unsafe() : -1;
      if (s < 0) return InvalidArgument(where + ".parameters.binary_data_size: expected a non-negative integer");
      binary_size = static_cast<uint64_t>(s);
    }
    return Status::Ok();
  }));

  element data;
  bool has_data = !in.at_key("data").get(data);
  if (binary_size) {
    if (has_data) return InvalidArgument(where + ": has both 'data' and parameters.binary_data_size");
    binary->push_back({req->inputs.size(), *binary_size, where});
  } else {
    if (!has_data) return InvalidArgument(where + ".data: missing (and no parameters.binary_data_size)");
    // Every JSON element takes at least one byte: refuse before allocating for an absurd shape.
    if (*count > static_cast<int64_t>(json_size)) {
      return InvalidArgument(where + ": shape " + ShapeToString(t.shape) + " needs " + std::to_string(*count) +
                             " elements, more than the request body holds");
    }
    RETURN_IF_ERROR(FillFromJson(data, where, &t, *count));
  }
  req->inputs.push_back(std::move(t));
  return Status::Ok();
}

Status AttachBinary(std::string_view binary, const std::vector<PendingBinary>& pending, InferRequest* req) {
  uint64_t offset = 0;
  for (const auto& p : pending) {
    Tensor& t = req->inputs[p.input_index];
    if (p.size > binary.size() - offset) {
      return InvalidArgument(p.where + ": binary_data_size " + std::to_string(p.size) + " runs past the end of the " +
                             std::to_string(binary.size()) + " bytes of binary data after the JSON header");
    }
    const uint8_t* src = reinterpret_cast<const uint8_t*>(binary.data() + offset);
    int64_t count = t.NumElements();
    if (t.dtype == DataType::kBytes) {
      auto elems = SplitBytesElements(src, p.size);
      if (!elems.ok()) return elems.status().WithContext(p.where);
      if (static_cast<int64_t>(elems->size()) != count) {
        return InvalidArgument(p.where + ": binary data holds " + std::to_string(elems->size()) +
                               " BYTES elements but the shape needs " + std::to_string(count));
      }
    } else if (p.size != static_cast<uint64_t>(count) * DataTypeSize(t.dtype)) {
      return InvalidArgument(p.where + ": binary_data_size is " + std::to_string(p.size) + " but shape " +
                             ShapeToString(t.shape) + " of " + std::string(DataTypeName(t.dtype)) + " needs " +
                             std::to_string(count * static_cast<int64_t>(DataTypeSize(t.dtype))) + " bytes");
    }
    if (t.dtype == DataType::kBool) {
      for (uint64_t k = 0; k < p.size; ++k) {
        if (src[k] > 1) {
          return InvalidArgument(p.where + ": binary BOOL element " + std::to_string(k) + " is " +
                                 std::to_string(src[k]) + "; expected 0 or 1");
        }
      }
    }
    t.data.assign(src, src + p.size);
    offset += p.size;
  }
  if (offset != binary.size()) {
    return InvalidArgument("binary data: the inputs declare " + std::to_string(offset) + " bytes but " +
                           std::to_string(binary.size()) + " bytes follow the JSON header");
  }
  return Status::Ok();
}

// JSON numbers too large for a double (1e999, what berth and Python write
// for infinity) are read as the strings "Infinity" and "-Infinity", which the
// float decoder accepts. Only on the path where the parser refused a number.
std::string OverflowsAsStrings(std::string_view json) {
  std::string out;
  out.reserve(json.size());
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
    if (c == '-' || (c >= '0' && c <= '9')) {
      size_t end = i + 1;
      while (end < json.size() && std::strchr("0123456789.eE+-", json[end]) != nullptr) ++end;
      std::string token(json.substr(i, end - i));
      double v = std::strtod(token.c_str(), nullptr);
      out += std::isinf(v) ? (v > 0 ? "\"Infinity\"" : "\"-Infinity\"") : token;
      i = end - 1;
      continue;
    }
    out.push_back(c);
  }
  return out;
}

Result<InferRequest> DecodeJson(simdjson::dom::parser& parser, std::string_view json, std::string_view binary);

}  // namespace

Result<InferRequest> DecodeInferRequest(std::string_view body, std::optional<uint64_t> json_length) {
  std::string_view json = body;
  std::string_view binary;
  if (json_length) {
    if (*json_length > body.size()) {
      return InvalidArgument("Inference-Header-Content-Length is " + std::to_string(*json_length) +
                             " but the body has only " + std::to_string(body.size()) + " bytes");
    }
    json = body.substr(0, *json_length);
    binary = body.substr(*json_length);
  }
  thread_local simdjson::dom::parser parser;
  Result<InferRequest> decoded = DecodeJson(parser, json, binary);
  // A parser keeps the capacity of the largest document it parsed (about 13x
  // the JSON). After a large one, give the memory back, so that one 60 MB
  // body does not hold ~800 MB for the life of the thread.
  constexpr size_t kKeepParserBytes = 4u << 20;
  if (json.size() > kKeepParserBytes) parser = simdjson::dom::parser();
  return decoded;
}

namespace {

Result<InferRequest> DecodeJson(simdjson::dom::parser& parser, std::string_view json, std::string_view binary) {
  element doc;
  auto err = parser.parse(json.data(), json.size()).get(doc);
  if (err == simdjson::NUMBER_ERROR) {
    std::string rewritten = OverflowsAsStrings(json);
    if (rewritten != json) err = parser.parse(rewritten).get(doc);
  }
  if (err) return InvalidArgument(std::string("malformed JSON in request body: ") + simdjson::error_message(err));
  if (doc.type() != element_type::OBJECT)
    return InvalidArgument("request body: expected a JSON object, got " + TypeOf(doc));
  RETURN_IF_ERROR(UniqueKeys(doc, ""));

  InferRequest req;
  element id;
  if (!doc.at_key("id").get(id)) {
    std::string_view s;
    if (id.get(s)) return InvalidArgument("id: expected a string, got " + TypeOf(id));
    req.id = std::string(s);
    req.has_id = true;
  }
  RETURN_IF_ERROR(ForEachParameter(doc, "", [&](std::string_view key, const element& v) -> Status {
    if (key == "binary_data_output") {
      ASSIGN_OR_RETURN(req.binary_output, BoolParam(v, "parameters.binary_data_output"));
    } else if (key == "timeout_us" || key == "timeout") {
      if (v.type() != element_type::INT64 || v.get_int64().value_unsafe() < 0) {
        return InvalidArgument("parameters." + std::string(key) + ": expected microseconds (a non-negative integer)");
      }
      req.timeout_us = v.get_int64().value_unsafe();
    } else if (key == "trace") {
      ASSIGN_OR_RETURN(req.trace, BoolParam(v, "parameters.trace"));
    }
    return Status::Ok();
  }));

  element inputs;
  if (doc.at_key("inputs").get(inputs)) return InvalidArgument("inputs: missing");
  if (inputs.type() != element_type::ARRAY) return InvalidArgument("inputs: expected an array, got " + TypeOf(inputs));
  std::vector<PendingBinary> pending;
  std::unordered_set<std::string_view> names;
  size_t i = 0;
  simdjson::dom::array input_list = inputs.get_array().value_unsafe();
  for (element in : input_list) {
    RETURN_IF_ERROR(DecodeInput(in, i++, json.size(), &req, &pending, &names));
  }
  RETURN_IF_ERROR(AttachBinary(binary, pending, &req));

  element outputs;
  if (!doc.at_key("outputs").get(outputs)) {
    if (outputs.type() != element_type::ARRAY)
      return InvalidArgument("outputs: expected an array, got " + TypeOf(outputs));
    size_t j = 0;
    simdjson::dom::array output_list = outputs.get_array().value_unsafe();
    for (element out : output_list) {
      std::string where = "outputs[" + std::to_string(j++) + "]";
      if (out.type() != element_type::OBJECT)
        return InvalidArgument(where + ": expected an object, got " + TypeOf(out));
      RETURN_IF_ERROR(UniqueKeys(out, where));
      RequestedOutput ro;
      std::string_view name;
      if (out.at_key("name").get(name)) return InvalidArgument(where + ".name: missing or not a string");
      ro.name = std::string(name);
      ro.binary = req.binary_output;
      RETURN_IF_ERROR(ForEachParameter(out, where + ".", [&](std::string_view key, const element& v) -> Status {
        if (key == "binary_data") {
          ASSIGN_OR_RETURN(ro.binary, BoolParam(v, where + ".parameters.binary_data"));
        } else if (key == "classification") {
          if (v.type() != element_type::INT64 || v.get_int64().value_unsafe() < 0) {
            return InvalidArgument(where +
                                   ".parameters.classification: expected a class count (a non-negative "
                                   "integer)");
          }
          ro.classification = v.get_int64().value_unsafe();
        }
        return Status::Ok();
      }));
      req.outputs.push_back(std::move(ro));
    }
  }
  return req;
}

}  // namespace

namespace {

template <typename T>
void WriteInts(JsonWriter& w, const uint8_t* p, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    T v;
    std::memcpy(&v, p + i * sizeof(T), sizeof(T));
    w.Int(v);
  }
}

template <typename T>
void WriteFloats(JsonWriter& w, const uint8_t* p, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    T v;
    std::memcpy(&v, p + i * sizeof(T), sizeof(T));
    w.Float(v);
  }
}

void WriteData(JsonWriter& w, const Tensor& t) {
  const uint8_t* p = t.data.data();
  int64_t n = t.dtype == DataType::kBytes
                  ? 0
                  : static_cast<int64_t>(t.data.size() / std::max<size_t>(1, DataTypeSize(t.dtype)));
  w.BeginArray();
  switch (t.dtype) {
    case DataType::kBool:
      for (int64_t i = 0; i < n; ++i) w.Bool(p[i] != 0);
      break;
    case DataType::kUint8: WriteInts<uint8_t>(w, p, n); break;
    case DataType::kUint16: WriteInts<uint16_t>(w, p, n); break;
    case DataType::kUint32: WriteInts<uint32_t>(w, p, n); break;
    case DataType::kUint64: WriteInts<uint64_t>(w, p, n); break;
    case DataType::kInt8: WriteInts<int8_t>(w, p, n); break;
    case DataType::kInt16: WriteInts<int16_t>(w, p, n); break;
    case DataType::kInt32: WriteInts<int32_t>(w, p, n); break;
    case DataType::kInt64: WriteInts<int64_t>(w, p, n); break;
    case DataType::kFp16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, p + i * 2, 2);
        w.Float(HalfToFloat(h));
      }
      break;
    case DataType::kFp32: WriteFloats<float>(w, p, n); break;
    case DataType::kFp64: WriteFloats<double>(w, p, n); break;
    case DataType::kBytes: {
      auto elems = SplitBytesElements(p, t.data.size());  // validated when the output was checked
      if (elems.ok()) {
        for (std::string_view e : *elems) w.String(e);
      }
      break;
    }
  }
  w.EndArray();
}

}  // namespace

EncodedResponse EncodeInferResponse(const InferResponse& r) {
  EncodedResponse out;
  std::string& s = out.body;
  size_t binary_bytes = 0;
  for (size_t i = 0; i < r.outputs.size(); ++i) {
    if (r.binary[i]) binary_bytes += r.outputs[i].data.size();
  }
  s.reserve(256 + binary_bytes);
  JsonWriter w(&s);
  w.BeginObject();
  w.Key("model_name");
  w.String(r.model_name);
  w.Key("model_version");
  w.String(std::to_string(r.model_version));
  if (r.has_id) {
    w.Key("id");
    w.String(r.id);
  }
  w.Key("outputs");
  w.BeginArray();
  bool any_binary = false;
  for (size_t i = 0; i < r.outputs.size(); ++i) {
    const Tensor& t = r.outputs[i];
    w.BeginObject();
    WriteTensorHeader(w, t.name, DataTypeName(t.dtype), t.shape);
    if (r.binary[i]) {
      any_binary = true;
      w.Key("parameters");
      w.BeginObject();
      w.Key("binary_data_size");
      w.Int(t.data.size());
      w.EndObject();
    } else {
      w.Key("data");
      WriteData(w, t);
    }
    w.EndObject();
  }
  w.EndArray();
  if (!r.parameters.empty()) {
    w.Key("parameters");
    w.BeginObject();
    for (const auto& [key, value] : r.parameters) {
      w.Key(key);
      if (const int64_t* n = std::get_if<int64_t>(&value)) {
        w.Int(*n);
      } else {
        w.String(std::get<std::string>(value));
      }
    }
    w.EndObject();
  }
  w.EndObject();
  if (any_binary) {
    out.json_length = s.size();
    for (size_t i = 0; i < r.outputs.size(); ++i) {
      if (r.binary[i]) s.append(reinterpret_cast<const char*>(r.outputs[i].data.data()), r.outputs[i].data.size());
    }
  }
  return out;
}

// --- the client side (v2_client_codec.h)

EncodedRequest EncodeInferRequest(const InferRequest& req, bool binary) {
  EncodedRequest out;
  std::string& s = out.body;
  JsonWriter w(&s);
  w.BeginObject();
  if (req.has_id) {
    w.Key("id");
    w.String(req.id);
  }
  w.Key("inputs");
  w.BeginArray();
  for (const Tensor& t : req.inputs) {
    w.BeginObject();
    WriteTensorHeader(w, t.name, DataTypeName(t.dtype), t.shape);
    if (binary) {
      w.Key("parameters");
      w.BeginObject();
      w.Key("binary_data_size");
      w.Int(t.data.size());
      w.EndObject();
    } else {
      w.Key("data");
      WriteData(w, t);
    }
    w.EndObject();
  }
  w.EndArray();
  if (!req.outputs.empty()) {
    w.Key("outputs");
    w.BeginArray();
    for (const RequestedOutput& o : req.outputs) {
      w.BeginObject();
      w.Key("name");
      w.String(o.name);
      if (o.binary && !binary) {
        w.Key("parameters");
        w.BeginObject();
        w.Key("binary_data");
        w.Bool(true);
        w.EndObject();
      }
      w.EndObject();
    }
    w.EndArray();
  }
  if (binary || req.binary_output || req.timeout_us > 0 || req.trace) {
    w.Key("parameters");
    w.BeginObject();
    if (binary || req.binary_output) {
      w.Key("binary_data_output");
      w.Bool(true);
    }
    if (req.timeout_us > 0) {
      w.Key("timeout");
      w.Int(req.timeout_us);
    }
    if (req.trace) {
      w.Key("trace");
      w.Bool(true);
    }
    w.EndObject();
  }
  w.EndObject();
  if (binary) {
    out.json_length = s.size();
    for (const Tensor& t : req.inputs) s.append(t.data.begin(), t.data.end());
  }
  return out;
}

Result<InferResponse> DecodeInferResponse(std::string_view body, std::optional<uint64_t> json_length) {
  std::string_view json = body;
  std::string_view binary;
  if (json_length) {
    if (*json_length > body.size()) {
      return InvalidArgument("Inference-Header-Content-Length is " + std::to_string(*json_length) +
                             " but the body has only " + std::to_string(body.size()) + " bytes");
    }
    json = body.substr(0, *json_length);
    binary = body.substr(*json_length);
  }
  simdjson::dom::parser parser;
  element doc;
  if (auto err = parser.parse(json.data(), json.size()).get(doc)) {
    return InvalidArgument(std::string("malformed JSON in the response: ") + simdjson::error_message(err));
  }
  if (doc.type() != element_type::OBJECT)
    return InvalidArgument("response: expected a JSON object, got " + TypeOf(doc));
  InferResponse resp;
  std::string_view s;
  if (!doc.at_key("model_name").get(s)) resp.model_name = std::string(s);
  if (!doc.at_key("model_version").get(s)) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), resp.model_version);
    if (ec != std::errc() || p != s.data() + s.size()) resp.model_version = 0;
  }
  if (!doc.at_key("id").get(s)) {
    resp.id = std::string(s);
    resp.has_id = true;
  }
  RETURN_IF_ERROR(ForEachParameter(doc, "response: ", [&](std::string_view key, const element& v) -> Status {
    if (v.type() == element_type::INT64) {
      resp.parameters.emplace_back(std::string(key), v.get_int64().value_unsafe());
    } else if (v.type() == element_type::STRING) {
      resp.parameters.emplace_back(std::string(key), std::string(v.get_string().value_unsafe()));
    }
    return Status::Ok();  // other kinds (bools, floats) are not carried on
  }));
  element outputs;
  if (doc.at_key("outputs").get(outputs) || outputs.type() != element_type::ARRAY) {
    return InvalidArgument("response: outputs: missing or not an array");
  }
  InferRequest tensors;  // the decoder of request inputs reads response outputs too: the same tensor objects
  std::vector<PendingBinary> pending;
  std::unordered_set<std::string_view> names;
  size_t i = 0;
  simdjson::dom::array list = outputs.get_array().value_unsafe();
  for (element out : list) RETURN_IF_ERROR(DecodeInput(out, i++, json.size(), &tensors, &pending, &names, "outputs"));
  RETURN_IF_ERROR(AttachBinary(binary, pending, &tensors));
  resp.outputs = std::move(tensors.inputs);
  resp.binary.assign(resp.outputs.size(), false);
  return resp;
}

const std::vector<std::string>& V2Extensions() {
  static const std::vector<std::string> kExtensions = {"binary_tensor_data", "model_repository", "model_configuration",
                                                       "statistics",         "parameters",       "classification"};
  return kExtensions;
}

std::string_view TritonTypeName(DataType dtype) {
  switch (dtype) {
    case DataType::kBool: return "TYPE_BOOL";
    case DataType::kUint8: return "TYPE_UINT8";
    case DataType::kUint16: return "TYPE_UINT16";
    case DataType::kUint32: return "TYPE_UINT32";
    case DataType::kUint64: return "TYPE_UINT64";
    case DataType::kInt8: return "TYPE_INT8";
    case DataType::kInt16: return "TYPE_INT16";
    case DataType::kInt32: return "TYPE_INT32";
    case DataType::kInt64: return "TYPE_INT64";
    case DataType::kFp16: return "TYPE_FP16";
    case DataType::kFp32: return "TYPE_FP32";
    case DataType::kFp64: return "TYPE_FP64";
    case DataType::kBytes: return "TYPE_STRING";
  }
  return "TYPE_INVALID";
}

}  // namespace berth
