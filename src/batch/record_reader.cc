#include "batch/record_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

#include "common/file_util.h"

namespace berth {
namespace {

// Reads RFC 4180 CSV as pandas' C parser does: a quote opens a quoted field
// only at the start of a field; inside one, "" is a quote; characters after
// the closing quote and before the next comma are kept; a quote elsewhere is
// data; CRLF and LF end records, blank lines are skipped.
class CsvReader final : public RecordReader {
 public:
  CsvReader(int fd, const Options& options, uint64_t size) : RecordReader(fd, options, size) {}

  Status ReadHeader() {
    ASSIGN_OR_RETURN(size_t n, Fill(3));
    if (n >= 3 && std::memcmp(pos_, "\xEF\xBB\xBF", 3) == 0) pos_ += 3;  // UTF-8 BOM
    Record header;
    ASSIGN_OR_RETURN(bool any, ReadRecord(&header, /*check_count=*/false));
    if (!any) return InvalidArgument("the file is empty: a CSV file needs a header row naming its columns");
    if (!header.error.ok()) return InvalidArgument("header row: " + header.error.message());
    for (std::string_view f : header.fields) columns_.emplace_back(f);
    data_offset_ = offset();
    data_line_ = line_;
    return Status::Ok();
  }

  Result<bool> Next(Record* record) override { return ReadRecord(record, /*check_count=*/true); }

 private:
  Result<bool> ReadRecord(Record* rec, bool check_count) {
    for (;;) {
      if (pos_ == end_) {
        ASSIGN_OR_RETURN(size_t n, Fill(1));
        if (n == 0) return false;
      }
      if (FastRecord(rec, check_count)) return true;
      size_t i = 0;  // scan position, relative to pos_ (survives refills)
      size_t len = 0, term = 0;
      bool in_quotes = false, had_quotes = false, cr_term = false;
      for (;;) {
        const char* b = pos_;
        size_t avail = static_cast<size_t>(end_ - pos_);
        bool need_more = false;
        if (!in_quotes) {
          auto* nl = static_cast<const char*>(std::memchr(b + i, '\n', avail - i));
          size_t stop = nl ? static_cast<size_t>(nl - b) : avail;
          // A CR that no LF follows ends a record too (old Mac files), as in pandas.
          bool lone_cr = false, cr_pending = false;
          for (auto* cr = static_cast<const char*>(std::memchr(b + i, '\r', stop - i)); cr;
               cr = static_cast<const char*>(std::memchr(cr + 1, '\r', stop - static_cast<size_t>(cr + 1 - b)))) {
            size_t at = static_cast<size_t>(cr - b);
            if (at + 1 < avail && b[at + 1] == '\n') continue;  // CRLF
            (at + 1 == avail && !eof_ ? cr_pending : lone_cr) = true;
            stop = at;
            break;
          }
          auto* q = static_cast<const char*>(std::memchr(b + i, '"', stop - i));
          while (q && q != b && q[-1] != ',') {  // a quote inside an unquoted field is data
            q = static_cast<const char*>(std::memchr(q + 1, '"', stop - static_cast<size_t>(q + 1 - b)));
          }
          if (q) {
            in_quotes = had_quotes = true;
            i = static_cast<size_t>(q - b) + 1;
            continue;
          }
          if (lone_cr || (nl && !cr_pending)) {
            len = stop;
            term = 1;
            cr_term = lone_cr;
            break;
          }
          i = cr_pending ? stop : avail;  // after a refill, look at that CR again
          need_more = true;
        } else {
          auto* q = static_cast<const char*>(std::memchr(b + i, '"', avail - i));
          if (!q) {
            i = avail;
            need_more = true;
          } else if (static_cast<size_t>(q - b) + 1 == avail && !eof_) {
            i = static_cast<size_t>(q - b);  // is it "" or a closing quote? read on
            need_more = true;
          } else if (static_cast<size_t>(q - b) + 1 < avail && q[1] == '"') {
            i = static_cast<size_t>(q - b) + 2;
            continue;
          } else {
            in_quotes = false;
            i = static_cast<size_t>(q - b) + 1;
            continue;
          }
        }
        if (need_more && eof_) {
          len = avail;
          break;
        }
        if (avail > options_.max_record_bytes) {
          return ResourceExhausted("line " + std::to_string(line_) + ": a record longer than " +
                                   std::to_string(options_.max_record_bytes) +
                                   " bytes (an unterminated quote?); raise --max-record-bytes");
        }
        RETURN_IF_ERROR(Fill(avail + options_.block_bytes).status());
      }
      const char* b = pos_;
      size_t content = len;
      if (content > 0 && b[content - 1] == '\r' && !in_quotes && !cr_term) --content;
      int64_t newlines = std::count(b, b + len + term, '\n') + (cr_term ? 1 : 0);
      if (!in_quotes && !had_quotes &&
          std::all_of(b, b + content, [](char ch) { return ch == ' ' || ch == '\t'; })) {  // a blank line
        pos_ += len + term;
        line_ += newlines;
        continue;
      }
      rec->line = line_;
      rec->offset = offset();
      rec->raw = std::string_view(b, content);
      rec->error = Status::Ok();
      if (in_quotes) {
        rec->error = InvalidArgument("unterminated quoted field (the file ends inside quotes)");
        rec->fields.clear();
      } else {
        SplitFields(rec->raw, had_quotes, &rec->fields);
        if (check_count && rec->fields.size() != columns_.size()) {
          rec->error = InvalidArgument("expected " + std::to_string(columns_.size()) +
                                       " fields (as in the header), got " + std::to_string(rec->fields.size()));
        }
      }
      pos_ += len + term;
      line_ += newlines;
      rec->end_offset = offset();
      rec->end_line = line_;
      return true;
    }
  }

