#include "common/pipeline_spec.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>

#include "common/model_config.h"
#include "common/pipeline_condition.h"

namespace berth {
namespace {

constexpr char kHead[] = R"(kind: pipeline
max_batch_size: 8
inputs:
  - {name: x, datatype: FP32, shape: [16]}
  - {name: note, datatype: BYTES, shape: [1], optional: true}
)";

Result<ModelConfig> Parse(const std::string& rest) { return ParseModelConfig(kHead + rest, "p", "p/model.yaml"); }

TEST(PipelineSpecTest, ParsesStepsOutputsAndLimits) {
  auto c = Parse(R"(outputs:
  - {name: probs, from: mlp.probs}
  - {name: second, from: "rerank.probs ?? mlp.probs", optional: true}
limits: {max_inflight: 7, timeout_ms: 200}
steps:
  - {name: rerank, model: mlp2, version: 3, inputs: {x: mlp.probs}, timeout_ms: 50, on_error: skip}
  - {name: mlp, model: mlp, inputs: {x: $in.x}}
)");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->kind, kPipelineModelKind);
  ASSERT_TRUE(c->pipeline);
  const PipelineSpec& s = *c->pipeline;
  ASSERT_EQ(s.steps.size(), 2u);
  EXPECT_EQ(s.steps[0].name, "mlp");  // sorted: a step after the steps it reads from
  EXPECT_EQ(s.steps[1].name, "rerank");
  EXPECT_EQ(s.steps[1].version, 3);
  EXPECT_EQ(s.steps[1].timeout_ms, 50);
  EXPECT_TRUE(s.steps[1].skip_on_error);
  EXPECT_EQ(s.steps[0].inputs[0].second.ToString(), "$in.x");
  ASSERT_EQ(s.outputs.size(), 2u);
  ASSERT_EQ(s.outputs[1].from.size(), 2u);
  EXPECT_EQ(s.outputs[1].from[0].ToString(), "rerank.probs");
  EXPECT_EQ(s.outputs[1].from[1].ToString(), "mlp.probs");
  EXPECT_TRUE(s.outputs[1].optional);
  EXPECT_EQ(s.max_inflight, 7);
  EXPECT_EQ(s.timeout_ms, 200);
  EXPECT_TRUE(c->inputs[1].optional);
  EXPECT_EQ(c->outputs.size(), 2u);
}

TEST(PipelineSpecTest, ErrorsNameTheKey) {
  struct Case {
    const char* yaml;
    const char* message;
  } cases[] = {
      {"outputs: [{name: y, from: s.y}]\n", "p/model.yaml: steps: expected a list of steps"},
      {"outputs: [{name: y, from: s.y}]\nsteps: [{name: s, model: m, inputs: {x: $in.x}}, {name: s, model: m, "
       "inputs: {x: $in.x}}]\n",
       "steps[1].name: duplicate step name 's'"},
      {"outputs: [{name: y, from: t.y}]\nsteps: [{name: s, model: m, inputs: {x: $in.x}}]\n",
       "outputs[0].from: unknown step 't'"},
      {"outputs: [{name: y, from: s.y}]\nsteps: [{name: s, model: p, inputs: {x: $in.x}}]\n",
       "steps[0].model: a pipeline cannot run itself"},
      {"outputs: [{name: y, from: s.y}]\nsteps: [{name: s, model: m, inputs: {x: s.y}}]\n",
       "steps[0].inputs.x: a step cannot read its own output"},
      {"outputs: [{name: y, from: s.y}]\nsteps: [{name: s, model: m, inputs: {x: $in.x}, on_error: retry}]\n",
       "steps[0].on_error: expected fail or skip"},
      {"outputs: [{name: y}]\nsteps: [{name: s, model: m, inputs: {x: $in.x}}]\n", "outputs[0].from: missing"},
      {"backend: torchscript\noutputs: [{name: y, from: s.y}]\nsteps: [{name: s, model: m, inputs: {x: $in.x}}]\n",
       "backend: unknown key"},
  };
  for (const auto& c : cases) {
    auto r = Parse(c.yaml);
    ASSERT_FALSE(r.ok()) << c.yaml;
    EXPECT_NE(r.status().message().find(c.message), std::string::npos) << r.status().message();
  }
  auto kind = ParseModelConfig("kind: ensemble\n", "p", "p/model.yaml");
  ASSERT_FALSE(kind.ok());
  EXPECT_EQ(kind.status().message(), "p/model.yaml: kind: expected backend, pipeline or transform");
}

Tensor Floats(std::vector<float> v) {
  Tensor t;
  t.dtype = DataType::kFp32;
  t.shape = {static_cast<int64_t>(v.size())};
  for (float f : v) {
    uint8_t b[4];
    std::memcpy(b, &f, 4);
    t.data.insert(t.data.end(), b, b + 4);
  }
  return t;
}

TEST(PipelineSpecTest, RemoteUrlFromTheEnvironment) {
  auto remote = [](const std::string& url) {
    return Parse("outputs: [{name: y, from: s.y}]\nsteps: [{name: s, remote: {url: \"" + url +
                 "\", model: m}, inputs: {x: $in.x}}]\n");
  };
  unsetenv("BERTH_TEST_URL");
  auto c = remote("${BERTH_TEST_URL:-http://127.0.0.1:8100/}");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->pipeline->steps[0].remote->url, "http://127.0.0.1:8100");
  EXPECT_EQ(c->pipeline->steps[0].remote->url_variable, "BERTH_TEST_URL");
  setenv("BERTH_TEST_URL", "http://mlp:8000", 1);
  c = remote("${BERTH_TEST_URL:-http://127.0.0.1:8100}");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->pipeline->steps[0].remote->url, "http://mlp:8000");
  c = remote("${BERTH_TEST_URL}");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->pipeline->steps[0].remote->url, "http://mlp:8000");
  c = remote("http://10.0.0.1:8000");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->pipeline->steps[0].remote->url_variable, "");
  setenv("BERTH_TEST_URL", "ftp://secret-host", 1);
  c = remote("${BERTH_TEST_URL}");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("steps[0].remote.url: expected an http:// or https:// URL (from the "
                                      "environment variable it names)"),
            std::string::npos)
      << c.status().message();
  EXPECT_EQ(c.status().message().find("secret-host"), std::string::npos);  // the value is never quoted
  unsetenv("BERTH_TEST_URL");
  c = remote("${BERTH_TEST_URL}");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("not set"), std::string::npos) << c.status().message();
  for (const char* bad : {"${}", "${lower}", "${1X}", "${X", "${X:-http://a}b", "${X-Y}"}) {
    c = remote(bad);
    ASSERT_FALSE(c.ok()) << bad;
    EXPECT_NE(c.status().message().find("steps[0].remote.url: expected"), std::string::npos)
        << bad << ": " << c.status().message();
  }
}

