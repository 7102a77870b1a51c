// GET /v2/openapi.json: an OpenAPI 3.1 document of the v2 HTTP endpoints, with
// a request and a response schema per ready model built from its metadata
// (input names, datatypes, shapes), so that a generic client or validator
// knows what each model takes. Models that are not ready are left out
// (their metadata is not known); the generic /v2/models/{model_name} paths
// cover them.
#include <set>
#include <string>
#include <vector>

#include "berth/version.h"
#include "common/json_writer.h"
#include "protocol/http/status_mapping.h"
#include "protocol/http/v2_handler.h"

namespace berth {
namespace {

// The endpoints every server has, and the schemas they share. JSON Schema 2020-12 (OpenAPI 3.1's dialect).
constexpr std::string_view kCommonPaths = R"json(
"/v2/health/live":{"get":{"summary":"The server is live","tags":["health"],"security":[],
  "responses":{"200":{"description":"live"}}}},
"/v2/health/ready":{"get":{"summary":"The server is ready (every model it was asked to serve is)","tags":["health"],
  "security":[],"responses":{"200":{"description":"ready"},"503":{"$ref":"#/components/responses/error"}}}},
"/v2":{"get":{"summary":"Server metadata","tags":["server"],"responses":{"200":{"description":"name, version and extensions",
  "content":{"application/json":{"schema":{"$ref":"#/components/schemas/server_metadata"}}}},
  "401":{"$ref":"#/components/responses/error"}}}},
"/v2/repository/index":{"post":{"summary":"Every model of the repository, its state and the reason","tags":["repository"],
  "requestBody":{"required":false,"content":{"application/json":{"schema":{"type":"object",
    "properties":{"ready":{"type":"boolean"}}}}}},
  "responses":{"200":{"description":"the models","content":{"application/json":{"schema":{"type":"array",
    "items":{"$ref":"#/components/schemas/index_entry"}}}}},"400":{"$ref":"#/components/responses/error"},
    "401":{"$ref":"#/components/responses/error"}}}},
"/v2/repository/models/{model_name}/load":{"post":{"summary":"Load (or reload) a model; needs the model-control token",
  "tags":["repository"],"parameters":[{"$ref":"#/components/parameters/model_name"}],
  "responses":{"200":{"description":"loaded"},"default":{"$ref":"#/components/responses/error"}}}},
"/v2/repository/models/{model_name}/unload":{"post":{"summary":"Unload a model; needs the model-control token",
  "tags":["repository"],"parameters":[{"$ref":"#/components/parameters/model_name"}],
  "responses":{"200":{"description":"unloaded"},"default":{"$ref":"#/components/responses/error"}}}},
"/v2/models/stats":{"get":{"summary":"Statistics of every model (Triton's statistics extension)","tags":["statistics"],
  "responses":{"200":{"description":"the statistics","content":{"application/json":{"schema":{"type":"object"}}}},
    "401":{"$ref":"#/components/responses/error"}}}},
"/v2/models/{model_name}":{"get":{"summary":"Model metadata","tags":["models"],
  "parameters":[{"$ref":"#/components/parameters/model_name"}],
  "responses":{"200":{"description":"the model's inputs and outputs","content":{"application/json":{"schema":
    {"$ref":"#/components/schemas/model_metadata"}}}},"default":{"$ref":"#/components/responses/error"}}}},
"/v2/models/{model_name}/ready":{"get":{"summary":"The model is ready","tags":["models"],
  "parameters":[{"$ref":"#/components/parameters/model_name"}],
  "responses":{"200":{"description":"ready"},"default":{"$ref":"#/components/responses/error"}}}},
"/v2/models/{model_name}/config":{"get":{"summary":"The model's configuration (Triton's model configuration extension)",
  "tags":["models"],"parameters":[{"$ref":"#/components/parameters/model_name"}],
  "responses":{"200":{"description":"the configuration","content":{"application/json":{"schema":{"type":"object"}}}},
    "default":{"$ref":"#/components/responses/error"}}}}
)json";

constexpr std::string_view kCommonComponents = R"json(
"parameters":{"model_name":{"name":"model_name","in":"path","required":true,"schema":{"type":"string"}}},
"responses":{"error":{"description":"an error","content":{"application/json":{"schema":
  {"$ref":"#/components/schemas/error"}}}}},
"securitySchemes":{"bearer":{"type":"http","scheme":"bearer"}}
)json";

constexpr std::string_view kCommonSchemas = R"json(
"error":{"type":"object","required":["error"],"properties":{"error":{"type":"string"}}},
"server_metadata":{"type":"object","required":["name","version","extensions"],"properties":{
  "name":{"type":"string"},"version":{"type":"string"},"extensions":{"type":"array","items":{"type":"string"}}}},
"index_entry":{"type":"object","required":["name","state"],"properties":{"name":{"type":"string"},
  "version":{"type":"string"},"state":{"type":"string"},"reason":{"type":"string"}}},
