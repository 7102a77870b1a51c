#include "deploy/yaml_doc.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cstring>

namespace berth {
namespace {

// True when YAML 1.1/1.2 readers would take `s` for something other than a string.
bool ReadsAsNonString(const std::string& s) {
  if (s.empty()) return true;
  std::string lower(s);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  static const char* kWords[] = {"true", "false", "yes", "no",   "on",    "off", "y",
                                 "n",    "null",  "~",   ".inf", "-.inf", ".nan"};
  for (const char* w : kWords) {
    if (lower == w) return true;
  }
  // Anything number-like (ints, floats, 0x.., 1e3, 1_000, 12:30 sexagesimal): quote it.
  bool digit = false;
  for (char c : s) {
    if (std::isdigit(static_cast<unsigned char>(c))) {
      digit = true;
    } else if (!std::strchr("+-._:eExXoObB", c) && !std::isxdigit(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return digit;
}

}  // namespace

struct YamlDocEmitter {
  static void Emit(const YamlDoc& d, YAML::Emitter& e) {
    switch (d.kind_) {
      case YamlDoc::Kind::kMap:
        if (d.map_.empty()) {
          e << YAML::Flow << YAML::BeginMap << YAML::EndMap;
          return;
        }
        e << YAML::BeginMap;
        for (const auto& [k, v] : d.map_) {
          e << YAML::Key << k << YAML::Value;
          Emit(v, e);
        }
        e << YAML::EndMap;
        return;
      case YamlDoc::Kind::kList:
        if (d.list_.empty()) {
          e << YAML::Flow << YAML::BeginSeq << YAML::EndSeq;
          return;
        }
        e << YAML::BeginSeq;
        for (const YamlDoc& v : d.list_) Emit(v, e);
        e << YAML::EndSeq;
        return;
      case YamlDoc::Kind::kString:
        if (ReadsAsNonString(d.text_)) {
          e << YAML::DoubleQuoted << d.text_;
        } else {
          e << d.text_;
        }
        return;
      case YamlDoc::Kind::kInt: e << d.int_; return;
      case YamlDoc::Kind::kBool: e << (d.int_ ? "true" : "false"); return;
    }
  }
};

YamlDoc YamlDoc::Strings(const std::vector<std::string>& items) {
  YamlDoc d = List();
  for (const auto& s : items) d.Add(s);
  return d;
}

YamlDoc& YamlDoc::operator[](const std::string& key) {
  for (auto& [k, v] : map_) {
    if (k == key) return v;
  }
  map_.emplace_back(key, YamlDoc());
  return map_.back().second;
}

YamlDoc& YamlDoc::Add(YamlDoc item) {
  list_.push_back(std::move(item));
  return list_.back();
}

std::string YamlDoc::Emit() const {
  YAML::Emitter e;
  e.SetIndent(2);
  e.SetSeqFormat(YAML::Block);
  YamlDocEmitter::Emit(*this, e);
  return std::string(e.c_str()) + "\n";
}

std::string EmitYamlStream(const std::vector<YamlDoc>& docs) {
  std::string out;
  for (size_t i = 0; i < docs.size(); ++i) out += (i ? "---\n" : "") + docs[i].Emit();
  return out;
}

}  // namespace berth
