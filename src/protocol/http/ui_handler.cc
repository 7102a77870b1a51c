#include "protocol/http/ui_handler.h"

#include <string>
#include <string_view>

#include "protocol/http/http_util.h"
#include "protocol/http/status_mapping.h"
#include "protocol/http/ui_assets.h"

namespace berth {
namespace {

namespace http = boost::beast::http;

std::string_view ContentType(std::string_view name) {
  auto ends = [&](std::string_view s) { return name.size() >= s.size() && name.substr(name.size() - s.size()) == s; };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".svg")) return "image/svg+xml";
  if (ends(".png")) return "image/png";
  return "application/octet-stream";
}

const UiAsset* Find(std::string_view name) {
  for (const UiAsset& a : UiAssets()) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

// "/" and "/ui" and "/ui/" are the page; "/ui/NAME" one of its files.
std::optional<std::string_view> AssetName(const std::vector<std::string_view>& p) {
  if (p.size() == 1 && p[0].empty()) return "index.html";
  if (p.empty() || p[0] != "ui") return std::nullopt;
  if (p.size() == 1 || (p.size() == 2 && p[1].empty())) return "index.html";
  if (p.size() == 2) return p[1];
  return std::nullopt;
}

}  // namespace

void SetUiSecurityHeaders(HttpResponse& res) {
  res.set("Content-Security-Policy",
          "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
          "form-action 'none'; frame-ancestors 'none'; base-uri 'none'");
  res.set("X-Content-Type-Options", "nosniff");
  res.set("X-Frame-Options", "DENY");
  res.set("Referrer-Policy", "no-referrer");
  res.set("Cross-Origin-Opener-Policy", "same-origin");
}

bool UiHandler::IsUiPath(const HttpRequest& req) const {
  if (!enabled_) return false;
  std::vector<std::string_view> p = SplitPath(req.target());
  return (p.size() == 1 && p[0].empty()) || (!p.empty() && p[0] == "ui");
}

bool UiHandler::IsMetricsPath(const HttpRequest& req) const {
  if (!enabled_) return false;
  std::vector<std::string_view> p = SplitPath(req.target());
  return p.size() == 1 && p[0] == "metrics";
}

std::optional<HttpResponse> UiHandler::Admit(const HttpRequest& headers) {
  const bool ui = IsUiPath(headers);
  if (!ui && !IsMetricsPath(headers)) return api_->Admit(headers);
  // Answered on the headers: a body sent here (which needs no token) is never read, so that it cannot take
  // the body budget that inference shares.
  if (headers.method() != http::verb::get) return MethodNotAllowed(http::verb::get);
  if (headers.has_content_length() || headers.chunked()) {
    if (!headers.has_content_length() || headers[http::field::content_length] != "0") {
      return ErrorResponse(InvalidArgument("a GET of this path takes no request body"));
    }
  }
  return ui ? std::nullopt : api_->Admit(headers);
}

void UiHandler::Handle(HttpRequest&& req, Responder respond) {
  if (IsMetricsPath(req)) {
    // The API's own check (Admit ran already; checked again here as V2Handler does): the inference token.
    if (std::optional<HttpResponse> denied = api_->Admit(req)) return respond(std::move(*denied));
    if (req.method() != http::verb::get) return respond(MethodNotAllowed(http::verb::get));
    return metrics_->Handle(std::move(req), std::move(respond));
  }
  if (!IsUiPath(req)) return api_->Handle(std::move(req), std::move(respond));
  if (req.method() != http::verb::get) return respond(MethodNotAllowed(http::verb::get));
  std::optional<std::string_view> name = AssetName(SplitPath(req.target()));
  const UiAsset* asset = name ? Find(*name) : nullptr;
  if (!asset) {
    // The name is not echoed: it is whatever the client sent.
    HttpResponse res = ErrorResponse(NotFound("no such page"));
    SetUiSecurityHeaders(res);
    return respond(std::move(res));
  }
  HttpResponse res{http::status::ok, 11};
  SetUiSecurityHeaders(res);
  res.set(http::field::etag, asset->etag);
  res.set(http::field::cache_control, "no-cache");  // revalidated: a new binary serves its new page at once
  auto inm = req.find(http::field::if_none_match);
  if (inm != req.end() && inm->value().find(asset->etag) != std::string_view::npos) {
    res.result(http::status::not_modified);
    return respond(std::move(res));
  }
  res.set(http::field::content_type, ContentType(asset->name));
  res.body().assign(asset->bytes);
  respond(std::move(res));
}

}  // namespace berth
