#include "berth/tensor.h"

#include <cmath>
#include <cstring>

namespace berth {
namespace {

struct DataTypeInfo {
  DataType dtype;
  std::string_view name;
  size_t size;
};

constexpr DataTypeInfo kDataTypes[] = {
    {DataType::kBool, "BOOL", 1},     {DataType::kUint8, "UINT8", 1},   {DataType::kUint16, "UINT16", 2},
    {DataType::kUint32, "UINT32", 4}, {DataType::kUint64, "UINT64", 8}, {DataType::kInt8, "INT8", 1},
    {DataType::kInt16, "INT16", 2},   {DataType::kInt32, "INT32", 4},   {DataType::kInt64, "INT64", 8},
    {DataType::kFp16, "FP16", 2},     {DataType::kFp32, "FP32", 4},     {DataType::kFp64, "FP64", 8},
    {DataType::kBytes, "BYTES", 0},
};

}  // namespace

std::string_view DataTypeName(DataType dtype) { return kDataTypes[static_cast<int>(dtype)].name; }

std::optional<DataType> ParseDataType(std::string_view name) {
  for (const auto& info : kDataTypes) {
    if (info.name == name) return info.dtype;
  }
  return std::nullopt;
}

size_t DataTypeSize(DataType dtype) { return kDataTypes[static_cast<int>(dtype)].size; }

Result<int64_t> ElementCount(const std::vector<int64_t>& shape, int64_t limit) {
  int64_t count = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    int64_t d = shape[i];
    if (d < 0) return InvalidArgument("dimension " + std::to_string(i) + " is negative (" + std::to_string(d) + ")");
    if (d != 0 && count > limit / d) {
      return InvalidArgument("shape " + ShapeToString(shape) + " has too many elements");
    }
    count *= d;
  }
  return count;
}

std::string ShapeToString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ",";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

int64_t Tensor::NumElements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

Result<std::vector<std::string_view>> SplitBytesElements(const uint8_t* data, size_t size) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos < size) {
    if (size - pos < 4) {
      return InvalidArgument("BYTES element at byte " + std::to_string(pos) + " has a truncated 4-byte length");
    }
    uint32_t len;
    std::memcpy(&len, data + pos, 4);
    pos += 4;
    if (len > size - pos) {
      return InvalidArgument("BYTES element at byte " + std::to_string(pos - 4) + " claims " + std::to_string(len) +
                             " bytes but only " + std::to_string(size - pos) + " remain");
    }
    out.emplace_back(reinterpret_cast<const char*>(data + pos), len);
    pos += len;
  }
  return out;
}

void AppendBytesElement(std::string_view element, std::vector<uint8_t>* out) {
  uint32_t len = static_cast<uint32_t>(element.size());
  size_t at = out->size();
  out->resize(at + 4 + element.size());
  std::memcpy(out->data() + at, &len, 4);
  if (!element.empty()) std::memcpy(out->data() + at + 4, element.data(), element.size());
}

uint16_t FloatToHalf(float value) {
  uint32_t f;
  std::memcpy(&f, &value, 4);
  uint32_t sign = (f >> 16) & 0x8000u;
  uint32_t exp = (f >> 23) & 0xffu;
  uint32_t mant = f & 0x7fffffu;
  if (exp == 0xff) return static_cast<uint16_t>(sign | 0x7c00u | (mant ? 0x200u : 0));  // inf / nan
  int32_t e = static_cast<int32_t>(exp) - 127 + 15;
  if (e >= 0x1f) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow -> inf
  if (e <= 0) {                                                 // subnormal or zero
    if (e < -10) return static_cast<uint16_t>(sign);
    mant |= 0x800000u;
    uint32_t shift = static_cast<uint32_t>(14 - e);
    uint32_t half_mant = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1);
    uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (half_mant & 1))) ++half_mant;
    return static_cast<uint16_t>(sign | half_mant);
  }
  uint32_t half = sign | (static_cast<uint32_t>(e) << 10) | (mant >> 13);
  uint32_t rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (half & 1))) ++half;  // may carry into the exponent: correct
  return static_cast<uint16_t>(half);
}

float HalfToFloat(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t f;
  if (exp == 0) {
    if (mant == 0) {
      f = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400u) == 0);
      f = sign | (static_cast<uint32_t>(127 - 15 - e) << 23) | ((mant & 0x3ffu) << 13);
    }
  } else if (exp == 0x1f) {
    f = sign | 0x7f800000u | (mant << 13);
  } else {
    f = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float out;
  std::memcpy(&out, &f, 4);
  return out;
}

double ElementAsDouble(const Tensor& t, int64_t i) {
  auto get = [&](auto zero) {
    decltype(zero) v;
    std::memcpy(&v, t.data.data() + static_cast<size_t>(i) * sizeof v, sizeof v);
    return v;
  };
  switch (t.dtype) {
    case DataType::kBool: return t.data[static_cast<size_t>(i)] != 0 ? 1 : 0;
    case DataType::kInt8: return get(int8_t{});
    case DataType::kInt16: return get(int16_t{});
    case DataType::kInt32: return get(int32_t{});
    case DataType::kInt64: return static_cast<double>(get(int64_t{}));
    case DataType::kUint8: return get(uint8_t{});
    case DataType::kUint16: return get(uint16_t{});
    case DataType::kUint32: return get(uint32_t{});
    case DataType::kUint64: return static_cast<double>(get(uint64_t{}));
    case DataType::kFp16: return HalfToFloat(get(uint16_t{}));
    case DataType::kFp32: return get(float{});
    case DataType::kFp64: return get(double{});
    case DataType::kBytes: break;
  }
  return std::nan("");
}

}  // namespace berth
