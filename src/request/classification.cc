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

// Element i as Triton writes it: C's %f for floats, the integer for integer types (64-bit ones exactly).
std::string Text(const Tensor& t, int64_t i) {
  switch (t.dtype) {
    case DataType::kUint64: return std::to_string(Load<uint64_t>(t.data.data(), i));
    case DataType::kInt64: return std::to_string(Load<int64_t>(t.data.data(), i));
    case DataType::kFp16:
    case DataType::kFp32: return std::to_string(static_cast<float>(ElementAsDouble(t, i)));
    case DataType::kFp64: return std::to_string(ElementAsDouble(t, i));
    default: return std::to_string(static_cast<int64_t>(ElementAsDouble(t, i)));
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
      double v = ElementAsDouble(t, base + c);
      values[c] = std::isnan(v) ? -std::numeric_limits<double>::infinity() : v;  // NaN ranks last
    }
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + top, order.end(),
                      [&](int64_t a, int64_t b) { return values[a] > values[b] || (values[a] == values[b] && a < b); });
    for (int64_t j = 0; j < top; ++j) {
      const int64_t c = order[j];
      std::string element = Text(t, base + c) + ":" + std::to_string(c);
      if (static_cast<size_t>(c) < spec.labels.size()) element += ":" + spec.labels[c];
      AppendBytesElement(element, &out.data);
    }
  }
  return out;
}

}  // namespace berth
