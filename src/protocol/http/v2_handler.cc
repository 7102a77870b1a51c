#include "protocol/http/v2_handler.h"

#include <simdjson.h>
#include <spdlog/spdlog.h>

#include <charconv>
#include <chrono>
#include <vector>

#include "berth/server.h"
#include "common/json_writer.h"
#include "protocol/http/auth.h"
#include "protocol/http/status_mapping.h"
#include "request/v2_codec.h"
#include "request/validate.h"

namespace berth {
namespace {

namespace http = boost::beast::http;

std::vector<std::string_view> SplitPath(std::string_view target) {
  if (auto q = target.find('?'); q != std::string_view::npos) target = target.substr(0, q);
  // Absolute form (RFC 9112 3.2.2): http://host[:port]/path
  for (std::string_view scheme : {"http://", "https://"}) {
    if (target.substr(0, scheme.size()) == scheme) {
      auto slash = target.find('/', scheme.size());
      target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
      break;
    }
  }
  std::vector<std::string_view> parts;
  if (target.empty() || target[0] != '/') return parts;
  target.remove_prefix(1);
  while (true) {
    auto slash = target.find('/');
    parts.push_back(target.substr(0, slash));
    if (slash == std::string_view::npos) break;
    target.remove_prefix(slash + 1);
  }
  return parts;
}

// Parses a version path segment: a positive integer.
Result<int64_t> ParseVersion(std::string_view s) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v < 1) {
    return InvalidArgument("model version '" + std::string(s) + "' is not a positive integer");
  }
  return v;
}

HttpResponse MethodNotAllowed(http::verb allowed) {
  HttpResponse res = JsonResponse(JsonError("method not allowed; use " + std::string(http::to_string(allowed))),
                                  http::status::method_not_allowed);
  res.set(http::field::allow, http::to_string(allowed));
  return res;
}

HttpResponse Empty(http::status status) {
  HttpResponse res{status, 11};
  return res;
}

void WriteSpecs(JsonWriter& w, const ModelConfig& c, const std::vector<TensorSpec>& specs) {
  w.BeginArray();
  for (const auto& s : specs) {
    w.BeginObject();
    WriteTensorHeader(w, s.name, DataTypeName(s.dtype), c.FullShape(s));
    w.EndObject();
  }
  w.EndArray();
}

}  // namespace

void V2Handler::Handle(HttpRequest&& req, Responder respond) {
  std::vector<std::string_view> p = SplitPath(req.target());
  http::verb method = req.method();
  auto only = [&](http::verb v, auto&& make) { respond(method == v ? make() : MethodNotAllowed(v)); };
  if (p.empty() || p[0] != "v2") {
    return respond(ErrorResponse(NotFound("no such endpoint: " + std::string(req.target()))));
  }
  bool health = p.size() == 3 && p[1] == "health";
  bool control = p.size() == 5 && p[1] == "repository" && p[2] == "models" && (p[4] == "load" || p[4] == "unload");
  if (!options_.auth_token.empty() && !health && !control) {
    auto it = req.find(http::field::authorization);
    std::string_view given = it == req.end() ? std::string_view() : it->value();
    if (!BearerMatches(given, options_.auth_token)) {
      HttpResponse res = ErrorResponse(Status(StatusCode::kUnauthenticated, "missing or wrong bearer token"));
      res.set(http::field::www_authenticate, "Bearer");
      return respond(std::move(res));
    }
  }
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
  w.String("binary_tensor_data");
  w.String("model_repository");
  w.EndArray();
  w.EndObject();
  return JsonResponse(std::move(out));
}

HttpResponse V2Handler::Ready() const {
  if (draining_->load()) return ErrorResponse(Unavailable("server is shutting down"));
  if (!repository_->loaded()) return ErrorResponse(Unavailable("models are still loading"));
  return Empty(http::status::ok);
}

