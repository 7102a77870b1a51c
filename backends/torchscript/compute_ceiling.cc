// berth_torch_ceiling: the compute ceiling for serving benchmarks. Loads a
// TorchScript model with LibTorch from C++ and calls it in a loop on random
// FP32 input, at each batch size given: no HTTP, no (de)serialisation, no
// queue, no berth code. The rate no server on the same intra-op threads can
// beat. Prints one JSON object on its last line.
//
// usage: berth_torch_ceiling MODEL.pt SECONDS THREADS ROW_SHAPE BATCH...
//   ROW_SHAPE: the input's shape after the batch dimension, e.g. 32x128;
//              int64:1024 for INT64 ids (token ids, 0 to 99) rather than FP32
// Run with OPENBLAS_NUM_THREADS=1, as berth runs its models.
#include <ATen/Parallel.h>
#include <torch/script.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

struct Point {
  int64_t batch = 0;
  int64_t calls = 0;
  double seconds = 0;
};

// Calls the model for `seconds` after a warm-up (the first calls of a
// TorchScript module run the profiling executor and optimise the graph).
Point Measure(torch::jit::script::Module& model, const torch::Tensor& x, double seconds) {
  std::vector<torch::jit::IValue> in{x};
  Clock::time_point warm_until =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(std::min(1.0, seconds)));
  while (Clock::now() < warm_until) model.forward(in);
  Point p;
  p.batch = x.size(0);
  Clock::time_point start = Clock::now();
  Clock::time_point now = start;
  int64_t step = 1;
  while (Seconds(start, now) < seconds) {
    for (int64_t i = 0; i < step; ++i) model.forward(in);
    p.calls += step;
    now = Clock::now();
    // Read the clock about every 10 ms whatever one call costs.
    double per_call = Seconds(start, now) / static_cast<double>(p.calls);
    step = std::max<int64_t>(1, std::min<int64_t>(1000, static_cast<int64_t>(0.01 / per_call)));
  }
  p.seconds = Seconds(start, now);
  return p;
}

std::vector<int64_t> ParseShape(const std::string& s) {
  std::vector<int64_t> dims;
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t x = s.find('x', pos);
    std::string part = s.substr(pos, x == std::string::npos ? std::string::npos : x - pos);
    char* end = nullptr;
    long long v = std::strtoll(part.c_str(), &end, 10);
    if (part.empty() || *end != '\0' || v <= 0) {
      std::fprintf(stderr, "berth_torch_ceiling: bad ROW_SHAPE '%s': expected positive integers like 32x128\n",
                   s.c_str());
      std::exit(2);
    }
    dims.push_back(v);
    if (x == std::string::npos) break;
    pos = x + 1;
  }
  return dims;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 6) {
    std::fprintf(stderr, "usage: %s MODEL.pt SECONDS THREADS ROW_SHAPE BATCH...\n", argv[0]);
    return 2;
  }
  const std::string model_path = argv[1];
  const double seconds = std::atof(argv[2]);
  const int threads = std::atoi(argv[3]);
  std::string shape_arg = argv[4];
  const bool ids = shape_arg.rfind("int64:", 0) == 0;
  if (ids) shape_arg.erase(0, 6);
  const std::vector<int64_t> row_shape = ParseShape(shape_arg);
  if (seconds <= 0 || threads <= 0) {
    std::fprintf(stderr, "berth_torch_ceiling: SECONDS and THREADS must be positive\n");
    return 2;
  }
  at::set_num_threads(threads);
  at::set_num_interop_threads(1);
  torch::manual_seed(1);
  torch::jit::script::Module model;
  try {
    model = torch::jit::load(model_path, torch::kCPU);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "berth_torch_ceiling: cannot load %s: %s\n", model_path.c_str(), e.what());
    return 1;
  }
  model.eval();
  c10::InferenceMode guard;
  std::string results;
  for (int i = 5; i < argc; ++i) {
    int64_t batch = std::atoll(argv[i]);
    if (batch <= 0) {
      std::fprintf(stderr, "berth_torch_ceiling: bad batch size '%s'\n", argv[i]);
      return 2;
    }
    std::vector<int64_t> shape{batch};
    shape.insert(shape.end(), row_shape.begin(), row_shape.end());
    torch::Tensor x = ids ? torch::randint(0, 100, shape, torch::kLong) : torch::randn(shape);
    Point p;
    try {
      p = Measure(model, x, seconds);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "berth_torch_ceiling: the model failed at batch %lld: %s\n", static_cast<long long>(batch),
                   e.what());
      return 1;
    }
    char line[256];
    std::snprintf(line, sizeof line,
                  "%s{\"batch\":%lld,\"calls\":%lld,\"seconds\":%.3f,\"calls_per_s\":%.3f,\"rows_per_s\":%.3f,"
                  "\"us_per_call\":%.3f}",
                  results.empty() ? "" : ",", static_cast<long long>(p.batch), static_cast<long long>(p.calls),
                  p.seconds, p.calls / p.seconds, p.calls * p.batch / p.seconds, p.seconds / p.calls * 1e6);
    results += line;
  }
  std::printf(
      "{\"kind\":\"in-process LibTorch from C++, %d thread%s\",\"torch\":\"%s\",\"threads\":%d,\"results\":[%s]}\n",
      threads, threads == 1 ? "" : "s", TORCH_VERSION, at::get_num_threads(), results.c_str());
  return 0;
}
