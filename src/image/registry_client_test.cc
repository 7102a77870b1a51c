#include "image/registry_client.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>

namespace berth {
namespace {

TEST(RegistryClientTest, ParsesReferences) {
  Result<ImageReference> r = ParseImageReference("localhost:5000/team/churn:2");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->registry, "localhost:5000");
  EXPECT_EQ(r->repository, "team/churn");
  EXPECT_EQ(r->tag, "2");
  r = ParseImageReference("127.0.0.1:5000/app");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->registry, "127.0.0.1:5000");
  EXPECT_EQ(r->tag, "latest");
  r = ParseImageReference("berth-app:1");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->registry, "registry-1.docker.io");
  EXPECT_EQ(r->repository, "library/berth-app");
  EXPECT_EQ(r->auth_key, "https://index.docker.io/v1/");
  r = ParseImageReference("ghcr.io/org/app:v1.2");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->registry, "ghcr.io");
  EXPECT_EQ(r->repository, "org/app");
  EXPECT_FALSE(ParseImageReference("").ok());
  EXPECT_FALSE(ParseImageReference("App:1").ok());
  EXPECT_FALSE(ParseImageReference("app@sha256:abc").ok());
  EXPECT_FALSE(ParseImageReference("app:bad tag").ok());
}

TEST(RegistryClientTest, Base64RoundTrips) {
  for (const std::string& s :
       std::vector<std::string>{"", "a", "ab", "abc", "user:pa55word!", std::string("\0\xff\x10", 3)}) {
    Result<std::string> back = Base64Decode(Base64Encode(s));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, s);
  }
  EXPECT_EQ(Base64Encode("user:pass"), "dXNlcjpwYXNz");
  EXPECT_FALSE(Base64Decode("not*base64").ok());
}

TEST(RegistryClientTest, CredentialsFromTheAuthFile) {
  std::string file = testing::TempDir() + "/auth-" + std::to_string(::getpid()) + ".json";
  std::ofstream(file) << R"({"auths":{"localhost:5000":{"auth":"dXNlcjpwYXNz"},"other:1":{"auth":"!!"}}})";
  ::setenv("REGISTRY_AUTH_FILE", file.c_str(), 1);
  ::setenv("HOME", "/nonexistent", 1);
  ::unsetenv("XDG_RUNTIME_DIR");
  ::unsetenv("DOCKER_CONFIG");
  Result<std::string> c = RegistryCredentials(*ParseImageReference("localhost:5000/a:1"));
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(*c, "user:pass");
  c = RegistryCredentials(*ParseImageReference("unknown.example:5000/a:1"));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(*c, "");
  EXPECT_FALSE(RegistryCredentials(*ParseImageReference("other:1/a:1")).ok());
  std::ofstream(file) << "{not json";
  EXPECT_FALSE(RegistryCredentials(*ParseImageReference("localhost:5000/a:1")).ok());
  ::unsetenv("REGISTRY_AUTH_FILE");
  std::remove(file.c_str());
}

TEST(RegistryClientTest, PushToNothingListeningIsAClearError) {
  ImageReference ref = *ParseImageReference("127.0.0.1:1/app:1");
  PushOptions o;
  o.insecure = true;
  Result<PushResult> r = PushImage(Image{}, ref, o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("127.0.0.1:1"), std::string::npos) << r.status().message();
}

}  // namespace
}  // namespace berth
