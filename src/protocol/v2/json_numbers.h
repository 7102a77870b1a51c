// Reading a JSON integer into a tensor element of type T, shared by the v2
// and TF Serving decoders: whether the element is an integer at all, and
// whether it fits T.
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <limits>
#include <type_traits>

namespace berth {

enum class JsonInt { kOk, kNotAnInteger, kOutOfRange };

template <typename T>
JsonInt ReadJsonInt(const simdjson::dom::element& e, T* out) {
  using simdjson::dom::element_type;
  if (e.type() == element_type::INT64) {
    int64_t x = e.get_int64().value_unsafe();
    bool in_range;
    if constexpr (std::is_signed_v<T>) {
      in_range = x >= std::numeric_limits<T>::min() && x <= std::numeric_limits<T>::max();
    } else {
      in_range = x >= 0 && static_cast<uint64_t>(x) <= std::numeric_limits<T>::max();
    }
    *out = static_cast<T>(x);
    return in_range ? JsonInt::kOk : JsonInt::kOutOfRange;
  }
  if (e.type() == element_type::UINT64) {
    uint64_t x = e.get_uint64().value_unsafe();
    *out = static_cast<T>(x);
    return x <= static_cast<uint64_t>(std::numeric_limits<T>::max()) ? JsonInt::kOk : JsonInt::kOutOfRange;
  }
  return JsonInt::kNotAnInteger;
}

}  // namespace berth
