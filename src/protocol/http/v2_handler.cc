#include "protocol/http/v2_handler.h"

#include <simdjson.h>
#include <spdlog/spdlog.h>

#include <charconv>
#include <chrono>
#include <vector>

#include "berth/version.h"
#include "common/json_writer.h"
#include "protocol/http/http_util.h"
#include "protocol/http/raw_upload.h"
#include "protocol/http/status_mapping.h"
#include "protocol/v2/v2_codec.h"
#include "request/traceparent.h"

namespace berth {
namespace {

namespace http = boost::beast::http;

void WriteSpecs(JsonWriter& w, const std::vector<TensorMetadata>& specs) {
  w.BeginArray();
  for (const auto& s : specs) {
    w.BeginObject();
    WriteTensorHeader(w, s.name, DataTypeName(s.dtype), s.shape);
    w.EndObject();
  }
  w.EndArray();
}

std::string_view AuthorizationOf(const HttpRequest& req) {
  auto it = req.find(http::field::authorization);
  return it == req.end() ? std::string_view() : it->value();
}

}  // namespace

V2Handler::V2Handler(InferenceServer* server, AccessPolicy access, Options options)
    : server_(server),
      access_(std::move(access)),
      options_(options),
      decoders_(std::make_unique<WorkerPool>(options.decode_threads, "berth-decode")) {}

namespace {

enum class Route { kHealth, kControl, kOther };

Route RouteOf(const std::vector<std::string_view>& p) {
  if (p.size() == 3 && p[0] == "v2" && p[1] == "health") return Route::kHealth;
  if (p.size() == 5 && p[0] == "v2" && p[1] == "repository" && p[2] == "models" &&
      (p[4] == "load" || p[4] == "unload")) {
    return Route::kControl;
  }
  return Route::kOther;
}

}  // namespace

std::optional<HttpResponse> V2Handler::Admit(const HttpRequest& headers) {
  Route route = RouteOf(SplitPath(headers.target()));
  if (route == Route::kHealth) return std::nullopt;
  Status allowed = route == Route::kControl ? access_.CheckModelControl(AuthorizationOf(headers))
                                            : access_.CheckInference(AuthorizationOf(headers));
  if (allowed.ok()) return std::nullopt;
  return ErrorResponse(allowed);
}

bool V2Handler::Essential(const HttpRequest& headers) const {
  return RouteOf(SplitPath(headers.target())) == Route::kHealth;
}

void V2Handler::Handle(HttpRequest&& req, Responder respond) {
  std::vector<std::string_view> p = SplitPath(req.target());
  http::verb method = req.method();
  auto only = [&](http::verb v, auto&& make) { respond(method == v ? make() : MethodNotAllowed(v)); };
  if (p.empty() || (p[0] != "v2" && p[0] != "v1")) {
    return respond(ErrorResponse(NotFound("no such endpoint: " + std::string(req.target()))));
  }
  Route route = RouteOf(p);
  if (route == Route::kOther) {
    if (Status allowed = access_.CheckInference(AuthorizationOf(req)); !allowed.ok()) {
      return respond(ErrorResponse(allowed));
    }
  }
  if (p[0] == "v1") return HandleTfServing(std::move(req), p, std::move(respond));
  bool control = route == Route::kControl;
  if (control) {
    if (method != http::verb::post) return respond(MethodNotAllowed(http::verb::post));
    return RepositoryControl(req, p[3], p[4] == "load", std::move(respond));
  }
  if (p.size() == 1) return only(http::verb::get, [&] { return ServerMetadata(); });
  if (p.size() == 3 && p[1] == "health" && p[2] == "live") {
    return only(http::verb::get, [&] { return Empty(http::status::ok); });
  }
  if (p.size() == 3 && p[1] == "health" && p[2] == "ready") return only(http::verb::get, [&] { return Ready(); });
  if (p.size() == 3 && p[1] == "repository" && p[2] == "index") {
    return only(http::verb::post, [&] { return RepositoryIndex(req); });
  }
  if (p.size() == 2 && p[1] == "openapi.json") return only(http::verb::get, [&] { return OpenApi(); });
  if (p.size() == 3 && p[1] == "models" && p[2] == "stats") {
    return only(http::verb::get, [&] { return ModelStatsJson("", -1); });
  }
  if (p.size() >= 3 && p[1] == "models") {
    std::string_view model = p[2];
    int64_t version = -1;
    size_t rest = 3;
    if (p.size() >= 5 && p[3] == "versions") {
      auto v = ParseVersion(p[4]);
      if (!v.ok()) return respond(ErrorResponse(v.status()));
      version = *v;
      rest = 5;
    }
    if (!IsValidModelName(model)) {
      return respond(ErrorResponse(NotFound("unknown model '" + std::string(model) + "'")));
    }
    if (p.size() == rest) return only(http::verb::get, [&] { return ModelMetadata(model, version); });
    if (p.size() == rest + 1 && p[rest] == "ready") {
      return only(http::verb::get, [&] { return ModelReady(model, version); });
    }
    if (p.size() == rest + 1 && p[rest] == "config") {
      return only(http::verb::get, [&] { return ModelConfigJson(model, version); });
    }
    if (p.size() == rest + 1 && p[rest] == "stats") {
      return only(http::verb::get, [&] { return ModelStatsJson(model, version); });
    }
    if (p.size() == rest + 1 && p[rest] == "infer") {
      if (method != http::verb::post) return respond(MethodNotAllowed(http::verb::post));
      return Infer(std::move(req), model, version, std::move(respond));
    }
  }
  respond(ErrorResponse(NotFound("no such endpoint: " + std::string(req.target()))));
}

HttpResponse V2Handler::ServerMetadata() const {
  std::string out;
  JsonWriter w(&out);
  w.BeginObject();
  w.Key("name");
  w.String("berth");
  w.Key("version");
  w.String(Version());
  w.Key("extensions");
  w.BeginArray();
  for (const std::string& e : V2Extensions()) w.String(e);
  w.EndArray();
  w.EndObject();
  return JsonResponse(std::move(out));
}

HttpResponse V2Handler::Ready() const {
  Status ready = server_->Ready();
  return ready.ok() ? Empty(http::status::ok) : ErrorResponse(ready);
}

HttpResponse V2Handler::ModelMetadata(std::string_view model, int64_t version) const {
  Result<berth::ModelMetadata> m = server_->Metadata(model, version);
  if (!m.ok()) return ErrorResponse(m.status());
  std::string out;
  JsonWriter w(&out);
  w.BeginObject();
  w.Key("name");
  w.String(m->name);
  w.Key("versions");
  w.BeginArray();
  for (int64_t v : m->versions) w.String(std::to_string(v));
  w.EndArray();
  w.Key("platform");
  w.String(m->platform);
  w.Key("inputs");
  WriteSpecs(w, m->inputs);
  w.Key("outputs");
  WriteSpecs(w, m->outputs);
  w.EndObject();
  return JsonResponse(std::move(out));
}

HttpResponse V2Handler::ModelReady(std::string_view model, int64_t version) const {
  Status ready = server_->ModelReady(model, version);
  return ready.ok() ? Empty(http::status::ok) : ErrorResponse(ready);
}

namespace {

Result<std::unique_ptr<InferRequest>> DecodeBody(const HttpRequest& req, uint64_t max_body_bytes) {
  std::optional<uint64_t> json_length;
  if (auto it = req.find("Inference-Header-Content-Length"); it != req.end()) {
    std::string_view v = it->value();
    uint64_t n = 0;
    auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (v.empty() || ec != std::errc() || ptr != v.data() + v.size()) {
      return InvalidArgument("Inference-Header-Content-Length: expected a byte count, got '" + std::string(v) + "'");
    }
    json_length = n;
  }
  std::string decompressed;
  ASSIGN_OR_RETURN(std::string_view body, DecodedBody(req, max_body_bytes, &decompressed));
  ASSIGN_OR_RETURN(InferRequest decoded, DecodeInferRequest(body, json_length));
  return std::make_unique<InferRequest>(std::move(decoded));
}

// The request a body makes: a raw or multipart upload for a model with one BYTES input (raw_upload.h),
// else the v2 JSON or binary-tensor codec.
Result<std::unique_ptr<InferRequest>> DecodeInfer(const HttpRequest& req, const InferenceServer& server,
                                                  std::string_view model, int64_t version, uint64_t max_body_bytes) {
  auto ct = req.find(http::field::content_type);
  const std::string_view type = ct == req.end() ? std::string_view() : ct->value();
  const UploadKind kind = UploadKindOf(type, req.find("Inference-Header-Content-Length") != req.end());
  if (kind == UploadKind::kNone) return DecodeBody(req, max_body_bytes);
  std::string decompressed;
  ASSIGN_OR_RETURN(std::string_view body, DecodedBody(req, max_body_bytes, &decompressed));
  ASSIGN_OR_RETURN(ServedModel served, server.Resolve(model, version));
  // v2 JSON sent as text/plain (a browser's fetch) or octet-stream, to a model that cannot take a raw body.
  size_t first = body.find_first_not_of(" \t\r\n");
  if (kind == UploadKind::kRaw && !HasOneBytesInput(*served.config) && first != std::string_view::npos &&
      body[first] == '{') {
    ASSIGN_OR_RETURN(InferRequest decoded, DecodeInferRequest(body, std::nullopt));
    return std::make_unique<InferRequest>(std::move(decoded));
  }
  std::vector<std::string_view> elements{body};
  if (kind == UploadKind::kMultipart) {
    ASSIGN_OR_RETURN(elements, SplitMultipart(type, body));
  }
  return UploadRequest(*served.config, model, elements, type);
}

HttpResponse InferResponseToHttp(const InferResponse& response) {
  EncodedResponse enc = EncodeInferResponse(response);
  HttpResponse res{http::status::ok, 11};
  if (enc.json_length) {
    res.set(http::field::content_type, "application/octet-stream");
    res.set("Inference-Header-Content-Length", std::to_string(*enc.json_length));
  } else {
    res.set(http::field::content_type, "application/json");
  }
  res.body() = std::move(enc.body);
  return res;
}

}  // namespace

InferOptions V2Handler::LoopInferOptions(const HttpRequest& request) const {
  InferOptions options;
  options.received = std::chrono::steady_clock::now();
  options.allow_inline = request.body().size() <= options_.offload_bytes;  // on an I/O thread, the server decides
  if (front_end_) {
    options.caller_in_flight = front_end_->InFlight();
    // Another request of this loop is in flight: its answer would wait for this one's execution.
    if (front_end_->InFlightOnThisLoop() > 1) options.allow_inline = false;
  }
  return options;
}

void V2Handler::Infer(HttpRequest&& req, std::string_view model, int64_t version, Responder respond) {
  const InferOptions options = LoopInferOptions(req);
  const bool offload = req.body().size() > options_.offload_bytes;
  auto run = [this, options](const HttpRequest& r, std::string_view m, int64_t v, Responder done) {
    Result<std::unique_ptr<InferRequest>> decoded = DecodeInfer(r, *server_, m, v, options_.max_body_bytes);
    if (decoded.ok()) {
      if (auto it = r.find("traceparent"); it != r.end()) (*decoded)->traceparent = CheckedTraceparent(it->value());
    }
    if (!decoded.ok() && (decoded.status().code() == StatusCode::kUnimplemented ||
                          decoded.status().code() == StatusCode::kResourceExhausted)) {
      // Not a request the model saw: answered here, not counted against it.
      if (server_->ModelReady(m, v).ok()) return done(BodyError(decoded.status(), r));
    }
    server_->InferAsync(
        m, v, std::move(decoded),
        [done = std::move(done)](Result<InferResponse> result) {
          done(result.ok() ? InferResponseToHttp(*result) : ErrorResponse(result.status()));
        },
        options);
  };
  if (!offload) return run(req, model, version, std::move(respond));
  // A large body: decoded on a worker, so that this I/O thread goes on serving (health checks first of all).
  auto shared = std::make_shared<HttpRequest>(std::move(req));
  decoders_->Submit([run, shared, name = std::string(model), version, respond = std::move(respond)]() mutable {
    run(*shared, name, version, std::move(respond));
  });
}

}  // namespace berth
