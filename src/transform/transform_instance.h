// The executor of a `kind: transform` model: a processing step with no
// weights that applies model.yaml's `transforms` (fill_missing, standardize,
// one_hot) online, exactly as `berth batch` applies them to table columns.
// Each input is one value per row (a table column); each output lists, in
// `columns`, the inputs that fill it, in order. The row's values go through
// the TableMapper that `berth batch` uses, so a pipeline
// `transform -> model` answers what `berth batch` writes for the same rows.
//
//   kind: transform
//   max_batch_size: 256
//   inputs:
//     - {name: age, datatype: BYTES, shape: [1]}    # text: "" or "NA" is missing, as in a CSV
//     - {name: plan, datatype: BYTES, shape: [1]}
//     - {name: tenure, datatype: FP32, shape: [1]}  # numbers: NaN is missing
//   outputs:
//     - {name: features, datatype: FP32, shape: [5], columns: [age, tenure, plan]}
//   transforms:
//     fill_missing: {age: "40"}
//     standardize: {age: [40, 12], tenure: [24, 18]}
//     one_hot: {plan: [basic, pro, enterprise]}
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "berth/backend_api.h"
#include "berth/status.h"
#include "common/model_config.h"
#include "transform/table_mapper.h"

namespace berth {

class TransformInstance final : public ModelInstance {
 public:
  // Checks the config (inputs of shape [1], every output's `columns` naming
  // inputs, shapes that the columns fill, every input used). Errors name
  // the model.yaml key.
  static Result<std::unique_ptr<TransformInstance>> Create(const ModelConfig& config);

  // A value that cannot be used fails the request with InvalidArgument
  // naming the row (when batched), the input and why.
  Status Execute(std::vector<Tensor>& inputs, std::vector<Tensor>* outputs) override;

 private:
  TransformInstance(TableMapper mapper, const ModelConfig& config);

  TableMapper mapper_;
  bool batched_;
  std::vector<DataType> input_dtypes_;
  std::vector<std::string> output_names_;
  std::vector<std::string> numbers_;  // per input: the text of this row's number
};

}  // namespace berth
