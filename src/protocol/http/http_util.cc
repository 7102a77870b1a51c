#include "protocol/http/http_util.h"

#include <charconv>

#include "common/json_writer.h"
#include "protocol/http/content_coding.h"
#include "protocol/http/status_mapping.h"

namespace berth {

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

HttpResponse Empty(http::status status) {
  HttpResponse res{status, 11};
  return res;
}

Result<std::string_view> DecodedBody(const HttpRequest& req, uint64_t max_bytes, std::string* storage) {
  std::string_view body = req.body();
  if (auto it = req.find(http::field::content_encoding); it != req.end()) {
    ContentCoding coding = ParseContentCoding(it->value());
    if (coding != ContentCoding::kIdentity) {
      ASSIGN_OR_RETURN(*storage, DecodeBody(coding, body, max_bytes));
      return std::string_view(*storage);
    }
  }
  return body;
}

// 415 and 413 are HTTP's own answers to a body it cannot take; the codes of
// the rest come from the one status mapping.
HttpResponse BodyError(const Status& s, const HttpRequest& req) {
  if (s.code() == StatusCode::kUnimplemented && req.find(http::field::content_encoding) != req.end()) {
    return JsonResponse(JsonError("Content-Encoding '" + std::string(req[http::field::content_encoding]).substr(0, 40) +
                                  "' is not supported; send identity, gzip or deflate"),
                        http::status::unsupported_media_type);
  }
  if (s.code() == StatusCode::kResourceExhausted && req.find(http::field::content_encoding) != req.end()) {
    return JsonResponse(JsonError(s.message()), http::status::payload_too_large);
  }
  return ErrorResponse(s);
}

}  // namespace berth
