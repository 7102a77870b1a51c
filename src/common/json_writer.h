// A minimal append-only JSON writer: numbers through std::to_chars, strings
// escaped per RFC 8259. The caller is responsible for structure (commas are
// handled by the writer for arrays and objects it opened).
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace berth {

class JsonWriter {
 public:
  explicit JsonWriter(std::string* out) : out_(out) {}

  void BeginObject() {
    Sep();
    out_->push_back('{');
    first_.push_back(true);
  }
  void EndObject() {
    out_->push_back('}');
    first_.pop_back();
  }
  void BeginArray() {
    Sep();
    out_->push_back('[');
    first_.push_back(true);
  }
  void EndArray() {
    out_->push_back(']');
    first_.pop_back();
  }

  // Writes `"key":`; the next value completes the member.
  void Key(std::string_view key) {
    Sep();
    WriteString(key);
    out_->push_back(':');
    after_key_ = true;
  }

  void String(std::string_view s) {
    Sep();
    WriteString(s);
  }
  void Bool(bool b) {
    Sep();
    out_->append(b ? "true" : "false");
  }
  void Null() {
    Sep();
    out_->append("null");
  }
  void Raw(std::string_view json) {
    Sep();
    out_->append(json);
  }

  template <typename T>
  void Int(T v) {
    Sep();
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out_->append(buf, r.ptr);
  }

  // True if `s` is valid UTF-8 (what String writes unchanged).
  static bool IsValidUtf8(std::string_view s) {
    for (size_t i = 0; i < s.size(); ++i) {
      if (static_cast<unsigned char>(s[i]) < 0x80) continue;
      size_t n = Utf8SequenceLength(s, i);
      if (n == 0) return false;
      i += n - 1;
    }
    return true;
  }

  // Shortest round-trip form. JSON has no NaN or infinity: NaN is written as
  // null (what berth reads as a missing value) and ±infinity as ±1e999, a
  // valid JSON number that overflows to ±infinity in Python's json, in
  // JavaScript and in berth's own decoder.
  template <typename T>
  void Float(T v) {
    Sep();
    if (std::isnan(v)) {
      out_->append("null");
      return;
    }
    if (std::isinf(v)) {
      out_->append(v > 0 ? "1e999" : "-1e999");
      return;
    }
    char buf[40];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    std::string_view s(buf, static_cast<size_t>(r.ptr - buf));
    out_->append(s);
    // Keep floats recognisable as floats: 12 -> 12.0 (as Python and Triton write them).
    if (s.find_first_of(".eE") == std::string_view::npos) out_->append(".0");
  }

 private:
  void Sep() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (!first_.empty()) {
      if (!first_.back()) out_->push_back(',');
      first_.back() = false;
    }
  }

  void WriteString(std::string_view s) {
    static const char kHex[] = "0123456789abcdef";
    out_->push_back('"');
    for (size_t i = 0; i < s.size(); ++i) {
      unsigned char c = static_cast<unsigned char>(s[i]);
      if (c >= 0x80) {
        // JSON text is UTF-8: copy valid sequences, replace each invalid byte with U+FFFD.
        size_t n = Utf8SequenceLength(s, i);
        if (n == 0) {
          out_->append("\\ufffd");
        } else {
          out_->append(s.data() + i, n);
          i += n - 1;
        }
        continue;
      }
      switch (c) {
        case '"': out_->append("\\\""); break;
        case '\\': out_->append("\\\\"); break;
        case '\n': out_->append("\\n"); break;
        case '\r': out_->append("\\r"); break;
        case '\t': out_->append("\\t"); break;
        default:
          if (c < 0x20) {
            out_->append("\\u00");
            out_->push_back(kHex[c >> 4]);
            out_->push_back(kHex[c & 15]);
          } else {
            out_->push_back(static_cast<char>(c));
          }
      }
    }
    out_->push_back('"');
  }

  // Length of the valid UTF-8 sequence starting at s[i] (a byte >= 0x80), or 0.
  static size_t Utf8SequenceLength(std::string_view s, size_t i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) {
      n = 2, cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 3, cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 4, cp = c & 0x07;
    } else {
      return 0;
    }
    if (i + n > s.size()) return 0;
    for (size_t k = 1; k < n; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return 0;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff))) {
      return 0;  // overlong, surrogate or out of range
    }
    return n;
  }

  std::string* out_;
  std::vector<bool> first_;
  bool after_key_ = false;
};

// Writes the `"name":..,"datatype":..,"shape":[..]` members of a v2 tensor
// object that the caller has opened (requests, responses, metadata alike).
inline void WriteTensorHeader(JsonWriter& w, std::string_view name, std::string_view datatype,
                              const std::vector<int64_t>& shape) {
  w.Key("name");
  w.String(name);
  w.Key("datatype");
  w.String(datatype);
  w.Key("shape");
  w.BeginArray();
  for (int64_t d : shape) w.Int(d);
  w.EndArray();
}

// `{"error":"<message>"}`
inline std::string JsonError(std::string_view message) {
  std::string out;
  JsonWriter w(&out);
  w.BeginObject();
  w.Key("error");
  w.String(message);
  w.EndObject();
  return out;
}

}  // namespace berth