HttpResponse V2Handler::ModelMetadata(std::string_view model, int64_t version) const {
  auto mv = repository_->Get(model, version);
  if (!mv.ok()) return ErrorResponse(mv.status());
  auto entry = repository_->Entry(model);
  if (!entry.ok()) return ErrorResponse(entry.status());
  const ModelConfig& c = *(*mv)->config;
  std::string out;
  JsonWriter w(&out);
  w.BeginObject();
  w.Key("name");
  w.String(c.name);
  w.Key("versions");
  w.BeginArray();
  for (int64_t v : entry->ReadyVersions()) w.String(std::to_string(v));
  w.EndArray();
  w.Key("platform");
  w.String(c.backend);
  w.Key("inputs");
  WriteSpecs(w, c, c.inputs);
  w.Key("outputs");
  WriteSpecs(w, c, c.outputs);
  w.EndObject();
  return JsonResponse(std::move(out));
}

HttpResponse V2Handler::ModelReady(std::string_view model, int64_t version) const {
  auto mv = repository_->Get(model, version);
  if (!mv.ok()) return ErrorResponse(mv.status());
  return Empty(http::status::ok);
}

void V2Handler::Infer(HttpRequest&& req, std::string_view model, int64_t version, Responder respond) {
  auto received = std::chrono::steady_clock::now();
  auto mv = repository_->Get(model, version);
  if (!mv.ok()) return respond(ErrorResponse(mv.status()));
  std::shared_ptr<ModelVersion> version_ptr = *mv;
  ModelMetrics* metrics = version_ptr->metrics.get();
  auto fail = [&](const Status& s) {
    metrics->request_failure.fetch_add(1, std::memory_order_relaxed);
    respond(ErrorResponse(s));
  };

  std::optional<uint64_t> json_length;
  if (auto it = req.find("Inference-Header-Content-Length"); it != req.end()) {
    std::string_view v = it->value();
    uint64_t n = 0;
    auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (v.empty() || ec != std::errc() || ptr != v.data() + v.size()) {
      return fail(
          InvalidArgument("Inference-Header-Content-Length: expected a byte count, got '" + std::string(v) + "'"));
    }
    json_length = n;
  }
  auto decoded = DecodeInferRequest(req.body(), json_length);
  if (!decoded.ok()) return fail(decoded.status());
  auto request = std::make_unique<InferRequest>(std::move(decoded).value());
  Status valid = ValidateRequest(*version_ptr->config, request.get());
  if (!valid.ok()) return fail(valid);
  int64_t timeout_us = request->timeout_us > 0 ? request->timeout_us : options_.default_timeout_us;
  // Saturate: a huge timeout means "no limit", never an overflowed deadline in the past.
  constexpr int64_t kMaxTimeoutUs = int64_t{1} << 40;  // ~12 days
  if (timeout_us > 0 && timeout_us < kMaxTimeoutUs)
    request->deadline = received + std::chrono::microseconds(timeout_us);

  bool may_run_here = in_flight_ != nullptr && in_flight_->load(std::memory_order_relaxed) <= inline_limit_;
  version_ptr->scheduler->Enqueue(
      std::move(request),
      [respond = std::move(respond), keep = version_ptr, received](Result<InferResponse> result) {
        ModelMetrics& m = *keep->metrics;
        auto elapsed = std::chrono::steady_clock::now() - received;
        m.request_duration_us.Observe(
            static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count()));
        if (!result.ok()) {
          m.request_failure.fetch_add(1, std::memory_order_relaxed);
          if (result.status().code() == StatusCode::kInternal) spdlog::warn("{}", result.status().message());
          return respond(ErrorResponse(result.status()));
        }
        m.request_success.fetch_add(1, std::memory_order_relaxed);
        EncodedResponse enc = EncodeInferResponse(*result);
        HttpResponse res{http::status::ok, 11};
        if (enc.json_length) {
          res.set(http::field::content_type, "application/octet-stream");
          res.set("Inference-Header-Content-Length", std::to_string(*enc.json_length));
        } else {
          res.set(http::field::content_type, "application/json");
        }
        res.body() = std::move(enc.body);
        respond(std::move(res));
      },
      may_run_here);
}

}  // namespace berth
