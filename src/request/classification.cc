#include "request/classification.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

namespace berth {
namespace {

template <typename T>
T Load(const uint8_t* p, int64_t i) {
  T v;
  std::memcpy(&v, p + i * sizeof(T), sizeof(T));
  return v;
}

// The value of element i, for ordering, and as the text Triton writes.
double Value(DataType dtype, const uint8_t* p, int64_t i) {
  switch (dtype) {
    case DataType::kBool:
    case DataType::kUint8: return Load<uint8_t>(p, i);
    case DataType::kUint16: return Load<uint16_t>(p, i);
    case DataType::kUint32: return Load<uint32_t>(p, i);
    case DataType::kUint64: return static_cast<double>(Load<uint64_t>(p, i));
    case DataType::kInt8: return Load<int8_t>(p, i);
    case DataType::kInt16: return Load<int16_t>(p, i);
    case DataType::kInt32: return Load<int32_t>(p, i);
    case DataType::kInt64: return static_cast<double>(Load<int64_t>(p, i));
    case DataType::kFp16: return HalfToFloat(Load<uint16_t>(p, i));
    case DataType::kFp32: return Load<float>(p, i);
    case DataType::kFp64: return Load<double>(p, i);
    case DataType::kBytes: return 0;
  }
  return 0;
}

std::string Text(DataType dtype, const uint8_t* p, int64_t i) {
  switch (dtype) {
    case DataType::kUint64: return std::to_string(Load<uint64_t>(p, i));
    case DataType::kInt64: return std::to_string(Load<int64_t>(p, i));
    case DataType::kFp16:
    case DataType::kFp32: return std::to_string(static_cast<float>(Value(dtype, p, i)));
    case DataType::kFp64: return std::to_string(Load<double>(p, i));
    default: return std::to_string(static_cast<int64_t>(Value(dtype, p, i)));
  }
}

}  // namespace

Tensor Classify(const Tensor& t, const TensorSpec& spec, bool batched, int64_t k) {
  const int64_t total = t.NumElements();
  const int64_t rows = batched ? (t.shape.empty() ? 0 : t.shape[0]) : 1;
  const int64_t classes = rows > 0 ? total / rows : 0;
  const int64_t top = std::min(k, classes);
  Tensor out;
  out.name = t.name;
  out.dtype = DataType::kBytes;
  out.shape = batched ? std::vector<int64_t>{rows, top} : std::vector<int64_t>{top};
  std::vector<int64_t> order(static_cast<size_t>(classes));
  std::vector<double> values(static_cast<size_t>(classes));
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t base = r * classes;
    for (int64_t c = 0; c < classes; ++c) {
      double v = Value(t.dtype, t.data.data(), base + c);
      values[c] = std::isnan(v) ? -std::numeric_limits<double>::infinity() : v;  // NaN ranks last
    }
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + top, order.end(),
                      [&](int64_t a, int64_t b) { return values[a] > values[b] || (values[a] == values[b] && a < b); });
    for (int64_t j = 0; j < top; ++j) {
      const int64_t c = order[j];
      std::string element = Text(t.dtype, t.data.data(), base + c) + ":" + std::to_string(c);
      if (static_cast<size_t>(c) < spec.labels.size()) element += ":" + spec.labels[c];
      AppendBytesElement(element, &out.data);
    }
  }
  return out;
}

}  // namespace berth
