// Formats `berth batch` output rows and rejects as CSV (RFC 4180) or JSON Lines.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "berth/status.h"
#include "berth/tensor.h"
#include "common/model_config.h"

namespace berth {

enum class TableFormat { kCsv, kJsonl };

// "csv" / "jsonl" from a format name or, when `name` is empty, from the
// file's extension (.jsonl, .ndjson, .json = JSON Lines; anything else CSV).
Result<TableFormat> ResolveTableFormat(const std::string& name, const std::string& path, const std::string& flag);

// Output columns: the kept input columns, then each model output as NAME
// (one value per row) or NAME_0 … NAME_{k-1}.
class RowWriter {
 public:
  struct Output {
    std::string name;
    DataType dtype;
    int64_t values = 1;  // per row
  };
  // Fails for outputs without a fixed shape (the columns must be known up front).
  static Result<RowWriter> Create(TableFormat format, const ModelConfig& config, std::vector<std::string> keep);

  TableFormat format() const { return format_; }
  const std::vector<Output>& outputs() const { return outputs_; }
  // The header line (CSV) or "" (JSONL).
  std::string Header() const;
  // Appends one output row: the kept values (`keep`: CSV text, or JSON
  // tokens for JSONL) and row `row` of each output tensor (in outputs() order).
  void AppendRow(const std::vector<std::string_view>& keep, const std::vector<const Tensor*>& tensors, int64_t row,
                 std::string* out) const;

  // The rejects file: line, reason, the original record.
  std::string RejectsHeader() const;
  void AppendReject(int64_t line, std::string_view reason, std::string_view record, std::string* out) const;

 private:
  TableFormat format_ = TableFormat::kCsv;
  std::vector<std::string> keep_;
  std::vector<Output> outputs_;
  std::vector<std::string> json_keys_;  // JSONL: "\"name\":" for every column, in order
};

// A string as a JSON string token.
std::string JsonQuote(std::string_view s);

}  // namespace berth
