// Prometheus text exposition (format 0.0.4) of per-model and process
// metrics. Rendering only: the /metrics endpoint is served by the HTTP
// protocol (protocol/http/metrics_handler.h).
#pragma once

#include <string>
#include <vector>

#include "metrics/model_metrics.h"

namespace berth {

// Renders every metric of `versions` (by model, then version), plus process metrics.
std::string RenderPrometheus(const std::vector<VersionMetrics>& versions);

}  // namespace berth
