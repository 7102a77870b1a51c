#include "batch/ordered_writer.h"

#include <chrono>
#include <deque>
#include <string>
#include <vector>

namespace berth {
namespace {

// Errors that say nothing about the rows (the model is busy or stopping):
// retrying rows one by one cannot help, and rejecting them would lose them.
bool IsTransient(const Status& s) {
  return s.code() == StatusCode::kResourceExhausted || s.code() == StatusCode::kUnavailable;
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

}  // namespace

Status OrderedWriter::Write(RecordBatch& b) {
  {
    std::unique_lock<std::mutex> l(b.mu);
    b.cv.wait(l, [&] { return b.rows == 0 || b.result.has_value(); });
  }
  auto t0 = std::chrono::steady_clock::now();
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
      auto t = OutputsOf(**b.result, *o_.rows, b.rows);
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
        Result<InferResponse> one = o_.run_one(o_.make_request(b, r, 1));
        if (one.ok()) {
          auto t = OutputsOf(*one, *o_.rows, 1);
          if (t.ok()) {
            singles.push_back(std::move(*one));
            auto again = OutputsOf(singles.back(), *o_.rows, 1);
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
  std::vector<std::string_view> keep(o_.keep_columns);
  for (size_t i = 0; i < b.entries.size(); ++i) {
    const RecordBatch::Entry& e = b.entries[i];
    if (e.row < 0 || resp[static_cast<size_t>(e.row)] == nullptr) {
      if (e.reject >= 0) {
        const RecordBatch::Reject& r = b.rejects[static_cast<size_t>(e.reject)];
        o_.rows->AppendReject(e.line, r.reason, r.raw, &rej);
      } else {  // the model failed on a row that mapped: its text is read back from the input
        std::string raw;
        RETURN_IF_ERROR(o_.reader->ReadRaw(e.offset, e.length, &raw));
        o_.rows->AppendReject(e.line, row_error[static_cast<size_t>(e.row)], raw, &rej);
      }
      ++rejected;
      continue;
    }
    size_t base = static_cast<size_t>(e.row) * o_.keep_columns;
    for (size_t k = 0; k < keep.size(); ++k) {
      size_t from = base + k == 0 ? 0 : b.keep_end[base + k - 1];
      keep[k] = std::string_view(b.keep_arena).substr(from, b.keep_end[base + k] - from);
    }
    bool single = !single_tensors.empty();
    const auto& tensors = single ? single_tensors[static_cast<size_t>(e.row)] : batch_tensors;
    o_.rows->AppendRow(keep, tensors, single ? 0 : resp_row[static_cast<size_t>(e.row)], &out);
    ++written;
  }
  RETURN_IF_ERROR(o_.files->Append(out, rej));
  BatchCounters& c = *o_.counters;
  c.rows_written += written;
  c.rows_rejected += rejected;
  c.rows_read += written + rejected;
  c.offset = b.end_offset;
  busy_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return o_.files->Advance(b.end_offset, b.end_line, c.rows_read, c.rows_written, c.rows_rejected);
}

}  // namespace berth
