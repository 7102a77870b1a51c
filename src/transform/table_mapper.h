// Maps table rows (named columns of text) onto a model's input tensors,
// applying the model's transforms (fill_missing, standardize, one_hot). It
// knows nothing about files: `berth batch` feeds it CSV and JSONL records,
// and a server front end can feed it the same rows online.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "berth/status.h"
#include "common/model_config.h"

namespace berth {

class TableMapper {
 public:
  // Resolves the columns that fill each input: the input's `columns` in
  // model.yaml, else a column named like the input (one value), else
  // NAME_0 … NAME_{k-1}. `columns` are the table's column names. Errors name
  // the input, what it needs and the columns the table has.
  static Result<TableMapper> Create(const ModelConfig& config, const std::vector<std::string>& columns);

  // Indices into the table's columns that the mapper reads.
  const std::vector<size_t>& used_columns() const { return used_; }
  size_t num_inputs() const { return inputs_.size(); }
  const std::string& input_name(size_t i) const { return inputs_[i].name; }
  DataType input_dtype(size_t i) const { return inputs_[i].dtype; }
  // The shape of one row of input i (no batch dimension).
  const std::vector<int64_t>& row_shape(size_t i) const { return inputs_[i].row_shape; }

  // Appends one row's values to (*data)[i] for each input i; `fields` holds
  // the row's text, indexed like the table's columns. On a value that cannot
  // be used, returns why ("column 'age': 'abc' is not a number") and leaves
  // `data` as it was.
  Status AppendRow(const std::vector<std::string_view>& fields, std::vector<std::vector<uint8_t>>* data) const;

 private:
  struct Source {
    size_t column = 0;
    std::string name;
    bool has_fill = false;  // fill_missing
    std::string fill;
    std::vector<std::string> categories;  // one_hot: one value per category
    bool standardize = false;
    double mean = 0, sd = 1;
  };
  struct Input {
    std::string name;
    DataType dtype = DataType::kFp32;
    std::vector<int64_t> row_shape;
    std::vector<Source> sources;
    bool plain_fp32 = false;  // FP32 from number columns only (no one_hot)
  };

  Status AppendValue(const Source& src, const Input& in, std::string_view text, std::vector<uint8_t>* out) const;

  std::vector<Input> inputs_;
  std::vector<size_t> used_;
};

// True for the texts pandas reads as missing by default ("", "NA", "NaN",
// "null", "N/A", ...).
bool IsMissingText(std::string_view text);

}  // namespace berth
