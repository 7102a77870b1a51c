// `berth batch`: reader -> parser/mapper -> batches -> model instances ->
// ordered writer. The main thread reads and maps records into batches of
// up to max_batch_size rows and hands each to the model's scheduler; a
// writer thread takes the batches back in input order, writes every row to
// the output or the rejects file, and checkpoints. At most `window` batches
// are in flight, so memory is bounded by the batch size, not by the file.
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "batch/checkpointer.h"
#include "batch/ordered_writer.h"
#include "batch/record_batch.h"
#include "batch/record_reader.h"
#include "batch/row_writer.h"
#include "batch/shards.h"
#include "berth/batch.h"
#include "common/json_writer.h"
#include "common/pipeline_spec.h"
#include "pipeline/pipeline_kind.h"
#include "repository/model_source.h"
#include "server/inference_server.h"
#include "transform/table_mapper.h"

namespace berth {
namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// True if `a` and `b` name one file: the same canonical path, or the same inode.
bool SameFile(const std::string& a, const std::string& b) {
  std::error_code ec1, ec2;
  auto ca = std::filesystem::weakly_canonical(a, ec1), cb = std::filesystem::weakly_canonical(b, ec2);
  if (!ec1 && !ec2 && ca == cb) return true;
  struct stat sa, sb;
  return ::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

class BatchRun {
 public:
  explicit BatchRun(const BatchOptions& o) : o_(o) {}
  Result<BatchSummary> Run();

 private:
  Status Setup();
  Status Produce();  // main thread: read, map, submit
  void WriteLoop();  // writer thread
  void ProgressLoop();
  std::unique_ptr<InferRequest> Request(const RecordBatch& b, int64_t first, int64_t count) const {
    return MakeRequest(b, first, count, *mapper_, model_.config->batched());
  }
  std::string Fingerprint() const;
  BatchSummary Summarize();

  const BatchOptions& o_;
  TableFormat in_format_ = TableFormat::kCsv;
  std::string model_dir_;
  std::string out_path_;  // --out, or its part (--shard)
  std::string rejects_path_;
  std::unique_ptr<OutputLock> lock_;
  ShardRange shard_;
  std::unique_ptr<InferenceServer> server_;  // the same request path `berth serve` runs
  ServedModel model_;
  std::unique_ptr<RecordReader> reader_;
  std::optional<TableMapper> mapper_;
  std::optional<RowWriter> writer_;
  std::vector<size_t> keep_index_;  // into the record's fields
  std::unique_ptr<Checkpointer> files_;
  std::optional<OrderedWriter> ordered_;
  int64_t batch_rows_ = 1;
  size_t window_ = 4;
  bool resumed_ = false;
  int64_t resume_rows_ = 0;        // rows done before this run (resume)
  std::vector<size_t> data_hint_;  // per input: bytes in the largest batch so far
  uint64_t start_offset_ = 0;

  // The in-flight batches, in input order.
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<RecordBatch>> queue_;
  bool producer_done_ = false;
  Status writer_status_;
  std::atomic<bool> failed_{false};

  BatchCounters counters_;  // written by the writer, read by the progress thread
  Clock::time_point start_ = Clock::now();
  double produce_busy_ = 0;
  std::atomic<bool> stop_progress_{false};
  std::mutex progress_mu_;
  std::condition_variable progress_cv_;
};

namespace {

// The local models pipeline `name` of `root` runs, nested pipelines
// included, each after the models it runs (remote steps need none).
std::vector<std::string> StepModels(const std::string& root, const std::string& name) {
  std::vector<std::string> order;
  std::set<std::string> seen{name};
  std::function<void(const std::string&)> visit = [&](const std::string& n) {
    Result<ModelSource> s = ReadModelSource(root + "/" + n, n);
    if (!s.ok() || !s->config.pipeline) return;
    for (const PipelineStep& step : s->config.pipeline->steps) {
      if (step.remote || !IsValidModelName(step.model) || !seen.insert(step.model).second) continue;
      visit(step.model);
      order.push_back(step.model);
    }
  };
  visit(name);
  return order;
}

}  // namespace

Status BatchRun::Setup() {
  namespace fs = std::filesystem;
  fs::path dir = fs::path(o_.model_dir).lexically_normal();
  if (dir.filename().empty()) dir = dir.parent_path();
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return NotFound(o_.model_dir + ": not a model directory");
  if (o_.out.empty()) return InvalidArgument("--out: required");
  ASSIGN_OR_RETURN(in_format_, ResolveTableFormat(o_.in_format, o_.in, "--in-format"));
  ASSIGN_OR_RETURN(TableFormat out_format, ResolveTableFormat(o_.out_format, o_.out, "--format"));
  rejects_path_ =
      o_.rejects.empty() ? o_.out + (out_format == TableFormat::kCsv ? ".rejects.csv" : ".rejects.jsonl") : o_.rejects;
  out_path_ = o_.out;
  if (o_.shard_count > 0) {
    if (o_.shard_index < 0 || o_.shard_index >= o_.shard_count) {
      return InvalidArgument("--shard: expected I/N with 0 <= I < N");
    }
    out_path_ = ShardPath(o_.out, o_.shard_index);
    rejects_path_ = ShardPath(rejects_path_, o_.shard_index);
  }
  // Never write over the input or one output with the other (the same file by any path or link).
  const std::string* files[] = {&o_.in, &out_path_, &rejects_path_};
  for (int i = 0; i < 3; ++i) {
    for (int j = i + 1; j < 3; ++j) {
      if (SameFile(*files[i], *files[j])) {
        return InvalidArgument("--in, --out and --rejects must be three different files; '" + *files[i] + "' and '" +
                               *files[j] + "' are the same");
      }
    }
  }

  ASSIGN_OR_RETURN(lock_, OutputLock::Acquire(out_path_));

  RecordReader::Options ro;
  ro.block_bytes = o_.block_bytes;
  ro.max_record_bytes = o_.max_record_bytes;
  if (in_format_ == TableFormat::kCsv) {
    ASSIGN_OR_RETURN(reader_, RecordReader::OpenCsv(o_.in, ro));
  } else {
    ASSIGN_OR_RETURN(reader_, RecordReader::OpenJsonl(o_.in, ro));
  }

  model_dir_ = dir.string();
  std::string name = dir.filename().string();
  // A pipeline runs its steps' models: they live beside it, in its repository.
  Result<ModelSource> probe = ReadModelSource(model_dir_, name);
  bool pipeline = probe.ok() && probe->config.pipeline;
  InferenceServer::Options so;
  so.repository.root = pipeline ? dir.parent_path().string() : model_dir_;
  so.repository.single_model = pipeline ? "" : name;
  so.repository.version = o_.version;
  so.repository.backend_dir = o_.backend_dir;
  ASSIGN_OR_RETURN(server_, InferenceServer::Create(so));
  if (pipeline) {
    server_->RegisterKind(kPipelineModelKind, PipelineKind(server_.get()));
    for (const std::string& step_model : StepModels(dir.parent_path().string(), name)) {
      Status s = server_->LoadModel(step_model);
      if (!s.ok()) return s.WithContext("pipeline step model '" + step_model + "'");
    }
  }
  RETURN_IF_ERROR(server_->LoadModel(name));
  ASSIGN_OR_RETURN(model_, server_->Resolve(name, -1));
  // A transform model applies its transforms itself: its inputs take the columns as they are.
  ModelConfig config = *model_.config;
  if (config.kind == kTransformModelKind) config.transforms = Transforms{};

  // Columns: CSV reads every column of the header; JSONL only those used.
  std::vector<std::string> columns = reader_->columns();
  {
    ASSIGN_OR_RETURN(TableMapper all, TableMapper::Create(config, columns));
    if (in_format_ == TableFormat::kJsonl) {
      std::vector<std::string> selected;
      for (size_t i : all.used_columns()) selected.push_back(columns[i]);
      for (const std::string& k : o_.keep) {
        if (std::find(selected.begin(), selected.end(), k) == selected.end()) selected.push_back(k);
      }
      columns = selected;
      reader_->SelectColumns(columns);
      ASSIGN_OR_RETURN(all, TableMapper::Create(config, columns));
    }
    mapper_.emplace(std::move(all));
  }
  for (const std::string& k : o_.keep) {
    auto it = std::find(columns.begin(), columns.end(), k);
    if (it == columns.end() && in_format_ == TableFormat::kCsv) {
      std::string list;
      for (const auto& c : columns) list += (list.empty() ? "" : ", ") + c;
      return InvalidArgument("--keep " + k + ": no such column; the input's columns are: " + list);
    }
    keep_index_.push_back(static_cast<size_t>(it - columns.begin()));
  }
  ASSIGN_OR_RETURN(RowWriter w, RowWriter::Create(out_format, config, o_.keep));
  writer_.emplace(std::move(w));

  int64_t max_rows = config.batched() ? config.max_batch_size : 1;
  batch_rows_ = o_.batch_size > 0 ? std::min(o_.batch_size, max_rows) : max_rows;
  // Our batches are the only requests, so a window below max_queue_size never
  // overflows the model's queue (one more may come from a per-row retry).
  window_ =
      static_cast<size_t>(std::max<int64_t>(1, std::min<int64_t>(2 * config.instances + 2, config.max_queue_size - 1)));

  shard_.begin = reader_->data_offset();
  shard_.begin_line = reader_->data_line();
  if (o_.shard_count > 0) {
    ASSIGN_OR_RETURN(shard_, FindShardRange(reader_.get(), o_.shard_index, o_.shard_count));
    RETURN_IF_ERROR(reader_->Seek(shard_.begin, shard_.begin_line));
  }

  // Resume from the checkpoint, or start fresh.
  Checkpointer::Options co;
  co.out = out_path_;
  co.rejects = rejects_path_;
  co.fingerprint = Fingerprint();
  co.every_rows = o_.checkpoint_rows;
  co.every_secs = o_.checkpoint_secs;
  std::optional<Checkpoint> ckpt;
  if (o_.resume) {
    ASSIGN_OR_RETURN(ckpt, Checkpointer::Load(co));
    if (!ckpt)
      std::fprintf(stderr, "berth batch: no checkpoint (%s.checkpoint); starting from the beginning\n",
                   out_path_.c_str());
  }
  if (ckpt) {
    ASSIGN_OR_RETURN(files_, Checkpointer::Resume(co, *ckpt));
    RETURN_IF_ERROR(reader_->Seek(ckpt->input_offset, ckpt->input_line));
    counters_.rows_read = ckpt->rows_read;
    counters_.rows_written = ckpt->rows_written;
    counters_.rows_rejected = ckpt->rows_rejected;
    counters_.offset = ckpt->input_offset;
    resumed_ = true;
  } else {
    ASSIGN_OR_RETURN(
        files_, Checkpointer::Start(co, writer_->Header(), writer_->RejectsHeader(), shard_.begin, shard_.begin_line));
    counters_.offset = shard_.begin;
  }
  OrderedWriter::Options wo;
  wo.rows = &*writer_;
  wo.reader = reader_.get();
  wo.keep_columns = keep_index_.size();
  wo.make_request = [this](const RecordBatch& b, int64_t first, int64_t count) { return Request(b, first, count); };
  wo.run_one = [this](std::unique_ptr<InferRequest> r) {
    return server_->Infer(model_.name, model_.version, std::move(r));
  };
  wo.files = files_.get();
  wo.counters = &counters_;
  ordered_.emplace(std::move(wo));
  start_offset_ = counters_.offset;
  return Status::Ok();
}

std::string BatchRun::Fingerprint() const {
  struct stat st {};
  ::stat(o_.in.c_str(), &st);
  struct stat yaml {};
  ::stat((model_dir_ + "/model.yaml").c_str(), &yaml);
  std::string fp =
      "in=" + std::filesystem::absolute(o_.in).string() + " size=" + std::to_string(st.st_size) +
      " mtime=" + std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) +
      " in_format=" + (in_format_ == TableFormat::kCsv ? "csv" : "jsonl") +
      " rejects=" + std::filesystem::absolute(rejects_path_).string() + " model_yaml=" + std::to_string(yaml.st_size) +
      "@" + std::to_string(yaml.st_mtim.tv_sec) + "." + std::to_string(yaml.st_mtim.tv_nsec) + " model=" + model_.name +
      "/" + std::to_string(model_.version) + " out=" + (writer_->format() == TableFormat::kCsv ? "csv" : "jsonl") +
      " shard=" + std::to_string(o_.shard_index) + "/" + std::to_string(o_.shard_count) + " keep=";
  for (const auto& k : o_.keep) fp += k + ";";
  return fp;
}

Status BatchRun::Produce() {
  const bool json_out = writer_->format() == TableFormat::kJsonl;
  const bool json_in = in_format_ == TableFormat::kJsonl;
  Record rec;
  bool eof = false;
  while (!eof && !failed_) {
    auto t0 = Clock::now();
    auto b = std::make_shared<RecordBatch>();
    b->data.resize(mapper_->num_inputs());
    b->row_end.resize(mapper_->num_inputs());
    // Sized like the previous batch, so a batch fills without reallocating.
    b->entries.reserve(static_cast<size_t>(batch_rows_));
    for (size_t i = 0; i < b->data.size(); ++i) {
      b->data[i].reserve(data_hint_.size() > i ? data_hint_[i] : 0);
      if (mapper_->input_dtype(i) == DataType::kBytes) b->row_end[i].reserve(static_cast<size_t>(batch_rows_));
    }
    b->end_offset = reader_->offset();
    b->end_line = 0;
    // A batch holds at most batch_rows_ records, mapped or rejected, so a file
    // of bad records is bounded (and checkpointed) like any other.
    while (static_cast<int64_t>(b->entries.size()) < batch_rows_) {
      ASSIGN_OR_RETURN(bool any, reader_->Next(&rec));
      if (!any || rec.offset >= shard_.end) {  // the end of the file, or of this shard
        eof = true;
        break;
      }
      RecordBatch::Entry e;
      e.line = rec.line;
      Status s = rec.error.ok() ? mapper_->AppendRow(rec.fields, &b->data) : rec.error;
      if (s.ok()) {
        e.row = b->rows++;
        for (size_t i = 0; i < b->data.size(); ++i) {
          if (mapper_->input_dtype(i) == DataType::kBytes) b->row_end[i].push_back(b->data[i].size());
        }
        for (size_t k : keep_index_) {
          std::string_view v = k < rec.fields.size() ? rec.fields[k] : std::string_view();
          if (json_out && json_in) {
            b->keep_arena.append(k < rec.json_fields.size() ? rec.json_fields[k] : std::string_view());
          } else if (json_out) {
            b->keep_arena.append(JsonQuote(v));
          } else {
            b->keep_arena.append(v);
          }
          b->keep_end.push_back(b->keep_arena.size());
        }
      } else {
        e.reject = static_cast<int32_t>(b->rejects.size());
        b->rejects.push_back({s.message(), std::string(rec.raw)});
      }
      e.offset = rec.offset;
      e.length = rec.raw.size();
      b->entries.push_back(std::move(e));
      b->end_offset = rec.end_offset;
      b->end_line = rec.end_line;
    }
    if (b->entries.empty()) break;
    data_hint_.resize(b->data.size());
    for (size_t i = 0; i < b->data.size(); ++i) data_hint_[i] = std::max(data_hint_[i], b->data[i].size());
    produce_busy_ += Since(t0);

    if (b->rows > 0) {
      // b->data stays for per-row retries should the batch fail.
      server_->InferAsync(model_.name, model_.version, Request(*b, 0, b->rows), [b](Result<InferResponse> r) {
        std::lock_guard<std::mutex> l(b->mu);
        b->result = std::move(r);
        b->cv.notify_all();
      });
    }
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return queue_.size() < window_ || failed_; });
    queue_.push_back(std::move(b));
    cv_.notify_all();
  }
  return Status::Ok();
}

