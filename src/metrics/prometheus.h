// Prometheus text exposition (format 0.0.4) of per-model and process metrics,
// served on --metrics-port at /metrics.
#pragma once

#include <string>

#include "protocol/http/http_server.h"
#include "repository/model_repository.h"

namespace berth {

// Renders every metric of every loaded model version, plus process metrics.
std::string RenderPrometheus(const ModelRepository& repository);

class MetricsHandler final : public HttpHandler {
 public:
  explicit MetricsHandler(const ModelRepository* repository) : repository_(repository) {}
  void Handle(HttpRequest&& request, Responder respond) override;

 private:
  const ModelRepository* repository_;
};

}  // namespace berth
