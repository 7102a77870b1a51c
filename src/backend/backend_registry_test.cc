#include "backend/backend_registry.h"

#include <gtest/gtest.h>

namespace berth {
namespace {

TEST(BackendRegistryTest, LoadsIdentityOnce) {
  BackendRegistry registry(BERTH_TEST_BACKEND_DIR);
  auto a = registry.Get("identity");
  ASSERT_TRUE(a.ok()) << a.status().message();
  EXPECT_STREQ((*a)->plugin->name, "identity");
  EXPECT_EQ((*a)->plugin->api_major, kBackendApiMajor);
  auto b = registry.Get("identity");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*a, *b);
}

TEST(BackendRegistryTest, MissingPluginIsNotFound) {
  BackendRegistry registry(BERTH_TEST_BACKEND_DIR);
  auto r = registry.Get("no_such_backend");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("libberth_backend_no_such_backend.so"), std::string::npos);
}

TEST(BackendRegistryTest, RefusesNewerApiMajor) {
  BackendRegistry registry(BERTH_TEST_FUTURE_BACKEND_DIR);
  auto r = registry.Get("future");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("newer than this berth's"), std::string::npos) << r.status().message();
}

}  // namespace
}  // namespace berth
