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
#include <mutex>
#include <optional>
#include <thread>

#include "batch/batch_files.h"
#include "batch/record_reader.h"
#include "batch/row_writer.h"
#include "berth/batch.h"
#include "common/json_writer.h"
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

// Errors that say nothing about the rows (the model is busy or stopping):
// retrying rows one by one cannot help, and rejecting them would lose them.
bool IsTransient(const Status& s) {
  return s.code() == StatusCode::kResourceExhausted || s.code() == StatusCode::kUnavailable;
}

// One batch of consecutive records: the rows that mapped (sent to the model)
// and the records that did not (rejects), in input order.
struct Batch {
  struct Entry {
    int64_t line = 0;
    int64_t row = -1;     // index among the mapped rows; -1 = rejected
    uint64_t offset = 0;  // where the record's text is in the input (read back for rejects)
    uint64_t length = 0;
    int32_t reject = -1;  // index into rejects: why it was rejected while reading
  };
  struct Reject {
    std::string reason;
    std::string raw;  // the original record
  };
  std::vector<Entry> entries;
  std::vector<Reject> rejects;
  int64_t rows = 0;                          // mapped rows
  std::vector<std::vector<uint8_t>> data;    // per input: the mapped rows' values
  std::vector<std::vector<size_t>> row_end;  // per BYTES input: where each row's values end
  std::string keep_arena;                    // kept values of mapped rows, back to back
  std::vector<size_t> keep_end;              // rows x keep columns
  uint64_t end_offset = 0;                   // input offset after the last record
  int64_t end_line = 1;

  std::mutex mu;
  std::condition_variable cv;
  std::optional<Result<InferResponse>> result;  // set by the scheduler's completion
};

class BatchRun {
 public:
  explicit BatchRun(const BatchOptions& o) : o_(o) {}
  Result<BatchSummary> Run();

 private:
  Status Setup();
  Status Produce();  // main thread: read, map, submit
  void WriteLoop();  // writer thread
  Status WriteBatch(Batch& b);
  Result<InferResponse> RunOne(std::unique_ptr<InferRequest> request);
  std::unique_ptr<InferRequest> MakeRequest(const Batch& b, int64_t first, int64_t count) const;
  Status MaybeCheckpoint(bool force);
  void ProgressLoop();
  std::string Fingerprint() const;
  BatchSummary Summarize();

  const BatchOptions& o_;
  TableFormat in_format_ = TableFormat::kCsv;
  std::string model_dir_;
  std::string rejects_path_;
  std::unique_ptr<InferenceServer> server_;  // the same request path `berth serve` runs
  ServedModel model_;
  std::unique_ptr<RecordReader> reader_;
  std::optional<TableMapper> mapper_;
  std::optional<RowWriter> writer_;
  std::vector<size_t> keep_index_;  // into the record's fields
  std::unique_ptr<PartialFile> out_, rejects_;
  int64_t batch_rows_ = 1;
  size_t window_ = 4;
  bool resumed_ = false;
  int64_t resume_rows_ = 0;        // rows done before this run (resume)
  std::vector<size_t> data_hint_;  // per input: bytes in the largest batch so far
  uint64_t start_offset_ = 0;

  // The in-flight batches, in input order.
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Batch>> queue_;
  bool producer_done_ = false;
  Status writer_status_;
  std::atomic<bool> failed_{false};

