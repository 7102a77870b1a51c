// The one place where Status codes become HTTP statuses.
#pragma once

#include "berth/status.h"
#include "protocol/http/http_server.h"

namespace berth {

boost::beast::http::status HttpStatusFor(StatusCode code);

// `{"error": message}` with the mapped status; 503s for a full queue carry Retry-After.
HttpResponse ErrorResponse(const Status& status);

// 405 with an Allow header naming the one method the endpoint takes.
HttpResponse MethodNotAllowed(boost::beast::http::verb allowed);

// A JSON body with status 200 (or `status`).
HttpResponse JsonResponse(std::string body, boost::beast::http::status status = boost::beast::http::status::ok);

}  // namespace berth
