// The checks an XGBoost model file must pass before XGBoost 1.7 may read it.
//
// XGBoost 1.7.4 (Debian 12) trusts its model files: its UBJSON reader reads
// past the end of a truncated file and allocates whatever a length field
// claims, its loaders index arrays by values from the file without bounds
// checks (a tree count larger than the tree list, a parent index, the
// categorical-split arrays), and its predictor walks trees by child and
// feature indices from the file. One wrong number segfaults, aborts, hangs or
// corrupts the heap of the process that loads it, and a berth server loads
// new versions while it serves. So the file is checked first, whole, along
// the grammar XGBoost's readers accept and against every invariant its
// loader and predictor rely on; only a file that passes reaches XGBoost
// (loaded from the same bytes, so it cannot change in between). The
// invariants, with their sources, are listed in model_file_check.cc.
//
// No XGBoost here: the checks are plain code, unit-tested and fuzzed on their
// own (and fuzzed with XGBoost's loader behind them, to find what they miss).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "berth/status.h"

namespace berth {

enum class XgboostFormat { kJson, kUbj };

// What a model file may make the server allocate. Prediction allocates about
// num_feature x 64 x threads floats of workspace and rows x outputs floats
// of results per call, and each categorical split a bitset as wide as its
// largest category.
struct XgboostModelLimits {
  int64_t max_features = int64_t{1} << 20;
  int64_t max_outputs = int64_t{1} << 16;                    // num_class, num_target
  uint64_t max_category_bitset_bytes = uint64_t{256} << 20;  // summed over the model's categorical splits
};

// What the file says of itself, once it passed.
struct XgboostModelFacts {
  std::string booster;      // gbtree, dart or gblinear
  int64_t num_feature = 0;  // columns one row must have
  int64_t num_outputs = 1;  // output groups: max(num_class, num_target, 1)
  int64_t num_trees = 0;
};

// The format XGBoosterLoadModelFromBuffer will read `bytes` as: JSON when the
// first non-space after the opening '{' is '"', UBJSON when it is a letter.
// Error for anything else (XGBoost would try its legacy binary reader).
// `file_name` (model.json or model.ubj) must agree with the content.
Result<XgboostFormat> DetectXgboostFormat(std::string_view bytes, const std::string& file_name);

// Checks a whole model file. InvalidArgument naming what is wrong and where
// (a path into the model, e.g. "learner.gradient_booster.model.trees[3]
// .parents[5]: ..."), never quoting the file's text.
Result<XgboostModelFacts> CheckXgboostModel(std::string_view bytes, XgboostFormat format,
                                            const XgboostModelLimits& limits = {});

}  // namespace berth
