// The web UI: GET / and /ui/... answer with the page's files (ui_assets.h),
// every other request goes to the API handler it wraps. The page does
// everything through the public API, with the token the user gives it, so
// its files need no token themselves: they hold no model or server data.
// For the page's latency percentiles and queue depths, GET /metrics (the
// Prometheus text of the metrics port) is answered here too, with the
// inference token when one is set.
#pragma once

#include <optional>

#include "protocol/http/http_server.h"

namespace berth {

class UiHandler final : public HttpHandler {
 public:
  // `api` and `metrics` outlive the handler. With `enabled` false (--ui off)
  // the page's paths and /metrics go to `api` too (a 404).
  UiHandler(HttpHandler* api, HttpHandler* metrics, bool enabled) : api_(api), metrics_(metrics), enabled_(enabled) {}

  void Handle(HttpRequest&& request, Responder respond) override;
  std::optional<HttpResponse> Admit(const HttpRequest& headers) override;
  bool Essential(const HttpRequest& headers) const override { return api_->Essential(headers); }

 private:
  bool IsUiPath(const HttpRequest& request) const;

  bool IsMetricsPath(const HttpRequest& request) const;

  HttpHandler* api_;
  HttpHandler* metrics_;
  bool enabled_;
};

// The headers every UI answer carries: a Content-Security-Policy that allows
// the page's own files and API calls only (no inline script or style, no
// eval, no framing), no MIME sniffing, no referrer.
void SetUiSecurityHeaders(HttpResponse& response);

}  // namespace berth
