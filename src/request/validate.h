// Checks requests against a model's config, and backend outputs against it.
#pragma once

#include <vector>

#include "berth/status.h"
#include "common/model_config.h"
#include "request/infer_request.h"

namespace berth {

// Checks names, datatypes, ranks, dims and the batch size of `request`
// against `config`, reorders its inputs into config order and sets
// request->batch_size. InvalidArgument names the offending input and dim.
Status ValidateRequest(const ModelConfig& config, InferRequest* request);

// Checks that a backend produced every configured output with the configured
// datatype and shape, and `batch_size` rows when the model is batched.
// Internal error otherwise: the model, not the client, is at fault.
Status ValidateOutputs(const ModelConfig& config, int64_t batch_size, const std::vector<Tensor>& outputs);

// Builds the response from validated outputs: keeps the requested outputs
// (all when none were named) and marks which go out as binary data.
InferResponse MakeResponse(const ModelConfig& config, int64_t version, InferRequest& request,
                           std::vector<Tensor>&& outputs);

}  // namespace berth