TEST(ConditionTest, EvaluatesComparisonsQuantifiersAndLogic) {
  Tensor p = Floats({0.2f, 0.95f});
  auto find = [&](const TensorRef& ref) -> const Tensor* { return ref.ToString() == "m.p" ? &p : nullptr; };
  struct Case {
    const char* text;
    bool expected;
  } cases[] = {
      {"any(m.p > 0.9)", true},
      {"all(m.p > 0.9)", false},
      {"m.p > 0.1", true},
      {"m.p > 0.5", false},
      {"0.1 < m.p", true},
      {"not any(m.p >= 1)", true},
      {"any(m.p == 0.2) and m.p != 7", false},  // 0.2f is not 0.2
      {"any(m.p < 0.3) or all(m.p > 1)", true},
      {"(m.p > 0) and (not (m.p > 0.5))", true},
      {"any(x.y > 0)", false},  // absent: false
  };
  for (const auto& c : cases) {
    auto cond = Condition::Parse(c.text);
    ASSERT_TRUE(cond.ok()) << c.text << ": " << cond.status().message();
    auto v = (*cond)->Evaluate(find);
    ASSERT_TRUE(v.ok()) << c.text;
    EXPECT_EQ(*v, c.expected) << c.text;
  }
  auto refs = (*Condition::Parse("any(a.x > 1) or $in.y < 2"))->refs();
  ASSERT_EQ(refs.size(), 2u);
  EXPECT_EQ(refs[0].ToString(), "a.x");
  EXPECT_EQ(refs[1].ToString(), "$in.y");
}

TEST(ConditionTest, ParseErrorsSayWhere) {
  EXPECT_EQ(Condition::Parse("m.p >").status().message(), "at character 6: expected a number");
  EXPECT_EQ(Condition::Parse("m.p > 1 m.q").status().message(), "at character 9: expected and, or or the end");
  EXPECT_EQ(Condition::Parse("any m.p > 1").status().message(), "at character 5: expected '(' after any/all");
  EXPECT_EQ(Condition::Parse("m.p ~ 1").status().message(), "at character 5: expected a comparison (> >= < <= == !=)");
  EXPECT_FALSE(Condition::Parse(std::string(40, '(') + "m.p > 1" + std::string(40, ')')).ok());  // too deep
  EXPECT_FALSE(Condition::Parse("").ok());
}

}  // namespace
}  // namespace berth