  // Progress (written by the writer, read by the progress thread).
  std::atomic<int64_t> rows_read_{0}, rows_written_{0}, rows_rejected_{0};
  std::atomic<uint64_t> offset_{0};
  Checkpoint last_;  // what the last durable checkpoint holds
  Clock::time_point last_checkpoint_time_ = Clock::now();
  Clock::time_point start_ = Clock::now();
  double produce_busy_ = 0, write_busy_ = 0;
  std::atomic<bool> stop_progress_{false};
  std::mutex progress_mu_;
  std::condition_variable progress_cv_;
};

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
  // Never write over the input or one output with the other (the same file by any path or link).
  const std::string* files[] = {&o_.in, &o_.out, &rejects_path_};
  for (int i = 0; i < 3; ++i) {
    for (int j = i + 1; j < 3; ++j) {
      if (SameFile(*files[i], *files[j])) {
        return InvalidArgument("--in, --out and --rejects must be three different files; '" + *files[i] + "' and '" +
                               *files[j] + "' are the same");
      }
    }
  }

  RecordReader::Options ro;
  ro.block_bytes = o_.block_bytes;
  ro.max_record_bytes = o_.max_record_bytes;
  if (in_format_ == TableFormat::kCsv) {
    ASSIGN_OR_RETURN(reader_, RecordReader::OpenCsv(o_.in, ro));
  } else {
    ASSIGN_OR_RETURN(reader_, RecordReader::OpenJsonl(o_.in, ro));
  }

  model_dir_ = dir.string();
  InferenceServer::Options so;
  so.repository.root = model_dir_;
  so.repository.single_model = dir.filename().string();
  so.repository.version = o_.version;
  so.repository.backend_dir = o_.backend_dir;
  ASSIGN_OR_RETURN(server_, InferenceServer::Create(so));
  RETURN_IF_ERROR(server_->LoadModel(so.repository.single_model));
  ASSIGN_OR_RETURN(model_, server_->Resolve(so.repository.single_model, -1));
  const ModelConfig& config = *model_.config;

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

  // Resume from the checkpoint, or start fresh.
  std::string ckpt_path = o_.out + ".checkpoint";
  std::optional<Checkpoint> ckpt;
  if (o_.resume) {
    auto text = ReadWholeFile(ckpt_path);
    if (text.ok()) {
      ASSIGN_OR_RETURN(Checkpoint c, CheckpointFromJson(*text, ckpt_path));
      if (c.fingerprint != Fingerprint()) {
        return FailedPrecondition(ckpt_path + ": made for another input file, model or options (" + c.fingerprint +
                                  "); now: " + Fingerprint() + ". Delete it, or run without --resume to start over");
      }
      ckpt = c;
    } else if (text.status().code() != StatusCode::kNotFound) {
      return text.status();
    } else {
      std::fprintf(stderr, "berth batch: no checkpoint (%s); starting from the beginning\n", ckpt_path.c_str());
    }
  }
  if (ckpt) {
    ASSIGN_OR_RETURN(out_, PartialFile::Open(o_.out, true, ckpt->out_bytes));
    ASSIGN_OR_RETURN(rejects_, PartialFile::Open(rejects_path_, true, ckpt->rejects_bytes));
    RETURN_IF_ERROR(reader_->Seek(ckpt->input_offset, ckpt->input_line));
    last_ = *ckpt;
    rows_read_ = ckpt->rows_read;
    rows_written_ = ckpt->rows_written;
    rows_rejected_ = ckpt->rows_rejected;
    offset_ = ckpt->input_offset;
    resumed_ = true;
  } else {
    ::unlink(ckpt_path.c_str());
    ASSIGN_OR_RETURN(out_, PartialFile::Open(o_.out, false, 0));
    ASSIGN_OR_RETURN(rejects_, PartialFile::Open(rejects_path_, false, 0));
    // The removed checkpoint and the new partial files are durable before any
    // checkpoint can refer to them.
    RETURN_IF_ERROR(SyncParentDirectory(o_.out));
    RETURN_IF_ERROR(SyncParentDirectory(rejects_path_));
    RETURN_IF_ERROR(out_->Append(writer_->Header()));
    RETURN_IF_ERROR(rejects_->Append(writer_->RejectsHeader()));
    last_.fingerprint = Fingerprint();
    last_.input_offset = reader_->data_offset();
    last_.input_line = reader_->data_line();
    last_.out_bytes = out_->size();
    last_.rejects_bytes = rejects_->size();
    offset_ = reader_->data_offset();
  }
  start_offset_ = offset_;
  return Status::Ok();
}

