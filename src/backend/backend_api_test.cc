// The plugin boundary's layout, pinned to the backend API version.
//
// Plugins are built against include/berth/*.h and exchange these types with
// the server as C++ objects: a field added, removed, reordered or retyped
// changes what a plugin built before reads. Such a change must bump
// kBackendApiMajor (the loader then refuses old plugins with a clear
// message) and re-pin the layouts here. This test fails when a type changes
// and the version does not: the layout below was measured for API 2.0 on
// x86-64 with libstdc++ (std::string 32 bytes, std::vector 24, std::map 48).
#include "berth/backend_api.h"

#include <gtest/gtest.h>

#include <cstddef>

#pragma GCC diagnostic ignored "-Winvalid-offsetof"  // offsets of non-standard-layout types, on purpose

namespace berth {
namespace {

struct Field {
  const char* name;
  size_t offset;
};

void ExpectLayout(const char* type, size_t size, size_t want_size, std::initializer_list<Field> got,
                  std::initializer_list<size_t> want) {
  EXPECT_EQ(size, want_size) << type << ": size changed; bump kBackendApiMajor and re-pin this test";
  ASSERT_EQ(got.size(), want.size()) << type;
  auto w = want.begin();
  for (const Field& f : got) {
    EXPECT_EQ(f.offset, *w++) << type << "::" << f.name
                              << ": offset changed; bump kBackendApiMajor and re-pin this test";
  }
}

#define BERTH_FIELD(T, f) \
  Field { #f, offsetof(T, f) }

TEST(BackendApiTest, VersionIsTheOneTheLayoutsBelowWerePinnedFor) {
  EXPECT_EQ(kBackendApiMajor, 2) << "a new major version: re-pin every layout in this file for it";
  EXPECT_EQ(kBackendApiMinor, 0);
}

TEST(BackendApiTest, BoundaryTypesKeepTheirLayout) {
  ExpectLayout("BackendTensorSpec", sizeof(BackendTensorSpec), 64,
               {BERTH_FIELD(BackendTensorSpec, name), BERTH_FIELD(BackendTensorSpec, dtype),
                BERTH_FIELD(BackendTensorSpec, shape)},
               {0, 32, 40});
  ExpectLayout("BackendModelConfig", sizeof(BackendModelConfig), 256,
               {BERTH_FIELD(BackendModelConfig, name), BERTH_FIELD(BackendModelConfig, max_batch_size),
                BERTH_FIELD(BackendModelConfig, inputs), BERTH_FIELD(BackendModelConfig, outputs),
                BERTH_FIELD(BackendModelConfig, threads), BERTH_FIELD(BackendModelConfig, parameters),
                BERTH_FIELD(BackendModelConfig, model_dir), BERTH_FIELD(BackendModelConfig, version_dir),
                BERTH_FIELD(BackendModelConfig, model_file), BERTH_FIELD(BackendModelConfig, version),
                BERTH_FIELD(BackendModelConfig, instance_index)},
               {0, 32, 40, 64, 88, 96, 144, 176, 208, 240, 248});
  ExpectLayout("BackendSignature", sizeof(BackendSignature), 56,
               {BERTH_FIELD(BackendSignature, max_batch_size), BERTH_FIELD(BackendSignature, inputs),
                BERTH_FIELD(BackendSignature, outputs)},
               {0, 8, 32});
  ExpectLayout(
      "BackendPlugin", sizeof(BackendPlugin), 32,
      {BERTH_FIELD(BackendPlugin, api_major), BERTH_FIELD(BackendPlugin, api_minor), BERTH_FIELD(BackendPlugin, name),
       BERTH_FIELD(BackendPlugin, model_file), BERTH_FIELD(BackendPlugin, create)},
      {0, 4, 8, 16, 24});
  ExpectLayout(
      "Tensor", sizeof(Tensor), 88,
      {BERTH_FIELD(Tensor, name), BERTH_FIELD(Tensor, dtype), BERTH_FIELD(Tensor, shape), BERTH_FIELD(Tensor, data)},
      {0, 32, 40, 64});
  EXPECT_EQ(sizeof(Status), 40u) << "Status changed; bump kBackendApiMajor and re-pin this test";
}

TEST(BackendApiTest, EnumValuesAreFixed) {
  // DataType crosses the boundary inside every tensor; StatusCode inside every Status.
  const std::pair<DataType, int> kTypes[] = {{DataType::kBool, 0},   {DataType::kUint8, 1},  {DataType::kUint16, 2},
                                             {DataType::kUint32, 3}, {DataType::kUint64, 4}, {DataType::kInt8, 5},
                                             {DataType::kInt16, 6},  {DataType::kInt32, 7},  {DataType::kInt64, 8},
                                             {DataType::kFp16, 9},   {DataType::kFp32, 10},  {DataType::kFp64, 11},
                                             {DataType::kBytes, 12}};
  for (auto [type, value] : kTypes) EXPECT_EQ(static_cast<int>(type), value) << DataTypeName(type);
  EXPECT_EQ(sizeof(DataType), 1u);
  EXPECT_EQ(static_cast<int>(StatusCode::kOk), 0);
  EXPECT_EQ(static_cast<int>(StatusCode::kInvalidArgument), 1);
  EXPECT_EQ(static_cast<int>(StatusCode::kInternal), 11);
}

}  // namespace
}  // namespace berth
