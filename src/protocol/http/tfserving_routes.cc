// TensorFlow Serving's REST API on the HTTP port, for clients written
// against TF Serving:
//   GET  /v1/models/{m}[/versions/{v}]            version status
//   GET  /v1/models/{m}[/versions/{v}]/metadata   the signature (serving_default)
//   POST /v1/models/{m}[/versions/{v}]:predict    row ("instances") or columnar ("inputs") format
// Errors are {"error": "..."}, with the status codes of the v2 routes.
#include <chrono>

#include "common/json_writer.h"
#include "protocol/http/http_util.h"
#include "protocol/http/status_mapping.h"
#include "protocol/http/tfserving_codec.h"
#include "protocol/http/v2_handler.h"

namespace berth {
namespace {

namespace http = boost::beast::http;

std::string_view TfState(ModelState s) {
  switch (s) {
    case ModelState::kReady: return "AVAILABLE";
    case ModelState::kLoading: return "LOADING";
    case ModelState::kUnavailable: return "END";
  }
  return "UNKNOWN";
}

void WriteSignatureTensors(JsonWriter& w, const std::vector<TensorMetadata>& specs) {
  w.BeginObject();
  for (const TensorMetadata& s : specs) {
    w.Key(s.name);
    w.BeginObject();
    w.Key("dtype");
    w.String(TfTypeName(s.dtype));
    w.Key("tensor_shape");
    w.BeginObject();
    w.Key("dim");
    w.BeginArray();
    for (int64_t d : s.shape) {
      w.BeginObject();
      w.Key("size");
      w.String(std::to_string(d));  // int64 in proto3 JSON is a string
      w.Key("name");
      w.String("");
      w.EndObject();
    }
    w.EndArray();
    w.Key("unknown_rank");
    w.Bool(false);
    w.EndObject();
    w.Key("name");
    w.String(s.name);
    w.EndObject();
  }
  w.EndObject();
}

}  // namespace

HttpResponse V2Handler::TfModelStatus(std::string_view model, int64_t version) const {
  std::string out;
  JsonWriter w(&out);
  w.BeginObject();
  w.Key("model_version_status");
  w.BeginArray();
  int found = 0;
  for (const IndexEntry& e : server_->Index()) {
    if (e.name != model || (version >= 0 && e.version != std::to_string(version))) continue;
    ++found;
    w.BeginObject();
    w.Key("version");
    w.String(e.version);
    w.Key("state");
    w.String(TfState(e.state));
    w.Key("status");
    w.BeginObject();
    w.Key("error_code");
    w.String(e.state == ModelState::kUnavailable ? "UNAVAILABLE" : "OK");
    w.Key("error_message");
    w.String(e.state == ModelState::kUnavailable ? e.reason : "");
    w.EndObject();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  if (found == 0) {
    if (version >= 0 && server_->ModelReady(model, -1).code() != StatusCode::kNotFound) {
      return ErrorResponse(NotFound("model '" + std::string(model) + "' has no version " + std::to_string(version)));
    }
    return ErrorResponse(NotFound("unknown model '" + std::string(model) + "'"));
  }
  return JsonResponse(std::move(out));
}

HttpResponse V2Handler::TfModelMetadata(std::string_view model, int64_t version) const {
  Result<ServedModel> served = server_->Resolve(model, version);
  if (!served.ok()) return ErrorResponse(served.status());
  Result<berth::ModelMetadata> m = server_->Metadata(model, served->version);
  if (!m.ok()) return ErrorResponse(m.status());
  std::string out;
  JsonWriter w(&out);
  w.BeginObject();
  w.Key("model_spec");
  w.BeginObject();
  w.Key("name");
  w.String(m->name);
  w.Key("signature_name");
  w.String("");
  w.Key("version");
  w.String(std::to_string(served->version));
  w.EndObject();
  w.Key("metadata");
  w.BeginObject();
  w.Key("signature_def");
  w.BeginObject();
  w.Key("signature_def");
  w.BeginObject();
  w.Key("serving_default");
  w.BeginObject();
  w.Key("inputs");
  WriteSignatureTensors(w, m->inputs);
  w.Key("outputs");
  WriteSignatureTensors(w, m->outputs);
  w.Key("method_name");
  w.String("tensorflow/serving/predict");
  w.EndObject();
  w.EndObject();
  w.EndObject();
  w.EndObject();
  w.EndObject();
  return JsonResponse(std::move(out));
}

void V2Handler::TfPredict(HttpRequest&& req, std::string_view model, int64_t version, Responder respond) {
  const InferOptions options = LoopInferOptions(req);
  const bool offload = req.body().size() > options_.offload_bytes;
  auto run = [this, options](const HttpRequest& r, std::string_view m, int64_t v, Responder done) {
    // JSON carries no datatypes: the model's configuration gives them.
    Result<ServedModel> served = server_->Resolve(m, v);
    if (!served.ok()) return done(ErrorResponse(served.status()));
    std::string storage;
    Result<std::string_view> body = DecodedBody(r, options_.max_body_bytes, &storage);
    if (!body.ok()) return done(BodyError(body.status(), r));
    Result<TfPredictRequest> decoded = DecodeTfPredict(*body, *served->config);
    TfFormat format = decoded.ok() ? decoded->format : TfFormat::kRow;
    Result<std::unique_ptr<InferRequest>> request =
        decoded.ok() ? Result<std::unique_ptr<InferRequest>>(std::move(decoded->request))
                     : Result<std::unique_ptr<InferRequest>>(decoded.status());
    server_->InferAsync(
        m, served->version, std::move(request),
        [done = std::move(done), format](Result<InferResponse> result) {
          if (!result.ok()) return done(ErrorResponse(result.status()));
          Result<std::string> json = EncodeTfPredict(*result, format);
          done(json.ok() ? JsonResponse(std::move(json).value()) : ErrorResponse(json.status()));
        },
        options);
  };
  if (!offload) return run(req, model, version, std::move(respond));
  auto shared = std::make_shared<HttpRequest>(std::move(req));
  decoders_->Submit([run, shared, name = std::string(model), version, respond = std::move(respond)]() mutable {
    run(*shared, name, version, std::move(respond));
  });
}

void V2Handler::HandleTfServing(HttpRequest&& req, const std::vector<std::string_view>& p, Responder respond) {
  http::verb method = req.method();
  auto get = [&](auto&& make) { respond(method == http::verb::get ? make() : MethodNotAllowed(http::verb::get)); };
  auto not_found = [&] { respond(ErrorResponse(NotFound("no such endpoint: " + std::string(req.target())))); };
  if (p.size() < 3 || p[1] != "models" || p[2].empty()) return not_found();
  // The verb rides on the last segment: /v1/models/m:predict, /v1/models/m/versions/3:predict
  std::string_view last = p.back();
  std::string_view verb;
  if (auto colon = last.rfind(':'); colon != std::string_view::npos) {
    verb = last.substr(colon + 1);
    last = last.substr(0, colon);
  }
  std::string_view model = p.size() == 3 ? last : p[2];
  int64_t version = -1;
  size_t rest = 3;
  if (p.size() >= 5 && p[3] == "versions") {
    Result<int64_t> v = ParseVersion(p.size() == 5 ? last : p[4]);
    if (!v.ok()) return respond(ErrorResponse(v.status()));
    version = *v;
    rest = 5;
  } else if (p.size() >= 5 && p[3] == "labels") {
    return respond(ErrorResponse(NotFound("version labels are not supported: use /versions/{version}")));
  }
  if (!verb.empty()) {
    if (p.size() != rest) return not_found();
    if (verb == "classify" || verb == "regress") {
      return respond(ErrorResponse(Unimplemented(":" + std::string(verb) + " is not supported: use :predict")));
    }
    if (verb != "predict") return not_found();
    if (method != http::verb::post) return respond(MethodNotAllowed(http::verb::post));
    return TfPredict(std::move(req), model, version, std::move(respond));
  }
  if (p.size() == rest) return get([&] { return TfModelStatus(model, version); });
  if (p.size() == rest + 1 && p[rest] == "metadata") return get([&] { return TfModelMetadata(model, version); });
  not_found();
}

}  // namespace berth
