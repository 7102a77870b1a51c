#include "image/image_builder.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

namespace berth {
namespace {

namespace fs = std::filesystem;

class ImageBuilderTest : public testing::Test {
 protected:
  void SetUp() override {
    repo_ = fs::path(testing::TempDir()) / ("image-repo-" + std::to_string(::getpid()) + "-" +
                                            testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(repo_);
    fs::create_directories(repo_ / "echo" / "1");
    std::ofstream(repo_ / "echo" / "model.yaml") << "backend: identity\nmax_batch_size: 4\n"
                                                    "inputs:\n  - {name: x, datatype: FP32, shape: [2]}\n"
                                                    "outputs:\n  - {name: y, datatype: FP32, shape: [2]}\n";
    fs::create_directories(repo_ / ".git");
    std::ofstream(repo_ / ".git" / "HEAD") << "ref: refs/heads/main\n";
    options_.model_repository = repo_.string();
    options_.backend_dir = BERTH_TEST_BACKEND_DIR;
    options_.berth_binary = "/proc/self/exe";  // this test binary stands in for berth
    options_.reference = "echo:1";
  }
  void TearDown() override { fs::remove_all(repo_); }

  static const LayerEntry* Find(const LayerSpec& layer, const std::string& path) {
    auto it = std::find_if(layer.entries.begin(), layer.entries.end(), [&](const auto& e) { return e.path == path; });
    return it == layer.entries.end() ? nullptr : &*it;
  }

  fs::path repo_;
  ImageBuildOptions options_;
};

TEST_F(ImageBuilderTest, PlansLayersFromLeastToMostOftenChanged) {
  Result<std::vector<LayerSpec>> layers = PlanImageLayers(options_, LibrarySearchPath::System());
  ASSERT_TRUE(layers.ok()) << layers.status().message();
  // The identity plugin needs nothing beyond berth's own closure: no ML library layer.
  ASSERT_EQ(layers->size(), 3u);
  EXPECT_EQ((*layers)[0].name, "system libraries");
  EXPECT_EQ((*layers)[1].name, "berth and its backend plugins");
  EXPECT_EQ((*layers)[2].name, "models");
  const LayerSpec& system = (*layers)[0];
  ASSERT_NE(Find(system, "lib64/ld-linux-x86-64.so.2"), nullptr);
  ASSERT_NE(Find(system, "usr/lib/x86_64-linux-gnu/libc.so.6"), nullptr);
  ASSERT_NE(Find(system, "etc/passwd"), nullptr);
  EXPECT_NE(Find(system, "etc/passwd")->content.find(":65532:65532:"), std::string::npos);
  ASSERT_NE(Find(system, "tmp"), nullptr);
  EXPECT_EQ(Find(system, "tmp")->mode, 01777);
  const LayerSpec& app = (*layers)[1];
  ASSERT_NE(Find(app, "usr/bin/berth"), nullptr);
  ASSERT_NE(Find(app, "usr/lib/berth/backends/libberth_backend_identity.so"), nullptr);
  EXPECT_EQ(app.entries.size(), 2u);
  const LayerSpec& models = (*layers)[2];
  EXPECT_NE(Find(models, "models/echo/model.yaml"), nullptr);
  EXPECT_NE(Find(models, "models/echo/1"), nullptr);
  for (const auto& e : models.entries) EXPECT_EQ(e.path.find(".git"), std::string::npos) << e.path;
}

TEST_F(ImageBuilderTest, MissingPluginNamesTheModel) {
  options_.backend_dir = (repo_ / "no-such-dir").string();
  Result<std::vector<LayerSpec>> layers = PlanImageLayers(options_, LibrarySearchPath::System());
  ASSERT_FALSE(layers.ok());
  EXPECT_NE(layers.status().message().find("model 'echo'"), std::string::npos) << layers.status().message();
  EXPECT_NE(layers.status().message().find("libberth_backend_identity.so"), std::string::npos)
      << layers.status().message();
}

TEST_F(ImageBuilderTest, PipelinesAndTransformsShipWithNoPluginOfTheirOwn) {
  fs::create_directories(repo_ / "gateway" / "1");
  std::ofstream(repo_ / "gateway" / "model.yaml")
      << "kind: pipeline\nmax_batch_size: 4\ninputs:\n  - {name: x, datatype: FP32, shape: [2]}\n"
         "outputs:\n  - {name: y, from: e.y}\nsteps:\n  - {name: e, model: echo, inputs: {x: $in.x}}\n";
  fs::create_directories(repo_ / "prep" / "1");
  std::ofstream(repo_ / "prep" / "model.yaml")
      << "kind: transform\nmax_batch_size: 4\ninputs:\n  - {name: a, datatype: BYTES, shape: [1]}\n"
         "outputs:\n  - {name: f, datatype: FP32, shape: [1], columns: [a]}\n";
  Result<std::vector<std::string>> backends = RepositoryBackends(repo_.string(), BERTH_TEST_BACKEND_DIR);
  ASSERT_TRUE(backends.ok()) << backends.status().message();
  EXPECT_EQ(*backends, std::vector<std::string>{"identity"});
  Result<std::vector<LayerSpec>> layers = PlanImageLayers(options_, LibrarySearchPath::System());
  ASSERT_TRUE(layers.ok()) << layers.status().message();
  EXPECT_NE(Find(layers->back(), "models/gateway/model.yaml"), nullptr);
  EXPECT_NE(Find(layers->back(), "models/prep/model.yaml"), nullptr);
}

TEST_F(ImageBuilderTest, RepositoryWithoutModelsIsRefused) {
  fs::remove_all(repo_ / "echo");
  Result<std::vector<std::string>> backends = RepositoryBackends(repo_.string(), BERTH_TEST_BACKEND_DIR);
  ASSERT_FALSE(backends.ok());
  EXPECT_NE(backends.status().message().find("holds no model directories"), std::string::npos);
}

TEST_F(ImageBuilderTest, SymlinksLeavingTheRepositoryAreRefused) {
  fs::create_symlink("/etc/hostname", repo_ / "echo" / "1" / "stolen");
  Result<std::vector<LayerSpec>> layers = PlanImageLayers(options_, LibrarySearchPath::System());
  ASSERT_FALSE(layers.ok());
  EXPECT_NE(layers.status().message().find("resolves outside the model repository"), std::string::npos)
      << layers.status().message();
}

TEST(SourceDateEpochTest, ParsesTheEnvironment) {
  ::unsetenv("SOURCE_DATE_EPOCH");
  EXPECT_EQ(*SourceDateEpochFromEnv(), 0);
  ::setenv("SOURCE_DATE_EPOCH", "1700000000", 1);
  EXPECT_EQ(*SourceDateEpochFromEnv(), 1700000000);
  ::setenv("SOURCE_DATE_EPOCH", "-5", 1);
  EXPECT_FALSE(SourceDateEpochFromEnv().ok());
  ::setenv("SOURCE_DATE_EPOCH", "12abc", 1);
  EXPECT_FALSE(SourceDateEpochFromEnv().ok());
  ::unsetenv("SOURCE_DATE_EPOCH");
}

}  // namespace
}  // namespace berth
