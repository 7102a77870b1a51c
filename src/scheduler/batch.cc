#include "scheduler/batch.h"

#include <cstring>

namespace berth {

bool CanBatchTogether(const InferRequest& a, const InferRequest& b) {
  if (a.inputs.size() != b.inputs.size()) return false;
  for (size_t i = 0; i < a.inputs.size(); ++i) {
    const Tensor& x = a.inputs[i];
    const Tensor& y = b.inputs[i];
    if (x.dtype != y.dtype || x.shape.size() != y.shape.size() || x.shape.empty()) return false;
    if (!std::equal(x.shape.begin() + 1, x.shape.end(), y.shape.begin() + 1)) return false;
  }
  return true;
}

std::vector<Tensor> MergeInputs(const std::vector<InferRequest*>& requests) {
  std::vector<Tensor> merged;
  const InferRequest& first = *requests.front();
  merged.reserve(first.inputs.size());
  for (size_t i = 0; i < first.inputs.size(); ++i) {
    Tensor t;
    t.name = first.inputs[i].name;
    t.dtype = first.inputs[i].dtype;
    t.shape = first.inputs[i].shape;
    t.shape[0] = 0;
    size_t bytes = 0;
    for (const InferRequest* r : requests) {
      bytes += r->inputs[i].data.size();
      t.shape[0] += r->inputs[i].shape[0];
    }
    t.data.resize(bytes);
    size_t at = 0;
    for (InferRequest* r : requests) {
      std::vector<uint8_t>& src = r->inputs[i].data;
      if (!src.empty()) std::memcpy(t.data.data() + at, src.data(), src.size());
      at += src.size();
      std::vector<uint8_t>().swap(src);
    }
    merged.push_back(std::move(t));
  }
  return merged;
}

namespace {

// Byte offset where each row starts (plus the end), for a validated tensor of `total_rows` rows.
std::vector<size_t> RowOffsets(const Tensor& t, int64_t total_rows) {
  std::vector<size_t> offsets(static_cast<size_t>(total_rows) + 1, 0);
  if (t.dtype != DataType::kBytes) {
    size_t row_bytes = total_rows ? t.data.size() / static_cast<size_t>(total_rows) : 0;
    for (int64_t r = 0; r <= total_rows; ++r) offsets[r] = static_cast<size_t>(r) * row_bytes;
    return offsets;
  }
  int64_t per_row = total_rows ? t.NumElements() / total_rows : 0;
  size_t pos = 0;
  for (int64_t r = 0; r < total_rows; ++r) {
    offsets[r] = pos;
    for (int64_t e = 0; e < per_row; ++e) {
      uint32_t len;
      std::memcpy(&len, t.data.data() + pos, 4);
      pos += 4 + len;
    }
  }
  offsets[total_rows] = pos;
  return offsets;
}

}  // namespace

std::vector<std::vector<Tensor>> SplitOutputs(std::vector<Tensor>&& outputs, const std::vector<int64_t>& rows) {
  int64_t total = 0;
  for (int64_t r : rows) total += r;
  std::vector<std::vector<Tensor>> out(rows.size());
  for (Tensor& t : outputs) {
    std::vector<size_t> offsets = RowOffsets(t, total);
    int64_t row = 0;
    for (size_t i = 0; i < rows.size(); ++i) {
      Tensor part;
      part.name = t.name;
      part.dtype = t.dtype;
      part.shape = t.shape;
      part.shape[0] = rows[i];
      part.data.assign(t.data.begin() + offsets[row], t.data.begin() + offsets[row + rows[i]]);
      row += rows[i];
      out[i].push_back(std::move(part));
    }
  }
  return out;
}

}  // namespace berth