"tensor_metadata":{"type":"object","required":["name","datatype","shape"],"properties":{"name":{"type":"string"},
  "datatype":{"type":"string"},"shape":{"type":"array","items":{"type":"integer"}}}},
"model_metadata":{"type":"object","required":["name","inputs","outputs"],"properties":{"name":{"type":"string"},
  "versions":{"type":"array","items":{"type":"string"}},"platform":{"type":"string"},
  "inputs":{"type":"array","items":{"$ref":"#/components/schemas/tensor_metadata"}},
  "outputs":{"type":"array","items":{"$ref":"#/components/schemas/tensor_metadata"}}}},
"parameters":{"type":"object","additionalProperties":{"type":["string","number","boolean"]}},
"requested_output":{"type":"object","required":["name"],"properties":{"name":{"type":"string"},
  "parameters":{"$ref":"#/components/schemas/parameters"}}},
"numbers":{"type":"array","items":{"anyOf":[{"type":["number","null"]},{"$ref":"#/components/schemas/numbers"}]}},
"integers":{"type":"array","items":{"anyOf":[{"type":"integer"},{"$ref":"#/components/schemas/integers"}]}},
"booleans":{"type":"array","items":{"anyOf":[{"type":"boolean"},{"$ref":"#/components/schemas/booleans"}]}},
"strings":{"type":"array","items":{"anyOf":[{"type":"string"},{"$ref":"#/components/schemas/strings"}]}}
)json";

// The schema of a tensor's "data": nested arrays of the datatype's JSON type.
std::string_view DataSchema(DataType t) {
  switch (t) {
    case DataType::kBool: return "booleans";
    case DataType::kBytes: return "strings";
    case DataType::kFp16:
    case DataType::kFp32:
    case DataType::kFp64: return "numbers";
    default: return "integers";
  }
}

// {"name": NAME, "datatype": TYPE, "shape": [...], "data": [...]} for one tensor: the name and datatype
// fixed, the shape's rank fixed with each known dimension fixed.
void TensorSchema(JsonWriter& w, const TensorMetadata& t) {
  w.BeginObject();
  w.Key("type");
  w.String("object");
  w.Key("required");
  w.BeginArray();
  for (const char* k : {"name", "datatype", "shape", "data"}) w.String(k);
  w.EndArray();
  w.Key("properties");
  w.BeginObject();
  w.Key("name");
  w.BeginObject();
  w.Key("const");
  w.String(t.name);
  w.EndObject();
  w.Key("datatype");
  w.BeginObject();
  w.Key("const");
  w.String(DataTypeName(t.dtype));
  w.EndObject();
  w.Key("shape");
  w.BeginObject();
  w.Key("type");
  w.String("array");
  if (t.shape.empty()) {  // a scalar: JSON Schema wants a non-empty prefixItems
    w.Key("maxItems");
    w.Int(0);
    w.EndObject();
  } else {
    w.Key("prefixItems");
    w.BeginArray();
    for (int64_t d : t.shape) {
      w.BeginObject();
      if (d < 0) {
        w.Key("type");
        w.String("integer");
        w.Key("minimum");
        w.Int(0);
      } else {
        w.Key("const");
        w.Int(d);
      }
      w.EndObject();
    }
    w.EndArray();
    w.Key("minItems");
    w.Int(static_cast<int64_t>(t.shape.size()));
    w.Key("items");
    w.Bool(false);
    w.EndObject();
  }
  w.Key("data");
  w.BeginObject();
  w.Key("$ref");
  w.String("#/components/schemas/" + std::string(DataSchema(t.dtype)));
  w.EndObject();
  w.Key("parameters");
  w.BeginObject();
  w.Key("$ref");
  w.String("#/components/schemas/parameters");
  w.EndObject();
  w.EndObject();
  w.Key("additionalProperties");
  w.Bool(false);
  w.EndObject();
}

