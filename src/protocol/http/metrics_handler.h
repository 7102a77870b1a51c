// GET /metrics on the metrics port: the Prometheus exposition of what serves.
#pragma once

#include <functional>
#include <vector>

#include "metrics/model_metrics.h"
#include "protocol/http/http_server.h"

namespace berth {

class MetricsHandler final : public HttpHandler {
 public:
  // `snapshot` gives the versions that serve now; called on an I/O thread.
  explicit MetricsHandler(std::function<std::vector<VersionMetrics>()> snapshot) : snapshot_(std::move(snapshot)) {}
  void Handle(HttpRequest&& request, Responder respond) override;

 private:
  std::function<std::vector<VersionMetrics>()> snapshot_;
};

}  // namespace berth
