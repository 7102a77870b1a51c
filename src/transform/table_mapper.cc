#include "transform/table_mapper.h"

#include <fast_float/fast_float.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <set>

namespace berth {
namespace {

bool IsFloat(DataType t) { return t == DataType::kFp16 || t == DataType::kFp32 || t == DataType::kFp64; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string Join(const std::vector<std::string>& names, size_t limit = 12) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < limit; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > limit) out += ", … (" + std::to_string(names.size()) + " in all)";
  return out.empty() ? "(none)" : out;
}

// A number as pandas reads one: optional sign, decimal or exponent form,
// inf/nan; surrounding spaces allowed. Out-of-range values become ±inf or 0.
bool ParseDouble(std::string_view s, double* out) {
  if (!s.empty() && s.front() >= '0' && s.front() <= '9') {  // the common case: a plain number
    auto r = fast_float::from_chars(s.data(), s.data() + s.size(), *out);
    if (r.ptr == s.data() + s.size() && r.ec == std::errc()) return true;
  }
  s = Trim(s);
  if (s.empty()) return false;
  std::string_view body = s;
  if (body.front() == '+') {
    body.remove_prefix(1);
    if (body.empty() || body.front() == '+' || body.front() == '-') return false;
  }
  auto r = fast_float::from_chars(body.data(), body.data() + body.size(), *out);
  if (r.ptr != body.data() + body.size()) return false;
  if (r.ec == std::errc::result_out_of_range) {
    std::string copy(body);
    *out = std::strtod(copy.c_str(), nullptr);
    return true;
  }
  return r.ec == std::errc();
}

template <typename T>
void Put(T v, std::vector<uint8_t>* out) {
  size_t n = out->size();
  out->resize(n + sizeof(T));
  std::memcpy(out->data() + n, &v, sizeof(T));
}

void PutNumber(DataType t, double v, std::vector<uint8_t>* out) {
  switch (t) {
    case DataType::kFp16: Put(FloatToHalf(static_cast<float>(v)), out); break;
    case DataType::kFp32: Put(static_cast<float>(v), out); break;
    case DataType::kFp64: Put(v, out); break;
    case DataType::kBool: Put(static_cast<uint8_t>(v != 0), out); break;
    case DataType::kInt8: Put(static_cast<int8_t>(v), out); break;
    case DataType::kInt16: Put(static_cast<int16_t>(v), out); break;
    case DataType::kInt32: Put(static_cast<int32_t>(v), out); break;
    case DataType::kInt64: Put(static_cast<int64_t>(v), out); break;
    case DataType::kUint8: Put(static_cast<uint8_t>(v), out); break;
    case DataType::kUint16: Put(static_cast<uint16_t>(v), out); break;
    case DataType::kUint32: Put(static_cast<uint32_t>(v), out); break;
    case DataType::kUint64: Put(static_cast<uint64_t>(v), out); break;
    case DataType::kBytes: break;
  }
}

template <typename T>
bool PutInteger(std::string_view s, std::vector<uint8_t>* out) {
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  T v{};
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size()) return false;
  Put(v, out);
  return true;
}

bool PutIntegerText(DataType t, std::string_view s, std::vector<uint8_t>* out) {
  switch (t) {
    case DataType::kInt8: return PutInteger<int8_t>(s, out);
    case DataType::kInt16: return PutInteger<int16_t>(s, out);
    case DataType::kInt32: return PutInteger<int32_t>(s, out);
    case DataType::kInt64: return PutInteger<int64_t>(s, out);
    case DataType::kUint8: return PutInteger<uint8_t>(s, out);
    case DataType::kUint16: return PutInteger<uint16_t>(s, out);
    case DataType::kUint32: return PutInteger<uint32_t>(s, out);
    case DataType::kUint64: return PutInteger<uint64_t>(s, out);
    default: return false;
  }
}

}  // namespace

bool IsMissingText(std::string_view s) {
  static const std::set<std::string_view> kNa = {"",     "#N/A",   "#N/A N/A", "#NA",  "-1.#IND", "-1.#QNAN", "-NaN",
                                                 "-nan", "1.#IND", "1.#QNAN",  "<NA>", "N/A",     "NA",       "NULL",
                                                 "NaN",  "None",   "n/a",      "nan",  "null"};
  return kNa.count(s) > 0;
}

