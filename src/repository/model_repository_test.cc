#include "repository/model_repository.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

namespace berth {
namespace {

namespace fs = std::filesystem;

constexpr const char* kIdentity = R"(backend: identity
max_batch_size: 0
inputs: [{name: x, datatype: FP32, shape: [-1]}]
outputs: [{name: y, datatype: FP32, shape: [-1]}]
)";

class ModelRepositoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("berth_repo_test_" + std::to_string(::getpid()) + "_" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override {
    repo_.reset();
    fs::remove_all(root_);
  }

  void WriteModel(const std::string& name, const std::string& yaml, std::initializer_list<int> versions = {1}) {
    fs::create_directories(root_ / name);
    std::ofstream(root_ / name / "model.yaml") << yaml;
    for (int v : versions) fs::create_directories(root_ / name / std::to_string(v));
  }

  ModelRepository& Open() {
    ModelRepository::Options o;
    o.root = root_.string();
    o.backend_dir = BERTH_TEST_BACKEND_DIR;
    auto r = ModelRepository::Create(o);
    EXPECT_TRUE(r.ok()) << r.status().message();
    repo_ = std::move(r).value();
    return *repo_;
  }

  // Runs one request through a version's scheduler directly (the repository's own unit: no server).
  static Result<InferResponse> Run(ModelVersion& v) {
    auto request = std::make_unique<InferRequest>();
    request->inputs.push_back(Tensor{"x", DataType::kFp32, {1}, std::vector<uint8_t>(4, 0)});
    std::promise<Result<InferResponse>> p;
    auto f = p.get_future();
    v.scheduler->Enqueue(std::move(request), [&p](Result<InferResponse> r) { p.set_value(std::move(r)); });
    return f.get();
  }

  fs::path root_;
  std::unique_ptr<ModelRepository> repo_;
};

TEST_F(ModelRepositoryTest, LoadsEveryModelAndServesTheHighestVersion) {
  WriteModel("a", kIdentity, {1, 3});
  WriteModel("b", std::string(kIdentity) + "version_policy: all\n", {1, 2});
  ModelRepository& repo = Open();
  repo.LoadAll();
  auto a = repo.Get("a", -1);
  ASSERT_TRUE(a.ok()) << a.status().message();
  EXPECT_EQ((*a)->version, 3);
  EXPECT_EQ(repo.Get("a", 1).status().code(), StatusCode::kNotFound);  // latest: 1 by default
  EXPECT_TRUE(repo.Get("b", 1).ok());
  EXPECT_TRUE(repo.Get("b", 2).ok());
  EXPECT_EQ(repo.Get("nosuch", -1).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Run(**a).ok());
}

TEST_F(ModelRepositoryTest, ChangedFilesReloadAndReplaceTheServingVersion) {
  WriteModel("m", kIdentity);
  ModelRepository& repo = Open();
  ASSERT_TRUE(repo.LoadModel("m").ok());
  std::shared_ptr<ModelVersion> before = *repo.Get("m", 1);
  ASSERT_TRUE(repo.LoadModel("m").ok());  // unchanged: the same version object
  EXPECT_EQ(*repo.Get("m", 1), before);
  std::ofstream(root_ / "m" / "model.yaml") << kIdentity << "instances: 2\n";
  ASSERT_TRUE(repo.LoadModel("m").ok());
  std::shared_ptr<ModelVersion> after = *repo.Get("m", 1);
  EXPECT_NE(after, before);
  EXPECT_EQ(after->config->instances, 2);
  EXPECT_TRUE(Run(*before).ok());  // the replaced version still answers what it holds
}

TEST_F(ModelRepositoryTest, FailedReloadKeepsTheServingVersionAndSaysWhy) {
  WriteModel("m", kIdentity);
  ModelRepository& repo = Open();
  ASSERT_TRUE(repo.LoadModel("m").ok());
  std::shared_ptr<ModelVersion> serving = *repo.Get("m", 1);
  std::ofstream(root_ / "m" / "model.yaml") << kIdentity << "colour: blue\n";
  Status s = repo.LoadModel("m");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("colour"), std::string::npos) << s.message();
  EXPECT_EQ(s.message().find(root_.string()), std::string::npos) << "no server paths: " << s.message();
  EXPECT_EQ(*repo.Get("m", 1), serving);
  auto index = repo.Index();
  ASSERT_EQ(index.size(), 1u);
  EXPECT_EQ(index[0].state, ModelState::kReady);
  EXPECT_NE(index[0].reason.find("colour"), std::string::npos) << index[0].reason;

