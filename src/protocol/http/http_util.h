// Small pieces every HTTP route family shares (v2, Triton's extensions, TF Serving /v1).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "berth/status.h"
#include "protocol/http/http_server.h"

namespace berth {

// "/v2/models/m/infer?x" -> {"v2", "models", "m", "infer"}; the absolute
// form (http://host/path) too. Empty for a target that is not a path.
std::vector<std::string_view> SplitPath(std::string_view target);

// A version path segment: a positive integer.
Result<int64_t> ParseVersion(std::string_view s);

// A response without a body.
HttpResponse Empty(boost::beast::http::status status);

// The request body, decompressed per Content-Encoding into `storage` when it
// is compressed (bounded by `max_bytes`: ResourceExhausted past it).
Result<std::string_view> DecodedBody(const HttpRequest& req, uint64_t max_bytes, std::string* storage);

// The answer to a body that could not be read: 415 for an unsupported
// Content-Encoding, 413 when it inflates past the limit; the rest through
// the one status mapping.
HttpResponse BodyError(const Status& s, const HttpRequest& req);

}  // namespace berth
