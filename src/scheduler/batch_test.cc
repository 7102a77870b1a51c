#include "scheduler/batch.h"

#include <gtest/gtest.h>

#include <cstring>

namespace berth {
namespace {

InferRequest Req(std::vector<int64_t> shape, std::vector<int32_t> values) {
  InferRequest r;
  Tensor t{"x", DataType::kInt32, std::move(shape), std::vector<uint8_t>(values.size() * 4)};
  std::memcpy(t.data.data(), values.data(), t.data.size());
  r.batch_size = t.shape[0];
  r.inputs.push_back(std::move(t));
  return r;
}

TEST(BatchTest, CanBatchOnlySameRowShapes) {
  EXPECT_TRUE(CanBatchTogether(Req({1, 2}, {1, 2}), Req({3, 2}, {1, 2, 3, 4, 5, 6})));
  EXPECT_FALSE(CanBatchTogether(Req({1, 2}, {1, 2}), Req({1, 3}, {1, 2, 3})));
}

TEST(BatchTest, MergeThenSplitRoundTrips) {
  InferRequest a = Req({1, 2}, {1, 2});
  InferRequest b = Req({2, 2}, {3, 4, 5, 6});
  std::vector<Tensor> merged = MergeInputs({&a, &b});
  ASSERT_EQ(merged.size(), 1u);
  EXPECT_EQ(merged[0].shape, (std::vector<int64_t>{3, 2}));
  std::vector<int32_t> all(6);
  std::memcpy(all.data(), merged[0].data.data(), 24);
  EXPECT_EQ(all, (std::vector<int32_t>{1, 2, 3, 4, 5, 6}));

  auto parts = SplitOutputs(std::move(merged), {1, 2});
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0][0].shape, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(parts[1][0].shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(parts[0][0].data.size(), 8u);
  EXPECT_EQ(parts[1][0].data.size(), 16u);
}

TEST(BatchTest, SplitsBytesByElementsPerRow) {
  Tensor t{"s", DataType::kBytes, {3, 2}, {}};
  for (const char* e : {"a", "bb", "", "dddd", "e", "ff"}) AppendBytesElement(e, &t.data);
  std::vector<Tensor> outs;
  outs.push_back(t);
  auto parts = SplitOutputs(std::move(outs), {2, 1});
  auto first = SplitBytesElements(parts[0][0].data.data(), parts[0][0].data.size());
  auto second = SplitBytesElements(parts[1][0].data.data(), parts[1][0].data.size());
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(*first, (std::vector<std::string_view>{"a", "bb", "", "dddd"}));
  EXPECT_EQ(*second, (std::vector<std::string_view>{"e", "ff"}));
}

}  // namespace
}  // namespace berth
