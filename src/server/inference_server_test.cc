#include "server/inference_server.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <optional>

namespace berth {
namespace {

namespace fs = std::filesystem;

constexpr const char* kIdentity = R"(backend: identity
max_batch_size: 4
inputs: [{name: x, datatype: FP32, shape: [2]}]
outputs: [{name: y, datatype: FP32, shape: [2]}]
)";

class InferenceServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("berth_server_test_" + std::to_string(::getpid()) + "_" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    Write("m", kIdentity);
  }
  void TearDown() override {
    server_.reset();
    fs::remove_all(root_);
  }
  void Write(const std::string& name, const std::string& yaml) {
    fs::create_directories(root_ / name / "1");
    std::ofstream(root_ / name / "model.yaml") << yaml;
  }
  InferenceServer& Start() {
    InferenceServer::Options o;
    o.repository.root = root_.string();
    o.repository.backend_dir = BERTH_TEST_BACKEND_DIR;
    auto s = InferenceServer::Create(o);
    EXPECT_TRUE(s.ok()) << s.status().message();
    server_ = std::move(s).value();
    server_->LoadAll();
    return *server_;
  }
  static std::unique_ptr<InferRequest> Request(std::vector<int64_t> shape, size_t floats) {
    auto r = std::make_unique<InferRequest>();
    r->inputs.push_back(Tensor{"x", DataType::kFp32, std::move(shape), std::vector<uint8_t>(4 * floats, 0)});
    return r;
  }
  uint64_t Successes() const { return server_->MetricsSnapshot().at(0).metrics->request_success.load(); }
  uint64_t Failures() const { return server_->MetricsSnapshot().at(0).metrics->request_failure.load(); }

  fs::path root_;
  std::unique_ptr<InferenceServer> server_;
};

TEST_F(InferenceServerTest, ValidatesRunsAndCountsEveryRequest) {
  InferenceServer& s = Start();
  auto ok = s.Infer("m", -1, Request({3, 2}, 6));
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  EXPECT_EQ(ok->model_name, "m");
  EXPECT_EQ(ok->outputs.at(0).shape, (std::vector<int64_t>{3, 2}));
  auto bad = s.Infer("m", -1, Request({3, 5}, 15));  // wrong dim
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  auto too_many_rows = s.Infer("m", -1, Request({5, 2}, 10));  // past max_batch_size
  EXPECT_EQ(too_many_rows.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Successes(), 1u);
  EXPECT_EQ(Failures(), 2u);
  EXPECT_EQ(s.in_flight(), 0);
}

TEST_F(InferenceServerTest, AnUnknownModelIsNotFoundWhateverTheBody) {
  InferenceServer& s = Start();
  Result<std::unique_ptr<InferRequest>> undecodable = InvalidArgument("malformed JSON");
  std::optional<Result<InferResponse>> got;
  s.InferAsync("nosuch", -1, std::move(undecodable), [&](Result<InferResponse> r) { got = std::move(r); });
  ASSERT_TRUE(got.has_value());  // refused at once, on this thread
  EXPECT_EQ(got->status().code(), StatusCode::kNotFound);
  // A known model with a body that did not decode: the front end's error, counted.
  s.InferAsync("m", -1, Result<std::unique_ptr<InferRequest>>(InvalidArgument("malformed JSON")),
               [&](Result<InferResponse> r) { got = std::move(r); });
  EXPECT_EQ(got->status().message(), "malformed JSON");
  EXPECT_EQ(Failures(), 1u);
}

TEST_F(InferenceServerTest, MetadataAndReadiness) {
  InferenceServer& s = Start();
  EXPECT_EQ(s.Ready().code(), StatusCode::kUnavailable);  // not marked loaded yet
  s.MarkLoaded();
  EXPECT_TRUE(s.Ready().ok());
  auto m = s.Metadata("m", -1);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->platform, "identity");
  EXPECT_EQ(m->versions, (std::vector<int64_t>{1}));
  EXPECT_EQ(m->inputs.at(0).shape, (std::vector<int64_t>{-1, 2}));
  EXPECT_TRUE(s.ModelReady("m", 1).ok());
  EXPECT_EQ(s.ModelReady("m", 2).code(), StatusCode::kNotFound);
  s.BeginDrain();
  EXPECT_EQ(s.Ready().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(s.draining_flag().load());
}

TEST_F(InferenceServerTest, WarmUpRunsThroughTheRequestPathUncounted) {
  Write("warm", std::string(kIdentity) + "warmup: {requests: 3}\n");
  Write("coldfail", std::string(kIdentity) + "warmup: {requests: 1}\nparameters: {fail: \"true\"}\n");
  InferenceServer& s = Start();
  auto warm = s.Resolve("warm", -1);
  ASSERT_TRUE(warm.ok()) << warm.status().message();
  // Executed (coldfail below fails its warm-up), but the statistics count what clients send: from zero.
  EXPECT_EQ(warm->metrics->execution_count.load(), 0u);
  EXPECT_EQ(warm->metrics->inference_count.load(), 0u);
  EXPECT_EQ(warm->metrics->batch_size.count(), 0u);
  EXPECT_EQ(warm->metrics->request_success.load(), 0u);
  auto cold = s.ModelReady("coldfail", -1);
  EXPECT_EQ(cold.code(), StatusCode::kUnavailable);
  EXPECT_NE(cold.message().find("warm-up request 1"), std::string::npos) << cold.message();
}

TEST_F(InferenceServerTest, ARequestTimeoutBecomesADeadline) {
  Write("slow", std::string(kIdentity) + "parameters: {delay_ms: \"200\"}\n");
  InferenceServer& s = Start();
  std::vector<std::future<Result<InferResponse>>> answers;
  for (int i = 0; i < 3; ++i) {
    auto r = Request({1, 2}, 2);
    r->timeout_us = 50000;  // 50 ms: the second and third wait longer than that behind the first
    auto p = std::make_shared<std::promise<Result<InferResponse>>>();
    answers.push_back(p->get_future());
    s.InferAsync("slow", -1, std::move(r), [p](Result<InferResponse> res) { p->set_value(std::move(res)); });
  }
  EXPECT_TRUE(answers[0].get().ok());
  EXPECT_EQ(answers[1].get().status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(answers[2].get().status().code(), StatusCode::kDeadlineExceeded);
}

}  // namespace
}  // namespace berth