void BatchRun::WriteLoop() {
  for (;;) {
    std::shared_ptr<RecordBatch> b;
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [&] { return !queue_.empty() || producer_done_; });
      if (queue_.empty()) return;
      b = queue_.front();
    }
    Status s = failed_ ? Status::Ok() : ordered_->Write(*b);
    std::lock_guard<std::mutex> l(mu_);
    queue_.pop_front();
    if (!s.ok() && writer_status_.ok()) {
      writer_status_ = s;
      failed_ = true;
    }
    cv_.notify_all();
  }
}

void BatchRun::ProgressLoop() {
  if (!o_.on_progress) return;
  uint64_t total = reader_->file_size();
  while (!stop_progress_) {
    {
      std::unique_lock<std::mutex> l(progress_mu_);
      progress_cv_.wait_for(l, std::chrono::duration<double>(o_.progress_period_s),
                            [&] { return stop_progress_.load(); });
    }
    if (stop_progress_) break;
    BatchProgress p;
    p.rows_read = counters_.rows_read;
    p.rows_written = counters_.rows_written;
    p.rows_rejected = counters_.rows_rejected;
    p.bytes_done = counters_.offset;
    p.bytes_total = total;
    p.elapsed_s = Since(start_);
    double rate = p.elapsed_s > 0 ? static_cast<double>(p.bytes_done - start_offset_) / p.elapsed_s : 0;
    p.bytes_per_s = rate;
    p.eta_s = rate > 0 ? static_cast<double>(total - p.bytes_done) / rate : 0;
    o_.on_progress(p);
  }
}