  // The common case in one pass: a record without quotes whose line end is
  // already in the buffer. False (nothing consumed) for anything else.
  bool FastRecord(Record* rec, bool check_count) {
    const char* b = pos_;
    const char* p = b;
    const char* e = end_;
    std::vector<std::string_view>& fields = rec->fields;
    if (fields.size() < columns_.size()) fields.resize(columns_.size());
    size_t n = 0;  // fields found; the vector is cut to n at the end
    const char* field = b;
    for (; p < e; ++p) {
      char c = *p;
      if (c != ',' && c != '\n' && c != '"' && c != '\r') continue;
      if (c == '\r') {
        if (p + 1 == e) return false;  // what follows is not read yet
        if (p[1] == '\n') continue;    // CRLF: the LF ends the record
        break;                         // a lone CR ends it too (old Mac files), as in pandas
      }
      if (c == ',') {
        if (n < fields.size()) {
          fields[n] = std::string_view(field, static_cast<size_t>(p - field));
        } else {
          fields.emplace_back(field, static_cast<size_t>(p - field));
        }
        ++n;
        field = p + 1;
      } else if (c == '\n') {
        break;
      } else {
        return false;
      }
    }
    if (p == e) return false;
    const char* content_end = p;
    if (*p == '\n' && content_end > b && content_end[-1] == '\r') --content_end;
    if (content_end == b || *b == ' ' || *b == '\t') {
      // A blank line (or one of spaces and tabs, which pandas skips too): the general path skips it.
      if (std::all_of(b, content_end, [](char ch) { return ch == ' ' || ch == '\t'; })) return false;
    }
    if (n < fields.size()) {
      fields[n] = std::string_view(field, static_cast<size_t>(content_end - field));
      fields.resize(n + 1);
    } else {
      fields.emplace_back(field, static_cast<size_t>(content_end - field));
    }
    rec->line = line_;
    rec->offset = offset();
    rec->raw = std::string_view(b, static_cast<size_t>(content_end - b));
    rec->error = Status::Ok();
    if (check_count && rec->fields.size() != columns_.size()) {
      rec->error = InvalidArgument("expected " + std::to_string(columns_.size()) + " fields (as in the header), got " +
                                   std::to_string(rec->fields.size()));
    }
    pos_ = p + 1;
    ++line_;
    rec->end_offset = offset();
    rec->end_line = line_;
    return true;
  }

  void SplitFields(std::string_view r, bool had_quotes, std::vector<std::string_view>* fields) {
    fields->clear();
    const char* p = r.data();
    const char* e = p + r.size();
    if (!had_quotes) {
      for (;;) {
        auto* c = static_cast<const char*>(std::memchr(p, ',', static_cast<size_t>(e - p)));
        if (!c) {
          fields->emplace_back(p, static_cast<size_t>(e - p));
          return;
        }
        fields->emplace_back(p, static_cast<size_t>(c - p));
        p = c + 1;
      }
    }
    // Slow path: unescape quoted fields into their own strings.
    size_t n = static_cast<size_t>(std::count(p, e, ',')) + 1;
    if (store_.size() < n) store_.resize(n);
    size_t k = 0;
    for (;;) {
      std::string& s = store_[k++];
      s.clear();
      if (p < e && *p == '"') {
        ++p;
        for (;;) {  // in quotes
          auto* q = static_cast<const char*>(std::memchr(p, '"', static_cast<size_t>(e - p)));
          if (!q) q = e;  // cannot happen: the scan saw the closing quote
          s.append(p, q);
          p = q + 1;
          if (q + 1 < e && q[1] == '"') {
            s.push_back('"');
            p = q + 2;
            continue;
          }
          break;
        }
        if (p > e) p = e;
      }
      auto* c = static_cast<const char*>(std::memchr(p, ',', static_cast<size_t>(e - p)));
      const char* stop = c ? c : e;
      s.append(p, stop);  // after a closing quote, up to the comma: kept as data
      fields->emplace_back(s);
      if (!c) return;
      p = c + 1;
    }
  }

