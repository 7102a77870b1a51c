#include "metrics/prometheus.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string_view>
#include <vector>

#include "common/json_writer.h"

namespace berth {
namespace {

struct Family {
  const char* name;
  const char* type;
  const char* help;
};

class Writer {
 public:
  void Header(const Family& f) {
    out_ += "# HELP ";
    out_ += f.name;
    out_ += ' ';
    out_ += f.help;
    out_ += "\n# TYPE ";
    out_ += f.name;
    out_ += ' ';
    out_ += f.type;
    out_ += '\n';
  }
  // name{labels} value
  void Sample(std::string_view name, std::string_view labels, double value) {
    out_ += name;
    if (!labels.empty()) {
      out_ += '{';
      out_ += labels;
      out_ += '}';
    }
    out_ += ' ';
    JsonWriter w(&out_);
    if (!std::isfinite(value)) {  // the exposition format's own spellings
      out_ += std::isnan(value) ? "NaN" : value > 0 ? "+Inf" : "-Inf";
    } else if (value == static_cast<double>(static_cast<int64_t>(value))) {
      w.Int(static_cast<int64_t>(value));
    } else {
      w.Float(value);
    }
    out_ += '\n';
  }
  std::string& str() { return out_; }

 private:
  std::string out_;
};

// Label values escape backslash, quote and newline.
std::string Labels(const VersionMetrics& mv) {
  std::string v;
  for (char c : mv.model) {
    if (c == '\\' || c == '"') v += '\\';
    v += c == '\n' ? 'n' : c;
  }
  return "model=\"" + v + "\",version=\"" + std::to_string(mv.version) + "\"";
}

void WriteHistogram(Writer& w, const char* name, const std::string& labels, const Histogram& h, double scale) {
  uint64_t cumulative = 0;
  std::string base = std::string(name);
  for (size_t i = 0; i <= h.bounds().size(); ++i) {
    cumulative += h.bucket(i);
    std::string le;
    if (i == h.bounds().size()) {
      le = "+Inf";
    } else {
      JsonWriter jw(&le);
      double b = static_cast<double>(h.bounds()[i]) * scale;
      if (b == static_cast<double>(static_cast<int64_t>(b))) {
        jw.Int(static_cast<int64_t>(b));
      } else {
        jw.Float(b);
      }
    }
    w.Sample(base + "_bucket", labels + ",le=\"" + le + "\"", static_cast<double>(cumulative));
  }
  w.Sample(base + "_sum", labels, static_cast<double>(h.sum()) * scale);
  w.Sample(base + "_count", labels, static_cast<double>(h.count()));
}

void WriteProcessMetrics(Writer& w) {
  std::ifstream stat("/proc/self/stat");
  std::string line;
  std::getline(stat, line);
  // Fields after the command name (which may hold spaces) start after the last ')'.
  std::istringstream fields(line.substr(line.rfind(')') + 2));
  std::vector<std::string> f{std::istream_iterator<std::string>(fields), {}};
  double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  if (f.size() > 22) {
    w.Header({"process_cpu_seconds_total", "counter", "User and system CPU time spent in seconds."});
    w.Sample("process_cpu_seconds_total", "", (std::stod(f[11]) + std::stod(f[12])) / ticks);
    w.Header({"process_threads", "gauge", "Number of OS threads in the process."});
    w.Sample("process_threads", "", std::stod(f[17]));
    w.Header({"process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes."});
    w.Sample("process_virtual_memory_bytes", "", std::stod(f[20]));
    w.Header({"process_resident_memory_bytes", "gauge", "Resident memory size in bytes."});
    w.Sample("process_resident_memory_bytes", "", std::stod(f[21]) * page);
    std::ifstream uptime("/proc/uptime");
    double up = 0;
    uptime >> up;
    std::ifstream btime_file("/proc/stat");
    double btime = 0;
    for (std::string l; std::getline(btime_file, l);) {
      if (l.rfind("btime ", 0) == 0) btime = std::stod(l.substr(6));
    }
    w.Header({"process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds."});
    w.Sample("process_start_time_seconds", "", btime + std::stod(f[19]) / ticks);
  }
  int fds = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] != '.') ++fds;
    }
    closedir(d);
    w.Header({"process_open_fds", "gauge", "Number of open file descriptors."});
    w.Sample("process_open_fds", "", fds - 1);  // minus the one opendir holds
  }
}

}  // namespace