  // a version whose files fail to load keeps the old files serving too
  std::ofstream(root_ / "m" / "model.yaml") << kIdentity << "parameters: {colour: red}\n";
  EXPECT_FALSE(repo.LoadModel("m").ok());
  EXPECT_EQ(*repo.Get("m", 1), serving);
  EXPECT_NE(repo.Index()[0].reason.find("reload failed, previous files still serving"), std::string::npos);
}

TEST_F(ModelRepositoryTest, UnloadRetiresAVersionOnlyAfterItsRequestsFinish) {
  WriteModel("m", kIdentity);
  ModelRepository& repo = Open();
  ASSERT_TRUE(repo.LoadModel("m").ok());
  repo.StartBackground(0);
  std::shared_ptr<ModelVersion> in_flight = *repo.Get("m", 1);  // as a request's completion holds it
  ASSERT_TRUE(repo.UnloadModel("m").ok());
  EXPECT_EQ(repo.Get("m", 1).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(repo.Index()[0].reason, "unloaded");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // several passes of the reaper
  EXPECT_TRUE(Run(*in_flight).ok()) << "retired while a request still held it";
  std::weak_ptr<ModelVersion> watch = in_flight;
  in_flight.reset();
  for (int i = 0; i < 50 && !watch.expired(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_TRUE(watch.expired()) << "not retired after its last holder let go";
  EXPECT_EQ(repo.UnloadModel("nosuch").code(), StatusCode::kNotFound);
}

TEST_F(ModelRepositoryTest, BrokenModelsAreRecordedAndOthersLoad) {
  WriteModel("good", kIdentity);
  WriteModel("bad_yaml", "backend: identity\ninputs: [\n");
  WriteModel("no_versions", kIdentity, {});
  WriteModel("no_backend", std::string(kIdentity).replace(9, 8, "nosuchbe"));
  ModelRepository& repo = Open();
  repo.LoadAll();
  EXPECT_TRUE(repo.Get("good", -1).ok());
  for (const char* name : {"bad_yaml", "no_versions", "no_backend"}) {
    auto r = repo.Get(name, -1);
    ASSERT_FALSE(r.ok()) << name;
    EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << name;
  }
  for (const auto& e : repo.Index()) {
    if (e.name != "good") {
      EXPECT_FALSE(e.reason.empty()) << e.name;
    }
    EXPECT_EQ(e.reason.find(BERTH_TEST_BACKEND_DIR), std::string::npos) << e.reason;
  }
}

TEST_F(ModelRepositoryTest, SingleModelDirectoryWithAVersionOverride) {
  WriteModel("m", kIdentity, {1, 2});
  ModelRepository::Options o;
  o.root = (root_ / "m").string();
  o.single_model = "m";
  o.version = 1;  // version_policy (latest: 1) would pick 2
  o.backend_dir = BERTH_TEST_BACKEND_DIR;
  auto repo = ModelRepository::Create(o);
  ASSERT_TRUE(repo.ok());
  ASSERT_TRUE((*repo)->LoadModel("m").ok());
  EXPECT_EQ((*(*repo)->Get("m", -1))->version, 1);
  EXPECT_FALSE((*repo)->LoadModel("other").ok());
  o.version = 7;
  auto missing = ModelRepository::Create(o);
  EXPECT_NE((*missing)->LoadModel("m").message().find("no version 7"), std::string::npos);
}

TEST_F(ModelRepositoryTest, WarmUpFailureKeepsAVersionFromServing) {
  WriteModel("m", std::string(kIdentity) + "warmup: {requests: 2}\n");
  ModelRepository::Options o;
  o.root = root_.string();
  o.backend_dir = BERTH_TEST_BACKEND_DIR;
  int calls = 0;
  o.warmup = [&calls](const std::shared_ptr<ModelVersion>& v) {
    ++calls;
    return v->config->warmup_requests == 2 ? Internal("warm-up request 1: refused") : Status::Ok();
  };
  auto repo = ModelRepository::Create(o);
  Status s = (*repo)->LoadModel("m");
  EXPECT_EQ(calls, 1);
  EXPECT_NE(s.message().find("warm-up"), std::string::npos) << s.message();
  EXPECT_EQ((*repo)->Get("m", -1).status().code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace berth
