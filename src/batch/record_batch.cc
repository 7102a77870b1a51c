#include "batch/record_batch.h"

namespace berth {

std::unique_ptr<InferRequest> MakeRequest(const RecordBatch& b, int64_t first, int64_t count, const TableMapper& mapper,
                                          bool batched) {
  auto req = std::make_unique<InferRequest>();
  for (size_t i = 0; i < mapper.num_inputs(); ++i) {
    Tensor t;
    t.name = mapper.input_name(i);
    t.dtype = mapper.input_dtype(i);
    if (batched) t.shape.push_back(count);
    const auto& rs = mapper.row_shape(i);
    t.shape.insert(t.shape.end(), rs.begin(), rs.end());
    size_t from, to;
    if (b.row_end[i].empty()) {  // fixed-size values: every row is as long
      size_t row_bytes = b.data[i].size() / static_cast<size_t>(b.rows);
      from = static_cast<size_t>(first) * row_bytes;
      to = static_cast<size_t>(first + count) * row_bytes;
    } else {
      from = first == 0 ? 0 : b.row_end[i][static_cast<size_t>(first - 1)];
      to = b.row_end[i][static_cast<size_t>(first + count - 1)];
    }
    if (first == 0 && count == b.rows) {
      t.data = b.data[i];
    } else {
      t.data.assign(b.data[i].begin() + static_cast<std::ptrdiff_t>(from),
                    b.data[i].begin() + static_cast<std::ptrdiff_t>(to));
    }
    req->inputs.push_back(std::move(t));
  }
  return req;
}

}  // namespace berth