std::string RenderPrometheus(const std::vector<VersionMetrics>& versions) {
  Writer w;
  struct Counter {
    Family family;
    double (*get)(const ModelMetrics&);
  };
  static const Counter kCounters[] = {
      {{"berth_inference_request_success_total", "counter", "Inference requests answered successfully."},
       [](const ModelMetrics& m) { return static_cast<double>(m.request_success.load()); }},
      {{"berth_inference_request_failure_total", "counter", "Inference requests answered with an error."},
       [](const ModelMetrics& m) { return static_cast<double>(m.request_failure.load()); }},
      {{"berth_inference_count_total", "counter", "Rows inferred (a batch of N counts N)."},
       [](const ModelMetrics& m) { return static_cast<double>(m.inference_count.load()); }},
      {{"berth_inference_exec_count_total", "counter", "Backend executions (batches)."},
       [](const ModelMetrics& m) { return static_cast<double>(m.execution_count.load()); }},
      {{"berth_inference_queue_duration_us_total", "counter", "Time requests waited in the queue, microseconds."},
       [](const ModelMetrics& m) { return static_cast<double>(m.queue_us.load()); }},
      {{"berth_inference_compute_duration_us_total", "counter",
        "Time requests spent executing (their batch's time), microseconds."},
       [](const ModelMetrics& m) { return static_cast<double>(m.compute_us.load()); }},
      {{"berth_queue_depth", "gauge", "Requests waiting in the queue now."},
       [](const ModelMetrics& m) { return static_cast<double>(m.queue_depth.load()); }},
      {{"berth_stuck_instances", "gauge", "Instances executing past their execution timeout now."},
       [](const ModelMetrics& m) { return static_cast<double>(m.stuck_instances.load()); }},
  };
  for (const Counter& c : kCounters) {
    w.Header(c.family);
    for (const auto& mv : versions) w.Sample(c.family.name, Labels(mv), c.get(*mv.metrics));
  }
  w.Header({"berth_request_duration_seconds", "histogram", "Inference request duration, body received to answer."});
  for (const auto& mv : versions) {
    WriteHistogram(w, "berth_request_duration_seconds", Labels(mv), mv.metrics->request_duration_us, 1e-6);
  }
  w.Header({"berth_batch_size", "histogram", "Rows per backend execution."});
  for (const auto& mv : versions) WriteHistogram(w, "berth_batch_size", Labels(mv), mv.metrics->batch_size, 1);
  // Pipelines, per step.
  bool any_steps =
      std::any_of(versions.begin(), versions.end(), [](const auto& v) { return !v.metrics->steps.empty(); });
  if (any_steps) {
    w.Header({"berth_pipeline_step_total", "counter", "Pipeline steps by outcome (ok, skipped, error, timeout)."});
    for (const auto& mv : versions) {
      for (const auto& s : mv.metrics->steps) {
        std::string labels = Labels(mv) + ",step=\"" + s->name + "\",outcome=";
        w.Sample("berth_pipeline_step_total", labels + "\"ok\"", static_cast<double>(s->ok.load()));
        w.Sample("berth_pipeline_step_total", labels + "\"skipped\"", static_cast<double>(s->skipped.load()));
        w.Sample("berth_pipeline_step_total", labels + "\"error\"", static_cast<double>(s->error.load()));
        w.Sample("berth_pipeline_step_total", labels + "\"timeout\"", static_cast<double>(s->timeout.load()));
      }
    }
    w.Header({"berth_pipeline_step_duration_seconds", "histogram",
              "Pipeline step duration, from sending to its answer (network time for remote steps)."});
    for (const auto& mv : versions) {
      for (const auto& s : mv.metrics->steps) {
        WriteHistogram(w, "berth_pipeline_step_duration_seconds", Labels(mv) + ",step=\"" + s->name + "\"",
                       s->duration_us, 1e-6);
      }
    }
  }
  WriteProcessMetrics(w);
  return std::move(w.str());
}

}  // namespace berth
