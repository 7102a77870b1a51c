// Tensors and the Open Inference Protocol v2 datatypes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "berth/status.h"

namespace berth {

enum class DataType : uint8_t {
  kBool,
  kUint8,
  kUint16,
  kUint32,
  kUint64,
  kInt8,
  kInt16,
  kInt32,
  kInt64,
  kFp16,
  kFp32,
  kFp64,
  kBytes,
};

// "FP32" etc., as the v2 protocol spells them.
std::string_view DataTypeName(DataType dtype);
// Parses a v2 datatype name; nullopt for anything else (names are case-sensitive).
std::optional<DataType> ParseDataType(std::string_view name);
// Bytes per element; 0 for BYTES, whose elements vary in size.
size_t DataTypeSize(DataType dtype);

// Product of dims. InvalidArgument if a dim is negative or the product
// overflows int64 or exceeds `limit` elements.
Result<int64_t> ElementCount(const std::vector<int64_t>& shape, int64_t limit = INT64_MAX);

// "[1,16]"
std::string ShapeToString(const std::vector<int64_t>& shape);

// A named, typed, shaped buffer. Numeric data is little-endian, row-major and
// packed. BYTES data uses the v2 binary layout: each element is a 4-byte
// little-endian length followed by that many bytes.
struct Tensor {
  std::string name;
  DataType dtype = DataType::kFp32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;

  // Number of elements the shape describes (shape is assumed validated).
  int64_t NumElements() const;
};

// Splits BYTES tensor data into its elements. InvalidArgument if the
// length prefixes do not exactly cover `data`.
Result<std::vector<std::string_view>> SplitBytesElements(const uint8_t* data, size_t size);
// Appends one BYTES element (length prefix + bytes) to `out`.
void AppendBytesElement(std::string_view element, std::vector<uint8_t>* out);
// Element i of a numeric (or BOOL: 0/1) tensor as a double; NaN for BYTES.
double ElementAsDouble(const Tensor& t, int64_t i);

// IEEE 754 half precision conversions (round to nearest even).
uint16_t FloatToHalf(float value);
float HalfToFloat(uint16_t half);

}  // namespace berth