Result<TableMapper> TableMapper::Create(const ModelConfig& config, const std::vector<std::string>& columns) {
  std::map<std::string, size_t> index;
  std::set<std::string> duplicated;
  for (size_t i = 0; i < columns.size(); ++i) {
    if (!index.emplace(columns[i], i).second) duplicated.insert(columns[i]);
  }
  const Transforms& tr = config.transforms;
  TableMapper m;
  std::set<std::string> used_names;
  for (const TensorSpec& spec : config.inputs) {
    Input in;
    in.name = spec.name;
    in.dtype = spec.dtype;
    std::string what = "input '" + spec.name + "'";
    std::vector<std::string> names = spec.columns;
    int64_t fixed = 1;
    int unknown_dims = 0;
    for (int64_t d : spec.shape) d < 0 ? ++unknown_dims : fixed *= d;
    if (names.empty()) {
      int64_t k = unknown_dims ? -1 : fixed;
      std::string hint = "list its columns in model.yaml (inputs: [{name: " + spec.name +
                         ", ..., columns: [a, b, ...]}]); the table's columns are: " + Join(columns);
      if (k == 1 && index.count(spec.name)) {
        names.push_back(spec.name);
      } else if (k > 1 && k <= (1 << 20)) {
        for (int64_t j = 0; j < k; ++j) {
          std::string n = spec.name + "_" + std::to_string(j);
          if (!index.count(n)) {
            return InvalidArgument(what + " (shape " + ShapeToString(spec.shape) + ") needs " + std::to_string(k) +
                                   " values per row, but the table has no column '" + n + "'; " + hint);
          }
          names.push_back(n);
        }
      } else {
        return InvalidArgument(what + " (shape " + ShapeToString(spec.shape) +
                               "): no column of that name in the table and no `columns` in model.yaml; " + hint);
      }
    }
    int64_t values = 0;
    for (const std::string& name : names) {
      auto it = index.find(name);
      if (it == index.end()) {
        return InvalidArgument(what + ": column '" + name + "' is not in the table; its columns are: " + Join(columns));
      }
      if (duplicated.count(name)) return InvalidArgument(what + ": the table has more than one column '" + name + "'");
      Source src;
      src.column = it->second;
      src.name = name;
      if (auto f = tr.fill_missing.find(name); f != tr.fill_missing.end()) {
        src.has_fill = true;
        src.fill = f->second;
      }
      if (auto s = tr.standardize.find(name); s != tr.standardize.end()) {
        if (!IsFloat(spec.dtype)) {
          return InvalidArgument("transforms.standardize." + name + ": " + what + " is " +
                                 std::string(DataTypeName(spec.dtype)) + "; standardize needs a floating-point input");
        }
        src.standardize = true;
        src.mean = s->second.first;
        src.sd = s->second.second;
      }
      if (auto o = tr.one_hot.find(name); o != tr.one_hot.end()) {
        if (spec.dtype == DataType::kBytes) {
          return InvalidArgument("transforms.one_hot." + name + ": " + what +
                                 " is BYTES; one_hot needs a numeric input");
        }
        src.categories = o->second;
      }
      values += src.categories.empty() ? 1 : static_cast<int64_t>(src.categories.size());
      if (used_names.insert(name).second) m.used_.push_back(it->second);
      in.sources.push_back(std::move(src));
    }
    // The row shape: the configured one, with one unknown dimension solved.
    in.row_shape = spec.shape;
    if (unknown_dims > 1 || (unknown_dims == 1 && (fixed == 0 || values % fixed != 0)) ||
        (unknown_dims == 0 && fixed != values)) {
      return InvalidArgument(what + " has shape " + ShapeToString(spec.shape) + " but its columns give " +
                             std::to_string(values) + " values per row (one_hot columns give one per category)");
    }
    for (int64_t& d : in.row_shape) {
      if (d < 0) d = values / fixed;
    }
    in.plain_fp32 = in.dtype == DataType::kFp32 && std::all_of(in.sources.begin(), in.sources.end(),
                                                               [](const Source& s) { return s.categories.empty(); });
    m.inputs_.push_back(std::move(in));
  }
  for (const auto& [name, v] : tr.fill_missing) {
    if (!used_names.count(name)) {
      return InvalidArgument("transforms.fill_missing." + name + ": no model input uses column '" + name + "'");
    }
  }
  for (const auto& [name, v] : tr.standardize) {
    if (!used_names.count(name)) {
      return InvalidArgument("transforms.standardize." + name + ": no model input uses column '" + name + "'");
    }
  }
  for (const auto& [name, v] : tr.one_hot) {
    if (!used_names.count(name)) {
      return InvalidArgument("transforms.one_hot." + name + ": no model input uses column '" + name + "'");
    }
  }
  return m;
}

