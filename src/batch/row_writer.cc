#include "batch/row_writer.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>

#include "batch/record_reader.h"
#include "common/json_writer.h"

namespace berth {
namespace {

template <typename T>
T Load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

template <typename T>
void AppendInt(T v, std::string* out) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, r.ptr);
}

// Shortest round-trip text. CSV: NaN, inf, -inf (as pandas reads them).
// JSONL: null for NaN, ±1e999 for infinities (valid JSON that parsers read as ±inf).
template <typename T>
void AppendFloat(T v, TableFormat format, std::string* out) {
  if (std::isnan(v)) {
    out->append(format == TableFormat::kCsv ? "NaN" : "null");
  } else if (std::isinf(v)) {
    if (format == TableFormat::kCsv) {
      out->append(v > 0 ? "inf" : "-inf");
    } else {
      out->append(v > 0 ? "1e999" : "-1e999");
    }
  } else {
    char buf[40];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out->append(buf, r.ptr);
  }
}

// Appends element `i` of `t`. BYTES elements are found by walking the length
// prefixes (a row of a BYTES output is rare and short).
void AppendElement(const Tensor& t, int64_t i, TableFormat format, std::string* out) {
  const uint8_t* p = t.data.data() + static_cast<size_t>(i) * DataTypeSize(t.dtype);
  switch (t.dtype) {
    case DataType::kBool: out->append(p[0] ? "true" : "false"); break;
    case DataType::kUint8: AppendInt(Load<uint8_t>(p), out); break;
    case DataType::kUint16: AppendInt(Load<uint16_t>(p), out); break;
    case DataType::kUint32: AppendInt(Load<uint32_t>(p), out); break;
    case DataType::kUint64: AppendInt(Load<uint64_t>(p), out); break;
    case DataType::kInt8: AppendInt(Load<int8_t>(p), out); break;
    case DataType::kInt16: AppendInt(Load<int16_t>(p), out); break;
    case DataType::kInt32: AppendInt(Load<int32_t>(p), out); break;
    case DataType::kInt64: AppendInt(Load<int64_t>(p), out); break;
    case DataType::kFp16: AppendFloat(HalfToFloat(Load<uint16_t>(p)), format, out); break;
    case DataType::kFp32: AppendFloat(Load<float>(p), format, out); break;
    case DataType::kFp64: AppendFloat(Load<double>(p), format, out); break;
    case DataType::kBytes: {
      auto elements = SplitBytesElements(t.data.data(), t.data.size());
      std::string_view e;
      if (elements.ok() && i < static_cast<int64_t>(elements->size())) e = (*elements)[static_cast<size_t>(i)];
      if (format == TableFormat::kCsv) {
        AppendCsvField(e, out);
      } else {
        out->append(JsonQuote(e));
      }
      break;
    }
  }
}

}  // namespace

std::string JsonQuote(std::string_view s) {
  std::string out;
  JsonWriter w(&out);
  w.String(s);
  return out;
}

Result<TableFormat> ResolveTableFormat(const std::string& name, const std::string& path, const std::string& flag) {
  if (name == "csv") return TableFormat::kCsv;
  if (name == "jsonl") return TableFormat::kJsonl;
  if (!name.empty()) return InvalidArgument(flag + ": expected csv or jsonl, got '" + name + "'");
  for (const char* ext : {".jsonl", ".ndjson", ".json"}) {
    size_t n = std::strlen(ext);
    if (path.size() >= n && path.compare(path.size() - n, n, ext) == 0) return TableFormat::kJsonl;
  }
  return TableFormat::kCsv;
}

Result<RowWriter> RowWriter::Create(TableFormat format, const ModelConfig& config, std::vector<std::string> keep) {
  RowWriter w;
  w.format_ = format;
  w.keep_ = std::move(keep);
  std::vector<std::string> names = w.keep_;
  for (const TensorSpec& spec : config.outputs) {
    Output o{spec.name, spec.dtype, 1};
    for (int64_t d : spec.shape) {
      if (d < 0) {
        return InvalidArgument("output '" + spec.name + "' has shape " + ShapeToString(spec.shape) +
                               "; berth batch needs fixed output shapes (set them in model.yaml) to name its columns");
      }
      o.values *= d;
    }
    if (o.values == 1) {
      names.push_back(o.name);
    } else {
      for (int64_t j = 0; j < o.values; ++j) names.push_back(o.name + "_" + std::to_string(j));
    }
    w.outputs_.push_back(std::move(o));
  }
  for (size_t i = 0; i < names.size(); ++i) {
    w.json_keys_.push_back((i ? "," : "{") + JsonQuote(names[i]) + ":");
  }
  return w;
}

std::string RowWriter::Header() const {
  if (format_ == TableFormat::kJsonl) return "";
  std::string h;
  bool first = true;
  auto add = [&](std::string_view name) {
    if (!first) h.push_back(',');
    first = false;
    AppendCsvField(name, &h);
  };
  for (const std::string& k : keep_) add(k);
  for (const Output& o : outputs_) {
    if (o.values == 1) {
      add(o.name);
    } else {
      for (int64_t j = 0; j < o.values; ++j) add(o.name + "_" + std::to_string(j));
    }
  }
  h.push_back('\n');
  return h;
}

void RowWriter::AppendRow(const std::vector<std::string_view>& keep, const std::vector<const Tensor*>& tensors,
                          int64_t row, std::string* out) const {
  size_t col = 0;
  bool csv = format_ == TableFormat::kCsv;
  size_t start = out->size();
  for (std::string_view k : keep) {
    if (csv) {
      if (col) out->push_back(',');
      AppendCsvField(k, out);
    } else {
      out->append(json_keys_[col]);
      out->append(k.empty() ? std::string_view("null") : k);
    }
    ++col;
  }
  for (size_t o = 0; o < outputs_.size(); ++o) {
    int64_t n = outputs_[o].values;
    for (int64_t j = 0; j < n; ++j) {
      if (csv) {
        if (col) out->push_back(',');
      } else {
        out->append(json_keys_[col]);
      }
      AppendElement(*tensors[o], row * n + j, format_, out);
      ++col;
    }
  }
  if (!csv) out->push_back('}');
  if (csv && json_keys_.size() == 1 &&
      std::all_of(out->begin() + static_cast<std::ptrdiff_t>(start), out->end(),
                  [](char c) { return c == ' ' || c == '\t'; })) {
    // One column, empty or blank: quoted, or CSV readers would skip the line.
    std::string field = out->substr(start);
    out->resize(start);
    out->append("\"" + field + "\"");
  }
  out->push_back('\n');
}

std::string RowWriter::RejectsHeader() const { return format_ == TableFormat::kCsv ? "line,reason,record\n" : ""; }

void RowWriter::AppendReject(int64_t line, std::string_view reason, std::string_view record, std::string* out) const {
  if (format_ == TableFormat::kCsv) {
    AppendInt(line, out);
    out->push_back(',');
    AppendCsvField(reason, out);
    out->push_back(',');
    AppendCsvField(record, out);
  } else {
    out->append("{\"line\":");
    AppendInt(line, out);
    out->append(",\"reason\":");
    out->append(JsonQuote(reason));
    out->append(",\"record\":");
    out->append(JsonQuote(record));
    out->push_back('}');
  }
  out->push_back('\n');
}

}  // namespace berth
