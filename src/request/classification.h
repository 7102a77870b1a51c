// Triton's classification extension: an output requested with
// `parameters: {"classification": k}` is answered as its top k classes per
// row instead of its values, as BYTES "<value>:<index>[:<label>]" (value as
// C's %f for floats, an integer for integer types; the label from the
// output's `labels:` file), shape [batch, k] ([k] for an unbatched model),
// highest value first and, among equal values, the lower index first. k
// larger than the number of classes gives them all.
#pragma once

#include <cstdint>

#include "berth/tensor.h"
#include "common/model_config.h"

namespace berth {

// `t` must be numeric (BOOL counts as 0/1) and shaped as `spec` says.
Tensor Classify(const Tensor& t, const TensorSpec& spec, bool batched, int64_t k);

}  // namespace berth
