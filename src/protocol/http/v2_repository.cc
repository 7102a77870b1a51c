// The repository extension of the v2 protocol: index, and explicit model
// control (load/unload) behind the admin bearer token.
#include <simdjson.h>

#include "common/json_writer.h"
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
  for (const IndexEntry& e : server_->Index()) {
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
  auto it = req.find(http::field::authorization);
  Status allowed = access_.CheckModelControl(it == req.end() ? std::string_view() : it->value());
  if (!allowed.ok()) return respond(ErrorResponse(allowed));
  if (!IsValidModelName(model)) {
    return respond(ErrorResponse(InvalidArgument("'" + std::string(model) + "' is not a valid model name")));
  }
  // Loading takes seconds: it runs on the server's control thread, never on an I/O thread.
  auto done = [respond = std::move(respond)](Status s) { respond(s.ok() ? JsonResponse("{}") : ErrorResponse(s)); };
  if (load) {
    server_->LoadModelAsync(std::string(model), std::move(done));
  } else {
    server_->UnloadModelAsync(std::string(model), std::move(done));
  }
}

}  // namespace berth
