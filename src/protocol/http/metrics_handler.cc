#include "protocol/http/metrics_handler.h"

#include "metrics/prometheus.h"
#include "protocol/http/status_mapping.h"

namespace berth {

namespace http = boost::beast::http;

void MetricsHandler::Handle(HttpRequest&& request, Responder respond) {
  std::string_view target = request.target();
  if (target.substr(0, target.find('?')) != "/metrics") {
    return respond(ErrorResponse(NotFound("no such endpoint: " + std::string(target) + " (metrics are at /metrics)")));
  }
  if (request.method() != http::verb::get) return respond(MethodNotAllowed(http::verb::get));
  HttpResponse res{http::status::ok, 11};
  res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
  res.body() = RenderPrometheus(snapshot_());
  respond(std::move(res));
}

}  // namespace berth