// The request's inputs: each of `tensors` at most once, and every one that is not optional exactly once.
void InputList(JsonWriter& w, const std::vector<TensorMetadata>& tensors) {
  w.BeginObject();
  w.Key("type");
  w.String("array");
  w.Key("maxItems");
  w.Int(static_cast<int64_t>(tensors.size()));
  if (tensors.empty()) {
    w.EndObject();
    return;
  }
  w.Key("items");
  w.BeginObject();
  w.Key("oneOf");
  w.BeginArray();
  for (const TensorMetadata& t : tensors) TensorSchema(w, t);
  w.EndArray();
  w.EndObject();
  w.Key("allOf");
  w.BeginArray();
  for (const TensorMetadata& t : tensors) {
    w.BeginObject();
    w.Key("contains");
    w.BeginObject();
    w.Key("properties");
    w.BeginObject();
    w.Key("name");
    w.BeginObject();
    w.Key("const");
    w.String(t.name);
    w.EndObject();
    w.EndObject();
    w.EndObject();
    w.Key("minContains");
    w.Int(t.optional ? 0 : 1);
    w.Key("maxContains");
    w.Int(1);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
}

void RequestSchema(JsonWriter& w, const ModelMetadata& m) {
  w.BeginObject();
  w.Key("type");
  w.String("object");
  w.Key("required");
  w.BeginArray();
  w.String("inputs");
  w.EndArray();
  w.Key("properties");
  w.BeginObject();
  w.Key("id");
  w.Raw(R"({"type":"string"})");
  w.Key("parameters");
  w.Raw(R"({"$ref":"#/components/schemas/parameters"})");
  w.Key("inputs");
  InputList(w, m.inputs);
  w.Key("outputs");
  w.Raw(R"({"type":"array","items":{"$ref":"#/components/schemas/requested_output"}})");
  w.EndObject();
  w.Key("additionalProperties");
  w.Bool(false);
  w.EndObject();
}

void ResponseSchema(JsonWriter& w, const ModelMetadata& m) {
  w.BeginObject();
  w.Key("type");
  w.String("object");
  w.Key("required");
  w.Raw(R"(["model_name","outputs"])");
  w.Key("properties");
  w.BeginObject();
  w.Key("model_name");
  w.BeginObject();
  w.Key("const");
  w.String(m.name);
  w.EndObject();
  w.Key("model_version");
  w.Raw(R"({"type":"string"})");
  w.Key("id");
  w.Raw(R"({"type":"string"})");
  w.Key("parameters");
  w.Raw(R"({"$ref":"#/components/schemas/parameters"})");
  w.Key("outputs");
  // A classification output is BYTES "score:index:label" whatever the model's datatype: not constrained here.
  w.Raw(R"({"type":"array","items":{"type":"object","required":["name","datatype","shape"]}})");
  w.EndObject();
  w.EndObject();
}

void InferPath(JsonWriter& w, const std::string& name) {
  const std::string schemas = "#/components/schemas/" + name;
  w.Key("/v2/models/" + name + "/infer");
  w.BeginObject();
  w.Key("post");
  w.BeginObject();
  w.Key("summary");
  w.String("Inference on " + name);
  w.Key("tags");
  w.Raw(R"(["inference"])");
  w.Key("operationId");
  w.String("infer_" + name);
  w.Key("requestBody");
  w.BeginObject();
  w.Key("required");
  w.Bool(true);
  w.Key("content");
  w.BeginObject();
  w.Key("application/json");
  w.BeginObject();
  w.Key("schema");
  w.BeginObject();
  w.Key("$ref");
  w.String(schemas + ".request");
  w.EndObject();
  w.EndObject();
  w.EndObject();
  w.EndObject();
  w.Key("responses");
  w.BeginObject();
  w.Key("200");
  w.BeginObject();
  w.Key("description");
  w.String("the outputs");
  w.Key("content");
  w.BeginObject();
  w.Key("application/json");
  w.BeginObject();
  w.Key("schema");
  w.BeginObject();
  w.Key("$ref");
  w.String(schemas + ".response");
  w.EndObject();
  w.EndObject();
  w.EndObject();
  w.EndObject();
  w.Key("default");
  w.Raw(R"({"$ref":"#/components/responses/error"})");
  w.EndObject();
  w.EndObject();
  w.EndObject();
}

}  // namespace

HttpResponse V2Handler::OpenApi() const {
  std::vector<berth::ModelMetadata> ready;
  std::set<std::string> seen;  // the index has one entry per version
  for (const IndexEntry& e : server_->Index()) {
    if (e.state != ModelState::kReady || !seen.insert(e.name).second) continue;
    Result<berth::ModelMetadata> m = server_->Metadata(e.name, -1);
    if (m.ok()) ready.push_back(std::move(*m));
  }
  std::string out;
  JsonWriter w(&out);
  w.BeginObject();
  w.Key("openapi");
  w.String("3.1.0");
  w.Key("info");
  w.BeginObject();
  w.Key("title");
  w.String("berth: Open Inference Protocol v2");
  w.Key("version");
  w.String(Version());
  w.Key("description");
  w.String(
      "The v2 HTTP endpoints of this server, with a request and a response schema for each model that was ready "
      "when this document was made.");
  w.EndObject();
  if (access_.requires_inference_token()) {
    w.Key("security");
    w.Raw(R"([{"bearer":[]}])");
  }
  w.Key("paths");
  w.BeginObject();
  w.Raw(kCommonPaths);
  for (const berth::ModelMetadata& m : ready) InferPath(w, m.name);
  w.EndObject();
  w.Key("components");
  w.BeginObject();
  w.Raw(kCommonComponents);
  w.Key("schemas");
  w.BeginObject();
  w.Raw(kCommonSchemas);
  for (const berth::ModelMetadata& m : ready) {
    w.Key(m.name + ".request");
    RequestSchema(w, m);
    w.Key(m.name + ".response");
    ResponseSchema(w, m);
  }
  w.EndObject();
  w.EndObject();
  w.EndObject();
  return JsonResponse(std::move(out));
}

}  // namespace berth