std::string BatchRun::Fingerprint() const {
  struct stat st {};
  ::stat(o_.in.c_str(), &st);
  struct stat yaml {};
  ::stat((model_dir_ + "/model.yaml").c_str(), &yaml);
  std::string fp = "in=" + std::filesystem::absolute(o_.in).string() + " size=" + std::to_string(st.st_size) +
                   " mtime=" + std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) +
                   " in_format=" + (in_format_ == TableFormat::kCsv ? "csv" : "jsonl") +
                   " rejects=" + std::filesystem::absolute(rejects_path_).string() +
                   " model_yaml=" + std::to_string(yaml.st_size) + "@" + std::to_string(yaml.st_mtim.tv_sec) + "." +
                   std::to_string(yaml.st_mtim.tv_nsec) + " model=" + model_.name + "/" +
                   std::to_string(model_.version) +
                   " out=" + (writer_->format() == TableFormat::kCsv ? "csv" : "jsonl") + " keep=";
  for (const auto& k : o_.keep) fp += k + ";";
  return fp;
}

std::unique_ptr<InferRequest> BatchRun::MakeRequest(const Batch& b, int64_t first, int64_t count) const {
  const ModelConfig& config = *model_.config;
  auto req = std::make_unique<InferRequest>();
  for (size_t i = 0; i < mapper_->num_inputs(); ++i) {
    Tensor t;
    t.name = mapper_->input_name(i);
    t.dtype = mapper_->input_dtype(i);
    if (config.batched()) t.shape.push_back(count);
    const auto& rs = mapper_->row_shape(i);
    t.shape.insert(t.shape.end(), rs.begin(), rs.end());
    size_t from, to;
    if (b.row_end[i].empty()) {  // fixed-size values: every row is as long
      size_t row_bytes = b.data[i].size() / static_cast<size_t>(b.rows);
      from = static_cast<size_t>(first) * row_bytes;
      to = static_cast<size_t>(first + count) * row_bytes;
    } else {
      from = first == 0 ? 0 : b.row_end[i][static_cast<size_t>(first - 1)];
      to = b.row_end[i][static_cast<size_t>(first + count - 1)];
    }
    if (first == 0 && count == b.rows) {
      t.data = b.data[i];
    } else {
      t.data.assign(b.data[i].begin() + static_cast<std::ptrdiff_t>(from),
                    b.data[i].begin() + static_cast<std::ptrdiff_t>(to));
    }
    req->inputs.push_back(std::move(t));
  }
  return req;
}

