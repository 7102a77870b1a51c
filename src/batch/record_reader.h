// Streaming readers of table records for `berth batch`: CSV (RFC 4180, read
// the way pandas' C parser reads it) and JSON Lines. Both read a file in
// blocks, so memory is bounded by the block size and the longest record, not
// by the file; both can start again at a byte offset (resume).
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "berth/status.h"

namespace berth {

// One record (a CSV row or a JSONL line). Views stay valid until the next
// call to Next().
struct Record {
  int64_t line = 0;         // 1-based line of the file where the record starts
  uint64_t offset = 0;      // byte offset where the record starts
  uint64_t end_offset = 0;  // byte offset just past the record and its line end
  int64_t end_line = 0;     // the line the next record starts on
  std::string_view raw;     // the record's bytes without its line end
  // One value per column (see RecordReader::columns); "" where absent/null.
  std::vector<std::string_view> fields;
  // JSONL only: each value as a JSON token ("" where absent), for verbatim
  // JSONL output of kept columns.
  std::vector<std::string_view> json_fields;
  // Not OK when the record cannot be read (wrong field count, malformed
  // JSON, unterminated quote); `raw` still holds its text for the rejects file.
  Status error;
};

// Reads a file in blocks and hands out whole lines or CSV records.
class RecordReader {
 public:
  struct Options {
    size_t block_bytes = 1 << 20;         // read size; the buffer holds at least one block
    size_t max_record_bytes = 64u << 20;  // a longer record fails the run (it cannot be buffered)
  };
  virtual ~RecordReader();

  // Opens `path` as CSV (header row required) or JSONL. For JSONL the
  // columns are the keys of the first record.
  static Result<std::unique_ptr<RecordReader>> OpenCsv(const std::string& path, const Options& options);
  static Result<std::unique_ptr<RecordReader>> OpenJsonl(const std::string& path, const Options& options);

  // Column names: the CSV header (BOM removed), or the first JSON record's keys.
  const std::vector<std::string>& columns() const { return columns_; }
  // JSONL: read only these columns (after columns() was used to pick them).
  virtual void SelectColumns(const std::vector<std::string>& names) { (void)names; }

  // Where the data (the first record after the header) starts, and its line.
  uint64_t data_offset() const { return data_offset_; }
  int64_t data_line() const { return data_line_; }
  uint64_t file_size() const { return file_size_; }
  // Bytes consumed so far (for progress).
  uint64_t offset() const { return file_pos_ - (end_ - pos_); }

  // Continues reading at `offset`, which starts a record on line `line`.
  Status Seek(uint64_t offset, int64_t line);

  // Reads `length` bytes at `offset` (a record's raw text, again). Safe to
  // call from another thread while Next() runs.
  Status ReadRaw(uint64_t offset, size_t length, std::string* out) const;

  // The next record: true, false at the end of the file, or an I/O error or
  // a record over max_record_bytes. Blank lines are skipped.
  virtual Result<bool> Next(Record* record) = 0;

 protected:
  RecordReader(int fd, const Options& options, uint64_t file_size);

  // Makes at least `want` bytes available from pos_ (fewer only at EOF).
  // Moves the pending bytes to the front of the buffer; pointers into the
  // buffer taken before the call are invalid after it.
  Result<size_t> Fill(size_t want);
  // Finds the end of the line starting at pos_ (the '\n', or end_ at EOF),
  // reading more as needed. Returns false at EOF with nothing left.
  Result<bool> NextLine(const char** line_end);

  int fd_;
  Options options_;
  uint64_t file_size_;
  std::vector<char> buf_;
  const char* pos_ = nullptr;  // next unread byte in buf_
  const char* end_ = nullptr;  // end of valid bytes in buf_
  uint64_t file_pos_ = 0;      // file offset of end_
  bool eof_ = false;
  int64_t line_ = 1;
  std::vector<std::string> columns_;
  uint64_t data_offset_ = 0;
  int64_t data_line_ = 1;
};

// Appends `field` to `out` as one CSV field, quoted (RFC 4180) only if it
// holds a comma, a quote or a line end.
void AppendCsvField(std::string_view field, std::string* out);

}  // namespace berth
