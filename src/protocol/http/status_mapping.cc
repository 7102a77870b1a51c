#include "protocol/http/status_mapping.h"

#include "common/json_writer.h"

namespace berth {

namespace http = boost::beast::http;

http::status HttpStatusFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return http::status::ok;
    case StatusCode::kInvalidArgument:
    case StatusCode::kFailedPrecondition: return http::status::bad_request;
    case StatusCode::kNotFound: return http::status::not_found;
    case StatusCode::kAlreadyExists: return http::status::conflict;
    case StatusCode::kResourceExhausted:
    case StatusCode::kUnavailable: return http::status::service_unavailable;
    case StatusCode::kUnimplemented: return http::status::not_implemented;
    case StatusCode::kDeadlineExceeded: return http::status::gateway_timeout;
    case StatusCode::kUnauthenticated: return http::status::unauthorized;
    case StatusCode::kPermissionDenied: return http::status::forbidden;
    case StatusCode::kInternal: return http::status::internal_server_error;
  }
  return http::status::internal_server_error;
}

HttpResponse JsonResponse(std::string body, http::status status) {
  HttpResponse res{status, 11};
  res.set(http::field::content_type, "application/json");
  res.body() = std::move(body);
  return res;
}

HttpResponse ErrorResponse(const Status& status) {
  HttpResponse res = JsonResponse(JsonError(status.message()), HttpStatusFor(status.code()));
  if (status.code() == StatusCode::kResourceExhausted) res.set(http::field::retry_after, "1");
  if (status.code() == StatusCode::kUnauthenticated) res.set(http::field::www_authenticate, "Bearer");
  return res;
}

HttpResponse MethodNotAllowed(http::verb allowed) {
  HttpResponse res = JsonResponse(JsonError("method not allowed; use " + std::string(http::to_string(allowed))),
                                  http::status::method_not_allowed);
  res.set(http::field::allow, http::to_string(allowed));
  return res;
}

}  // namespace berth
