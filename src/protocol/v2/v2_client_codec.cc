#include "protocol/v2/v2_client_codec.h"

#include <simdjson.h>

namespace berth {
namespace {

Status ReadTensors(simdjson::dom::element doc, const char* key, std::vector<V2TensorMetadata>* out) {
  simdjson::dom::array list;
  if (doc[key].get(list)) return InvalidArgument(std::string("model metadata has no \"") + key + "\" array");
  for (simdjson::dom::element t : list) {
    V2TensorMetadata spec;
    std::string_view name, dtype;
    simdjson::dom::array shape;
    if (t["name"].get(name) || t["datatype"].get(dtype) || t["shape"].get(shape)) {
      return InvalidArgument(std::string("model metadata: an entry of ") + key + " lacks name, datatype or shape");
    }
    spec.name = std::string(name);
    auto dt = ParseDataType(dtype);
    if (!dt) return InvalidArgument("model metadata: '" + spec.name + "': unknown datatype");
    spec.dtype = *dt;
    for (simdjson::dom::element d : shape) {
      int64_t v = 0;
      if (d.get(v)) return InvalidArgument("model metadata: '" + spec.name + "': bad shape");
      spec.shape.push_back(v);
    }
    out->push_back(std::move(spec));
  }
  return Status::Ok();
}

}  // namespace

Result<V2ModelMetadata> DecodeModelMetadata(std::string_view body) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (auto err = parser.parse(body.data(), body.size()).get(doc)) {
    return InvalidArgument(std::string("model metadata is not JSON: ") + simdjson::error_message(err));
  }
  V2ModelMetadata m;
  std::string_view s;
  if (!doc["name"].get(s)) m.name = std::string(s);
  if (!doc["platform"].get(s)) m.platform = std::string(s);
  simdjson::dom::array versions;
  if (!doc["versions"].get(versions)) {
    for (simdjson::dom::element v : versions) {
      if (!v.get(s)) m.versions.push_back(std::string(s));
    }
  }
  RETURN_IF_ERROR(ReadTensors(doc, "inputs", &m.inputs));
  simdjson::dom::array outputs;
  if (!doc["outputs"].get(outputs)) RETURN_IF_ERROR(ReadTensors(doc, "outputs", &m.outputs));
  return m;
}

}  // namespace berth