Status BatchRun::Produce() {
  const bool json_out = writer_->format() == TableFormat::kJsonl;
  const bool json_in = in_format_ == TableFormat::kJsonl;
  Record rec;
  bool eof = false;
  while (!eof && !failed_) {
    auto t0 = Clock::now();
    auto b = std::make_shared<Batch>();
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
      if (!any) {
        eof = true;
        break;
      }
      Batch::Entry e;
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
      server_->InferAsync(model_.name, model_.version, MakeRequest(*b, 0, b->rows), [b](Result<InferResponse> r) {
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

Result<InferResponse> BatchRun::RunOne(std::unique_ptr<InferRequest> request) {
  return server_->Infer(model_.name, model_.version, std::move(request));
}

// The output tensors in RowWriter order, each checked to hold `rows` rows.
Result<std::vector<const Tensor*>> OutputsOf(const InferResponse& r, const RowWriter& w, int64_t rows) {
  std::vector<const Tensor*> out;
  for (const RowWriter::Output& o : w.outputs()) {
    const Tensor* found = nullptr;
    for (const Tensor& t : r.outputs) {
      if (t.name == o.name) found = &t;
    }
    if (!found) return Internal("the model returned no output '" + o.name + "'");
    if (found->dtype != o.dtype || found->NumElements() != rows * o.values) {
      return Internal("output '" + o.name + "': the model returned " + std::to_string(found->NumElements()) +
                      " values of " + std::string(DataTypeName(found->dtype)) + " for " + std::to_string(rows) +
                      " rows; expected " + std::to_string(o.values) + " " + std::string(DataTypeName(o.dtype)) +
                      " per row");
    }
    out.push_back(found);
  }
  return out;
}

Status BatchRun::WriteBatch(Batch& b) {
  {
    std::unique_lock<std::mutex> l(b.mu);
    b.cv.wait(l, [&] { return b.rows == 0 || b.result.has_value(); });
  }
  auto t0 = Clock::now();
  // Per mapped row: the response and row within it, or why it failed.
  std::vector<const InferResponse*> resp(static_cast<size_t>(b.rows), nullptr);
  std::vector<int64_t> resp_row(static_cast<size_t>(b.rows), 0);
  std::vector<std::vector<const Tensor*>> tensors_of;  // per response
  std::vector<std::string> row_error(static_cast<size_t>(b.rows));
  std::deque<InferResponse> singles;
  std::vector<std::vector<const Tensor*>> single_tensors;
  std::vector<const Tensor*> batch_tensors;
  if (b.rows > 0) {
    Status batch_error = b.result->status();
    if (IsTransient(batch_error)) return batch_error;
    if (b.result->ok()) {
      auto t = OutputsOf(**b.result, *writer_, b.rows);
      if (t.ok()) {
        batch_tensors = *t;
      } else {
        batch_error = t.status();
      }
    }
    if (batch_error.ok()) {
      for (int64_t r = 0; r < b.rows; ++r) {
        resp[static_cast<size_t>(r)] = &**b.result;
        resp_row[static_cast<size_t>(r)] = r;
      }
    } else if (b.rows == 1 || b.data.empty()) {
      for (auto& e : row_error) e = "the model failed: " + batch_error.message();
    } else {
      // Find the rows that fail on their own; the others still get answers.
      single_tensors.resize(static_cast<size_t>(b.rows));
      for (int64_t r = 0; r < b.rows; ++r) {
        Result<InferResponse> one = RunOne(MakeRequest(b, r, 1));
        if (one.ok()) {
          auto t = OutputsOf(*one, *writer_, 1);
          if (t.ok()) {
            singles.push_back(std::move(*one));
            auto again = OutputsOf(singles.back(), *writer_, 1);
            single_tensors[static_cast<size_t>(r)] = *again;
            resp[static_cast<size_t>(r)] = &singles.back();
            continue;
          }
          one = t.status();
        }
        if (IsTransient(one.status())) return one.status();
        row_error[static_cast<size_t>(r)] = "the model failed on this row: " + one.status().message();
      }
    }
  }
  std::string out, rej;
  int64_t written = 0, rejected = 0;
  std::vector<std::string_view> keep(keep_index_.size());
  for (size_t i = 0; i < b.entries.size(); ++i) {
    const Batch::Entry& e = b.entries[i];
    if (e.row < 0 || resp[static_cast<size_t>(e.row)] == nullptr) {
      if (e.reject >= 0) {
        const Batch::Reject& r = b.rejects[static_cast<size_t>(e.reject)];
        writer_->AppendReject(e.line, r.reason, r.raw, &rej);
      } else {  // the model failed on a row that mapped: its text is read back from the input
        std::string raw;
        RETURN_IF_ERROR(reader_->ReadRaw(e.offset, e.length, &raw));
        writer_->AppendReject(e.line, row_error[static_cast<size_t>(e.row)], raw, &rej);
      }
      ++rejected;
      continue;
    }
    size_t base = static_cast<size_t>(e.row) * keep_index_.size();
    for (size_t k = 0; k < keep.size(); ++k) {
      size_t from = base + k == 0 ? 0 : b.keep_end[base + k - 1];
      keep[k] = std::string_view(b.keep_arena).substr(from, b.keep_end[base + k] - from);
    }
    bool single = !single_tensors.empty();
    const auto& tensors = single ? single_tensors[static_cast<size_t>(e.row)] : batch_tensors;
    writer_->AppendRow(keep, tensors, single ? 0 : resp_row[static_cast<size_t>(e.row)], &out);
    ++written;
  }
  RETURN_IF_ERROR(out_->Append(out));
  RETURN_IF_ERROR(rejects_->Append(rej));
  rows_written_ += written;
  rows_rejected_ += rejected;
  rows_read_ += written + rejected;
  offset_ = b.end_offset;
  last_.input_offset = b.end_offset;
  last_.input_line = b.end_line;
  write_busy_ += Since(t0);
  return MaybeCheckpoint(false);
}

Status BatchRun::MaybeCheckpoint(bool force) {
  int64_t since_rows = rows_read_ - last_.rows_read;
  if (!force && since_rows < o_.checkpoint_rows && Since(last_checkpoint_time_) < o_.checkpoint_secs) {
    return Status::Ok();
  }
  RETURN_IF_ERROR(out_->Sync());
  RETURN_IF_ERROR(rejects_->Sync());
  last_.rows_read = rows_read_;
  last_.rows_written = rows_written_;
  last_.rows_rejected = rows_rejected_;
  last_.out_bytes = out_->size();
  last_.rejects_bytes = rejects_->size();
  last_checkpoint_time_ = Clock::now();
  return WriteFileAtomically(o_.out + ".checkpoint", CheckpointToJson(last_));
}

void BatchRun::WriteLoop() {
  for (;;) {
    std::shared_ptr<Batch> b;
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [&] { return !queue_.empty() || producer_done_; });
      if (queue_.empty()) return;
      b = queue_.front();
    }
    Status s = failed_ ? Status::Ok() : WriteBatch(*b);
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
  bool json = o_.progress == "json";
  bool bar = o_.progress == "bar" || (o_.progress == "auto" && ::isatty(STDERR_FILENO));
  if (!json && !bar) return;
  double period = json ? 1.0 : 0.25;
  uint64_t total = reader_->file_size();
  while (!stop_progress_) {
    {
      std::unique_lock<std::mutex> l(progress_mu_);
      progress_cv_.wait_for(l, std::chrono::duration<double>(period), [&] { return stop_progress_.load(); });
    }
    if (stop_progress_) break;
    double secs = Since(start_);
    uint64_t done = offset_ - start_offset_;
    double rate = secs > 0 ? done / secs : 0;
    double eta = rate > 0 ? (total - offset_) / rate : 0;
    if (json) {
      std::fprintf(stderr,
                   "{\"event\":\"progress\",\"rows_read\":%lld,\"rows_written\":%lld,\"rows_rejected\":%lld,"
                   "\"bytes_read\":%llu,\"bytes_total\":%llu,\"elapsed_s\":%.3f,\"eta_s\":%.1f}\n",
                   static_cast<long long>(rows_read_.load()), static_cast<long long>(rows_written_.load()),
                   static_cast<long long>(rows_rejected_.load()), static_cast<unsigned long long>(offset_.load()),
                   static_cast<unsigned long long>(total), secs, eta);
    } else {
      double pct = total ? 100.0 * offset_ / total : 100.0;
      std::fprintf(stderr, "\r\033[Kberth batch: %lld rows  %.1f MB/s  %.0f%%  ETA %.0f s",
                   static_cast<long long>(rows_read_.load()), rate / 1e6, pct, eta);
    }
    std::fflush(stderr);
  }
  if (bar) std::fprintf(stderr, "\r\033[K");
}

BatchSummary BatchRun::Summarize() {
  BatchSummary s;
  s.rows_read = rows_read_;
  s.rows_written = rows_written_;
  s.rows_rejected = rows_rejected_;
  s.bytes_read = offset_ - start_offset_;
  s.seconds = Since(start_);
  s.resumed = resumed_;
  s.out_path = o_.out;
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
                produce_busy_, model_s, static_cast<unsigned long long>(executions), write_busy_, o_.out.c_str(),
                rejects_path_.c_str());
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
  w.Float(write_busy_);
  w.Key("resumed");
  w.Bool(resumed_);
  w.Key("output");
  w.String(o_.out);
  w.Key("rejects");
  w.String(rejects_path_);
  w.EndObject();
  return s;
}

Result<BatchSummary> BatchRun::Run() {
  RETURN_IF_ERROR(Setup());
  start_ = Clock::now();
  resume_rows_ = rows_read_;
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
    if (writer_status_.ok()) (void)MaybeCheckpoint(true);
    return Status(status.code(), status.message() + " (the output so far is kept: fix this and rerun with --resume)");
  }
  RETURN_IF_ERROR(MaybeCheckpoint(true));
  RETURN_IF_ERROR(rejects_->Commit());
  RETURN_IF_ERROR(out_->Commit());
  ::unlink((o_.out + ".checkpoint").c_str());
  return Summarize();
}

}  // namespace

Result<BatchSummary> RunBatch(const BatchOptions& options) {
  BatchRun run(options);
  return run.Run();
}

}  // namespace berth