Status TableMapper::AppendValue(const Source& src, const Input& in, std::string_view text,
                                std::vector<uint8_t>* out) const {
  if (src.has_fill && IsMissingText(Trim(text))) text = src.fill;
  auto bad = [&](const std::string& why) {
    std::string shown(text.substr(0, 64));
    if (text.size() > 64) shown += "…";
    return InvalidArgument("column '" + src.name + "': '" + shown + "' " + why);
  };
  if (!src.categories.empty()) {
    std::string_view v = Trim(text);
    auto it = std::find(src.categories.begin(), src.categories.end(), v);
    if (it == src.categories.end()) {
      if (IsMissingText(v)) {
        return InvalidArgument("column '" + src.name + "': missing value (one_hot needs a category; add " +
                               "transforms.fill_missing." + src.name + ")");
      }
      return bad("is not one of the one_hot categories (" + Join(src.categories) + ")");
    }
    size_t hot = static_cast<size_t>(it - src.categories.begin());
    for (size_t i = 0; i < src.categories.size(); ++i) PutNumber(in.dtype, i == hot ? 1 : 0, out);
    return Status::Ok();
  }
  if (in.dtype == DataType::kBytes) {
    AppendBytesElement(text, out);
    return Status::Ok();
  }
  if (IsFloat(in.dtype)) {
    double v;
    if (!ParseDouble(text, &v)) {
      if (!IsMissingText(Trim(text))) return bad("is not a number");
      v = std::numeric_limits<double>::quiet_NaN();
    }
    if (src.standardize) v = (v - src.mean) / src.sd;
    PutNumber(in.dtype, v, out);
    return Status::Ok();
  }
  std::string_view v = Trim(text);
  if (in.dtype == DataType::kBool) {
    static const std::set<std::string_view> kTrue = {"true", "True", "TRUE", "1"};
    static const std::set<std::string_view> kFalse = {"false", "False", "FALSE", "0"};
    if (kTrue.count(v) || kFalse.count(v)) {
      Put(static_cast<uint8_t>(kTrue.count(v) ? 1 : 0), out);
      return Status::Ok();
    }
  } else if (PutIntegerText(in.dtype, v, out)) {
    return Status::Ok();
  }
  if (IsMissingText(v)) {
    return InvalidArgument("column '" + src.name + "': missing value, and input '" + in.name + "' is " +
                           std::string(DataTypeName(in.dtype)) + ", which has no NaN (add transforms.fill_missing." +
                           src.name + ")");
  }
  return bad("is not " + std::string(in.dtype == DataType::kBool ? "a boolean (true/false/1/0)" : "an integer") +
             " in the range of " + std::string(DataTypeName(in.dtype)));
}

Status TableMapper::AppendRow(const std::vector<std::string_view>& fields,
                              std::vector<std::vector<uint8_t>>* data) const {
  size_t marks[16];
  std::vector<size_t> more;
  size_t* mark = marks;
  if (inputs_.size() > 16) {
    more.resize(inputs_.size());
    mark = more.data();
  }
  for (size_t i = 0; i < inputs_.size(); ++i) mark[i] = (*data)[i].size();
  for (size_t i = 0; i < inputs_.size(); ++i) {
    const Input& in = inputs_[i];
    if (in.plain_fp32) {  // fast path: numbers straight into the tensor
      std::vector<uint8_t>& out = (*data)[i];
      size_t at = out.size();
      out.resize(at + 4 * in.sources.size());
      uint8_t* dst = out.data() + at;
      bool ok = true;
      for (const Source& src : in.sources) {
        std::string_view text = fields[src.column];
        if (src.has_fill && IsMissingText(Trim(text))) text = src.fill;
        double v;
        if (!ParseDouble(text, &v)) {
          if (!IsMissingText(Trim(text))) {
            ok = false;
            break;
          }
          v = std::numeric_limits<double>::quiet_NaN();
        }
        if (src.standardize) v = (v - src.mean) / src.sd;
        float f = static_cast<float>(v);
        std::memcpy(dst, &f, 4);
        dst += 4;
      }
      if (ok) continue;
      out.resize(at);  // the general path below says why
    }
    for (const Source& src : in.sources) {
      Status s = AppendValue(src, in, fields[src.column], &(*data)[i]);
      if (!s.ok()) {
        for (size_t j = 0; j <= i; ++j) (*data)[j].resize(mark[j]);
        return s;
      }
    }
  }
  return Status::Ok();
}

}  // namespace berth
