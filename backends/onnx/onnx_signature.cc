#include "onnx_signature.h"

#include <set>

namespace berth {
namespace {

// One protobuf message being read: fields come as (number, wire type, payload).
class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}

  bool done() const { return pos_ >= data_.size(); }

  // Reads the next field key; false (with error_) on malformed input.
  bool Next(uint32_t* field, uint32_t* wire) {
    uint64_t key;
    if (!Varint(&key)) return false;
    *field = static_cast<uint32_t>(key >> 3);
    *wire = static_cast<uint32_t>(key & 7);
    return *field != 0;
  }

  bool Varint(uint64_t* v) {
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= data_.size()) return false;
      uint8_t b = static_cast<uint8_t>(data_[pos_++]);
      *v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return true;
    }
    return false;
  }

  bool Bytes(std::string_view* out) {
    uint64_t len;
    if (!Varint(&len) || len > data_.size() - pos_) return false;
    *out = data_.substr(pos_, len);
    pos_ += len;
    return true;
  }

  bool Skip(uint32_t wire) {
    uint64_t v;
    std::string_view s;
    switch (wire) {
      case 0: return Varint(&v);
      case 1: return Advance(8);
      case 2: return Bytes(&s);
      case 5: return Advance(4);
      default: return false;  // groups (3, 4) are not used by ONNX
    }
  }

 private:
  bool Advance(size_t n) {
    if (n > data_.size() - pos_) return false;
    pos_ += n;
    return true;
  }

  std::string_view data_;
  size_t pos_ = 0;
};

Status Malformed(const std::string& where) { return InvalidArgument("malformed ONNX protobuf in " + where); }

// TensorShapeProto.Dimension: dim_value = 1, dim_param = 2.
Result<OnnxDim> ParseDim(std::string_view bytes) {
  Reader r(bytes);
  OnnxDim d;
  uint32_t f, w;
  while (!r.done()) {
    if (!r.Next(&f, &w)) return Malformed("a dimension");
    uint64_t v;
    if (f == 1 && w == 0) {
      if (!r.Varint(&v)) return Malformed("a dimension");
      // 0 is what some exporters write for "unknown": treat it as dynamic, like dim_param.
      d.value = static_cast<int64_t>(v) > 0 ? static_cast<int64_t>(v) : -1;
    } else if (!r.Skip(w)) {
      return Malformed("a dimension");
    }
  }
  return d;
}

// ValueInfoProto: name = 1, type = 2 -> TypeProto.tensor_type = 1 -> elem_type = 1, shape = 2 -> dim = 1.
Result<OnnxValueInfo> ParseValueInfo(std::string_view bytes) {
  OnnxValueInfo info;
  Reader r(bytes);
  uint32_t f, w;
  while (!r.done()) {
    if (!r.Next(&f, &w)) return Malformed("a graph input/output");
    std::string_view s;
    if (f == 1 && w == 2) {
      if (!r.Bytes(&s)) return Malformed("a value name");
      info.name = std::string(s);
    } else if (f == 2 && w == 2) {
      std::string_view type;
      if (!r.Bytes(&type)) return Malformed("a value type");
      Reader tr(type);
      while (!tr.done()) {
        if (!tr.Next(&f, &w)) return Malformed("a value type");
        if (f == 1 && w == 2) {  // tensor_type
          std::string_view tensor;
          if (!tr.Bytes(&tensor)) return Malformed("a tensor type");
          Reader t(tensor);
          while (!t.done()) {
            if (!t.Next(&f, &w)) return Malformed("a tensor type");
            uint64_t v;
            if (f == 1 && w == 0) {
              if (!t.Varint(&v)) return Malformed("an element type");
              info.elem_type = static_cast<int32_t>(v);
            } else if (f == 2 && w == 2) {
              std::string_view shape;
              if (!t.Bytes(&shape)) return Malformed("a shape");
              Reader sr(shape);
              while (!sr.done()) {
                if (!sr.Next(&f, &w)) return Malformed("a shape");
                std::string_view dim;
                if (f == 1 && w == 2) {
                  if (!sr.Bytes(&dim)) return Malformed("a dimension");
                  ASSIGN_OR_RETURN(OnnxDim d, ParseDim(dim));
                  info.dims.push_back(d);
                } else if (!sr.Skip(w)) {
                  return Malformed("a shape");
                }
              }
            } else if (!t.Skip(w)) {
              return Malformed("a tensor type");
            }
          }
        } else if (!tr.Skip(w)) {
          return Malformed("a value type");
        }
      }
    } else if (!r.Skip(w)) {
      return Malformed("a graph input/output");
    }
  }
  return info;
}

// TensorProto.name = 8 (initializers, which old exporters also list as inputs).
Result<std::string> InitializerName(std::string_view bytes) {
  Reader r(bytes);
  uint32_t f, w;
  while (!r.done()) {
    if (!r.Next(&f, &w)) return Malformed("an initializer");
    std::string_view s;
    if (f == 8 && w == 2) {
      if (!r.Bytes(&s)) return Malformed("an initializer name");
      return std::string(s);
    }
    if (!r.Skip(w)) return Malformed("an initializer");
  }
  return std::string();
}

}  // namespace

Result<OnnxSignature> ParseOnnxSignature(std::string_view model_bytes) {
  // ModelProto.graph = 7; GraphProto: initializer = 5, input = 11, output = 12.
  Reader model(model_bytes);
  std::string_view graph;
  bool found = false;
  uint32_t f, w;
  while (!model.done()) {
    if (!model.Next(&f, &w)) return Malformed("the model");
    if (f == 7 && w == 2) {
      if (!model.Bytes(&graph)) return Malformed("the graph");
      found = true;
    } else if (!model.Skip(w)) {
      return Malformed("the model");
    }
  }
  if (!found) return InvalidArgument("not an ONNX model: no graph");
  OnnxSignature sig;
  std::vector<OnnxValueInfo> inputs;
  std::set<std::string> initializers;
  Reader g(graph);
  while (!g.done()) {
    if (!g.Next(&f, &w)) return Malformed("the graph");
    std::string_view bytes;
    if (w == 2 && (f == 5 || f == 11 || f == 12)) {
      if (!g.Bytes(&bytes)) return Malformed("the graph");
      if (f == 5) {
        ASSIGN_OR_RETURN(std::string name, InitializerName(bytes));
        initializers.insert(name);
      } else {
        ASSIGN_OR_RETURN(OnnxValueInfo info, ParseValueInfo(bytes));
        (f == 11 ? inputs : sig.outputs).push_back(std::move(info));
      }
    } else if (!g.Skip(w)) {
      return Malformed("the graph");
    }
  }
  for (auto& in : inputs) {
    if (!initializers.count(in.name)) sig.inputs.push_back(std::move(in));
  }
  return sig;
}

}  // namespace berth
