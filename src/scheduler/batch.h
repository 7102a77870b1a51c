// Concatenating requests into one batch and splitting the results back.
#pragma once

#include <vector>

#include "berth/tensor.h"
#include "request/infer_request.h"

namespace berth {

// True if `b` can share an execution with `a`: every input has the same
// datatype and the same dims after the batch dimension (-1 dims may differ
// between requests, and tensors of different shapes cannot be stacked).
bool CanBatchTogether(const InferRequest& a, const InferRequest& b);

// Concatenates the inputs of `requests` (validated, in config order) along
// the batch dimension. The requests' input data is consumed.
std::vector<Tensor> MergeInputs(const std::vector<InferRequest*>& requests);

// Splits validated batch outputs (shape[0] == sum of rows) into one output
// list per request, rows[i] rows each, in order.
std::vector<std::vector<Tensor>> SplitOutputs(std::vector<Tensor>&& outputs, const std::vector<int64_t>& rows);

}  // namespace berth