  std::vector<std::string> store_;
};

// One JSON object per line; blank lines are skipped.
class JsonlReader final : public RecordReader {
 public:
  JsonlReader(int fd, const Options& options, uint64_t size) : RecordReader(fd, options, size) {}

  Status ReadFirstKeys() {
    ASSIGN_OR_RETURN(size_t n, Fill(3));
    if (n >= 3 && std::memcmp(pos_, "\xEF\xBB\xBF", 3) == 0) pos_ += 3;
    data_offset_ = offset();
    data_line_ = line_;
    uint64_t start = offset();
    int64_t line = line_;
    Record first;
    ASSIGN_OR_RETURN(bool any, Next(&first));
    if (!any) return InvalidArgument("the file is empty: JSON Lines input needs at least one record");
    if (!first.error.ok()) return InvalidArgument("line " + std::to_string(first.line) + ": " + first.error.message());
    simdjson::dom::object obj = doc_.get_object().value_unsafe();
    for (auto field : obj) columns_.emplace_back(field.key);
    return Seek(start, line);
  }

  void SelectColumns(const std::vector<std::string>& names) override { selected_ = names; }

  Result<bool> Next(Record* rec) override {
    for (;;) {
      const char* nl = nullptr;
      ASSIGN_OR_RETURN(bool any, NextLine(&nl));
      if (!any) return false;
      const char* b = pos_;
      uint64_t start = offset();
      size_t len = static_cast<size_t>(nl - b);
      size_t content = len;
      if (content > 0 && b[content - 1] == '\r') --content;
      size_t term = nl < end_ ? 1 : 0;
      bool blank = std::all_of(b, b + content, [](char c) { return c == ' ' || c == '\t'; });
      pos_ += len + term;
      rec->line = line_;
      line_ += static_cast<int64_t>(term);
      if (blank) continue;
      rec->raw = std::string_view(b, content);
      rec->offset = start;
      rec->end_offset = offset();
      rec->end_line = line_;
      rec->error = Parse(rec);
      return true;
    }
  }

 private:
  Status Parse(Record* rec) {
    // The buffer keeps simdjson::SIMDJSON_PADDING spare bytes, so no copy is needed.
    if (auto err = parser_.parse(rec->raw.data(), rec->raw.size(), false).get(doc_)) {
      return InvalidArgument(std::string("malformed JSON: ") + simdjson::error_message(err));
    }
    if (!doc_.is_object()) return InvalidArgument("expected a JSON object {\"column\": value, ...}");
    simdjson::dom::object obj = doc_.get_object().value_unsafe();
    size_t n = selected_.size();
    rec->fields.assign(n, std::string_view());
    rec->json_fields.assign(n, std::string_view());
    if (text_.size() < n) text_.resize(n);
    if (json_.size() < n) json_.resize(n);
    for (size_t i = 0; i < n; ++i) {
      simdjson::dom::element v;
      if (obj.at_key(selected_[i]).get(v)) continue;  // absent: missing
      json_[i] = simdjson::minify(v);
      rec->json_fields[i] = json_[i];
      std::string& t = text_[i];
      t.clear();
      switch (v.type()) {
        case simdjson::dom::element_type::NULL_VALUE: break;
        case simdjson::dom::element_type::STRING: t = std::string(v.get_string().value_unsafe()); break;
        case simdjson::dom::element_type::BOOL: t = v.get_bool().value_unsafe() ? "true" : "false"; break;
        case simdjson::dom::element_type::INT64:
        case simdjson::dom::element_type::UINT64:
        case simdjson::dom::element_type::DOUBLE: t = json_[i]; break;
        default:
          return InvalidArgument("column '" + selected_[i] + "': expected a number, string, bool or null, got " +
                                 (v.is_array() ? "an array" : "an object"));
      }
      rec->fields[i] = t;
    }
    return Status::Ok();
  }

  simdjson::dom::parser parser_;
  simdjson::dom::element doc_;
  std::vector<std::string> selected_;
  std::vector<std::string> text_, json_;
};

Result<int> OpenFile(const std::string& path, uint64_t* size) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "--in " + path + ": cannot open");
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return InvalidArgument("--in " + path + ": not a regular file");
  }
  *size = static_cast<uint64_t>(st.st_size);
  return fd;
}

}  // namespace

