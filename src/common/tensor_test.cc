#include "berth/tensor.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

namespace berth {
namespace {

TEST(DataTypeTest, NamesRoundTrip) {
  for (const char* n : {"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16",
                        "FP32", "FP64", "BYTES"}) {
    auto d = ParseDataType(n);
    ASSERT_TRUE(d.has_value()) << n;
    EXPECT_EQ(DataTypeName(*d), n);
  }
  EXPECT_FALSE(ParseDataType("fp32").has_value());
  EXPECT_FALSE(ParseDataType("FP33").has_value());
  EXPECT_EQ(DataTypeSize(DataType::kFp64), 8u);
  EXPECT_EQ(DataTypeSize(DataType::kBytes), 0u);
}

TEST(ElementCountTest, RejectsNegativeAndOverflow) {
  EXPECT_EQ(*ElementCount({2, 3, 4}), 24);
  EXPECT_EQ(*ElementCount({}), 1);
  EXPECT_EQ(*ElementCount({5, 0}), 0);
  EXPECT_FALSE(ElementCount({2, -1}).ok());
  auto big = ElementCount({4294967296, 4294967296, 4294967296});
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.status().message().find("too many"), std::string::npos);
  EXPECT_FALSE(ElementCount({1000, 1000}, 999999).ok());
}

TEST(BytesTest, SplitAndAppend) {
  std::vector<uint8_t> buf;
  AppendBytesElement("ab", &buf);
  AppendBytesElement("", &buf);
  AppendBytesElement("xyz", &buf);
  auto parts = SplitBytesElements(buf.data(), buf.size());
  ASSERT_TRUE(parts.ok());
  ASSERT_EQ(parts->size(), 3u);
  EXPECT_EQ((*parts)[0], "ab");
  EXPECT_EQ((*parts)[1], "");
  EXPECT_EQ((*parts)[2], "xyz");
  EXPECT_FALSE(SplitBytesElements(buf.data(), buf.size() - 1).ok());  // last element truncated
  EXPECT_FALSE(SplitBytesElements(buf.data(), 2).ok());               // length prefix truncated
}

TEST(HalfTest, KnownValues) {
  EXPECT_EQ(FloatToHalf(1.0f), 0x3c00);
  EXPECT_EQ(FloatToHalf(-2.0f), 0xc000);
  EXPECT_EQ(FloatToHalf(65504.0f), 0x7bff);
  EXPECT_EQ(FloatToHalf(1e6f), 0x7c00);  // overflow -> inf
  EXPECT_EQ(FloatToHalf(0.0f), 0x0000);
  EXPECT_EQ(FloatToHalf(5.9604645e-8f), 0x0001);  // smallest subnormal
  EXPECT_FLOAT_EQ(HalfToFloat(0x3555), 0.33325195f);
  EXPECT_TRUE(std::isnan(HalfToFloat(FloatToHalf(NAN))));
}

TEST(HalfTest, EveryHalfRoundTrips) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    float f = HalfToFloat(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    EXPECT_EQ(FloatToHalf(f), h) << std::hex << h;
  }
}

}  // namespace
}  // namespace berth