BatchSummary BatchRun::Summarize() {
  BatchSummary s;
  s.rows_read = counters_.rows_read;
  s.rows_written = counters_.rows_written;
  s.rows_rejected = counters_.rows_rejected;
  s.bytes_read = counters_.offset - start_offset_;
  s.seconds = Since(start_);
  s.resumed = resumed_;
  s.out_path = out_path_;
  s.rejects_path = rejects_path_;
  s.ok_ = s.rows_rejected <= o_.max_rejects;
  double model_s = model_.metrics->compute_us.load() / 1e6;
  uint64_t executions = model_.metrics->execution_count.load();
  char line[1024];
  std::snprintf(line, sizeof line,
                "berth batch: %lld rows read = %lld written + %lld rejected%s in %.2f s (%.0f rows/s, %.1f MB/s); "
                "parse %.2f s, model %.2f s in %llu executions, write %.2f s; output %s, rejects %s",
                static_cast<long long>(s.rows_read), static_cast<long long>(s.rows_written),
                static_cast<long long>(s.rows_rejected), resumed_ ? " (resumed)" : "", s.seconds,
                s.seconds > 0 ? (s.rows_read - resume_rows_) / s.seconds : 0, s.bytes_read / 1e6 / s.seconds,
                produce_busy_, model_s, static_cast<unsigned long long>(executions), ordered_->busy_seconds(),
                out_path_.c_str(), rejects_path_.c_str());
  s.text = line;
  JsonWriter w(&s.json);
  w.BeginObject();
  w.Key("event");
  w.String("summary");
  w.Key("ok");
  w.Bool(s.ok_);
  w.Key("rows_read");
  w.Int(s.rows_read);
  w.Key("rows_written");
  w.Int(s.rows_written);
  w.Key("rows_rejected");
  w.Int(s.rows_rejected);
  w.Key("bytes_read");
  w.Int(s.bytes_read);
  w.Key("seconds");
  w.Float(s.seconds);
  w.Key("parse_seconds");
  w.Float(produce_busy_);
  w.Key("model_seconds");
  w.Float(model_s);
  w.Key("write_seconds");
  w.Float(ordered_->busy_seconds());
  w.Key("resumed");
  w.Bool(resumed_);
  w.Key("output");
  w.String(out_path_);
  w.Key("rejects");
  w.String(rejects_path_);
  w.EndObject();
  return s;
}

Result<BatchSummary> BatchRun::Run() {
  RETURN_IF_ERROR(Setup());
  start_ = Clock::now();
  resume_rows_ = counters_.rows_read;
  std::thread writer([this] { WriteLoop(); });
  std::thread progress([this] { ProgressLoop(); });
  Status produced = Produce();
  {
    std::lock_guard<std::mutex> l(mu_);
    producer_done_ = true;
    if (!produced.ok()) failed_ = true;
    cv_.notify_all();
  }
  writer.join();
  {
    std::lock_guard<std::mutex> l(progress_mu_);
    stop_progress_ = true;
    progress_cv_.notify_all();
  }
  progress.join();
  server_->Stop();
  Status status = produced.ok() ? writer_status_ : produced;
  if (!status.ok()) {
    // Keep what was written durable so that --resume can continue from here.
    if (writer_status_.ok()) (void)files_->Flush();
    return Status(status.code(), status.message() + " (the output so far is kept: fix this and rerun with --resume)");
  }
  RETURN_IF_ERROR(files_->Commit());
  return Summarize();
}

}  // namespace

Result<BatchSummary> RunBatch(const BatchOptions& options) {
  BatchRun run(options);
  return run.Run();
}

}  // namespace berth
