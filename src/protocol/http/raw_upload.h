// Raw bodies and uploads: a model (or pipeline) with exactly one BYTES
// input also takes `POST /v2/models/{m}/infer` whose body is the value
// itself, so that clients send files, not tensors:
//
//   Content-Type: text/plain, text/*, image/*, application/octet-stream
//       (without Inference-Header-Content-Length): the body is one element
//   Content-Type: multipart/form-data; boundary=...: each part is one
//       element, in order (a batch), whatever its name or filename
//
// The answer is the usual v2 JSON. Every other Content-Type (JSON, or none)
// goes to the v2 JSON/binary codec as before.
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include "berth/status.h"
#include "common/model_config.h"
#include "request/infer_request.h"

namespace berth {

enum class UploadKind { kNone, kRaw, kMultipart };

// What a request with this Content-Type (and with or without an
// Inference-Header-Content-Length) is.
UploadKind UploadKindOf(std::string_view content_type, bool has_json_length);

// The parts of a multipart/form-data body (RFC 7578, RFC 2046 5.1): views
// into `body`. InvalidArgument, never quoting the body, for a Content-Type
// without a valid boundary, a body that does not start with one, a part
// without its header block, no closing boundary, or no part at all.
Result<std::vector<std::string_view>> SplitMultipart(std::string_view content_type, std::string_view body);

// Whether `config` has exactly one BYTES input (the one a raw body fills).
bool HasOneBytesInput(const ModelConfig& config);

// The request `elements` make for `config`: its one BYTES input, shaped
// [N, 1] (batched; per-row shape [1] or [-1]) or [N] / [1] (unbatched).
// InvalidArgument naming the model when it has no or several BYTES inputs,
// or other inputs that a request must send.
Result<std::unique_ptr<InferRequest>> UploadRequest(const ModelConfig& config, std::string_view model,
                                                    const std::vector<std::string_view>& elements,
                                                    std::string_view content_type);

}  // namespace berth
