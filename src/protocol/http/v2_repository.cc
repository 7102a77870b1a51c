// The repository extension of the v2 protocol: index, and explicit model
// control (load/unload) behind the admin bearer token.
#include <simdjson.h>

#include "common/json_writer.h"
#include "protocol/http/auth.h"
#include "protocol/http/status_mapping.h"
#include "protocol/http/v2_handler.h"

namespace berth {

namespace http = boost::beast::http;

HttpResponse V2Handler::RepositoryIndex(const HttpRequest& req) const {
  bool ready_only = false;
  std::string_view body = req.body();
  if (body.find_first_not_of(" \t\r\n") != std::string_view::npos) {
    thread_local simdjson::dom::parser parser;
    simdjson::dom::element doc;
    if (auto err = parser.parse(body.data(), body.size()).get(doc)) {
      return ErrorResponse(
          InvalidArgument(std::string("malformed JSON in request body: ") + simdjson::error_message(err)));
    }
    if (!doc.is_object()) return ErrorResponse(InvalidArgument("request body: expected a JSON object"));
    simdjson::dom::element ready;
    if (!doc.at_key("ready").get(ready)) {
      if (!ready.is_bool()) return ErrorResponse(InvalidArgument("ready: expected true or false"));
      ready_only = ready.get_bool().value_unsafe();
    }
  }
  std::string out;
  JsonWriter w(&out);
  w.BeginArray();
  for (const IndexEntry& e : repository_->Index()) {
    if (ready_only && e.state != ModelState::kReady) continue;
    w.BeginObject();
    w.Key("name");
    w.String(e.name);
    w.Key("version");
    w.String(e.version);
    w.Key("state");
    w.String(ModelStateName(e.state));
    w.Key("reason");
    w.String(e.reason);
    w.EndObject();
  }
  w.EndArray();
  return JsonResponse(std::move(out));
}

void V2Handler::RepositoryControl(const HttpRequest& req, std::string_view model, bool load, Responder respond) {
  if (options_.admin_token.empty()) {
    return respond(ErrorResponse(Status(StatusCode::kPermissionDenied,
                                        "model control is off: start berth with --admin-token-file "
                                        "(and --model-control-mode explicit)")));
  }
  auto it = req.find(http::field::authorization);
  if (!BearerMatches(it == req.end() ? std::string_view() : it->value(), options_.admin_token)) {
    HttpResponse res = ErrorResponse(Status(StatusCode::kUnauthenticated, "missing or wrong admin bearer token"));
    res.set(http::field::www_authenticate, "Bearer");
    return respond(std::move(res));
  }
  if (!options_.explicit_model_control) {
    return respond(
        ErrorResponse(Status(StatusCode::kPermissionDenied, "model control needs --model-control-mode explicit")));
  }
  if (!IsValidModelName(model)) {
    return respond(ErrorResponse(InvalidArgument("'" + std::string(model) + "' is not a valid model name")));
  }
  // Loading takes seconds: it runs on the repository's control thread, never on an I/O thread.
  ModelRepository* repo = repository_;
  repo->Submit([repo, name = std::string(model), load, respond = std::move(respond)] {
    Status s = load ? repo->LoadModel(name) : repo->UnloadModel(name);
    if (!s.ok()) return respond(ErrorResponse(s));
    return respond(JsonResponse("{}"));
  });
}

}  // namespace berth