RecordReader::RecordReader(int fd, const Options& options, uint64_t file_size)
    : fd_(fd), options_(options), file_size_(file_size) {
  buf_.resize(options_.block_bytes + simdjson::SIMDJSON_PADDING);
  pos_ = end_ = buf_.data();
}

RecordReader::~RecordReader() { ::close(fd_); }

Result<std::unique_ptr<RecordReader>> RecordReader::OpenCsv(const std::string& path, const Options& options) {
  uint64_t size = 0;
  ASSIGN_OR_RETURN(int fd, OpenFile(path, &size));
  auto reader = std::make_unique<CsvReader>(fd, options, size);
  if (Status s = reader->ReadHeader(); !s.ok()) return s.WithContext("--in " + path);
  return std::unique_ptr<RecordReader>(std::move(reader));
}

Result<std::unique_ptr<RecordReader>> RecordReader::OpenJsonl(const std::string& path, const Options& options) {
  uint64_t size = 0;
  ASSIGN_OR_RETURN(int fd, OpenFile(path, &size));
  auto reader = std::make_unique<JsonlReader>(fd, options, size);
  if (Status s = reader->ReadFirstKeys(); !s.ok()) return s.WithContext("--in " + path);
  return std::unique_ptr<RecordReader>(std::move(reader));
}

Status RecordReader::Seek(uint64_t offset, int64_t line) {
  if (offset > file_size_) {
    return InvalidArgument("cannot continue at byte " + std::to_string(offset) + ": the input has only " +
                           std::to_string(file_size_) + " bytes");
  }
  if (::lseek(fd_, static_cast<off_t>(offset), SEEK_SET) < 0) return ErrnoStatus(errno, "seek");
  pos_ = end_ = buf_.data();
  file_pos_ = offset;
  eof_ = false;
  line_ = line;
  return Status::Ok();
}

Status RecordReader::ReadRaw(uint64_t offset, size_t length, std::string* out) const {
  out->resize(length);
  size_t done = 0;
  while (done < length) {
    ssize_t n = ::pread(fd_, out->data() + done, length - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, "reading the input again at byte " + std::to_string(offset));
    if (n == 0) return Internal("reading the input again at byte " + std::to_string(offset) + ": it is shorter now");
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Result<size_t> RecordReader::Fill(size_t want) {
  size_t avail = static_cast<size_t>(end_ - pos_);
  if (avail >= want || eof_) return avail;
  size_t cap = std::max(want, avail + options_.block_bytes);
  if (buf_.size() < cap + simdjson::SIMDJSON_PADDING) {
    std::vector<char> bigger(cap + simdjson::SIMDJSON_PADDING);
    std::memcpy(bigger.data(), pos_, avail);
    buf_.swap(bigger);
  } else {
    std::memmove(buf_.data(), pos_, avail);
  }
  pos_ = buf_.data();
  end_ = pos_ + avail;
  size_t room = buf_.size() - simdjson::SIMDJSON_PADDING - avail;
  while (static_cast<size_t>(end_ - pos_) < want && room > 0) {
    ssize_t n = ::read(fd_, const_cast<char*>(end_), room);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "read");
    }
    if (n == 0) {
      eof_ = true;
      break;
    }
    end_ += n;
    room -= static_cast<size_t>(n);
    file_pos_ += static_cast<uint64_t>(n);
  }
  std::memset(const_cast<char*>(end_), 0, simdjson::SIMDJSON_PADDING);
  return static_cast<size_t>(end_ - pos_);
}

Result<bool> RecordReader::NextLine(const char** line_end) {
  size_t i = 0;
  for (;;) {
    size_t avail = static_cast<size_t>(end_ - pos_);
    if (auto* nl = static_cast<const char*>(std::memchr(pos_ + i, '\n', avail - i))) {
      *line_end = nl;
      return true;
    }
    if (eof_) {
      *line_end = end_;
      return avail > 0;
    }
    if (avail > options_.max_record_bytes) {
      return ResourceExhausted("line " + std::to_string(line_) + ": a line longer than " +
                               std::to_string(options_.max_record_bytes) + " bytes; raise --max-record-bytes");
    }
    i = avail;
    RETURN_IF_ERROR(Fill(avail + options_.block_bytes).status());
  }
}

void AppendCsvField(std::string_view field, std::string* out) {
  if (field.find_first_of(",\"\r\n") == std::string_view::npos) {
    out->append(field);
    return;
  }
  out->push_back('"');
  for (char c : field) {
    if (c == '"') out->push_back('"');
    out->push_back(c);
  }
  out->push_back('"');
}

}  // namespace berth
