// An ordered YAML document tree for the manifests `berth deploy` writes:
// maps keep their keys in insertion order, so the same inputs always give
// the same bytes, and each scalar keeps its type, so a string that reads
// as a number ("8002", an annotation value) is written quoted.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace berth {

class YamlDoc {
 public:
  enum class Kind { kMap, kList, kString, kInt, kBool };

  YamlDoc() : kind_(Kind::kMap) {}
  YamlDoc(const char* s) : kind_(Kind::kString), text_(s) {}             // NOLINT: implicit, for terse builders
  YamlDoc(std::string s) : kind_(Kind::kString), text_(std::move(s)) {}  // NOLINT
  YamlDoc(int64_t v) : kind_(Kind::kInt), int_(v) {}                     // NOLINT
  YamlDoc(int v) : kind_(Kind::kInt), int_(v) {}                         // NOLINT
  YamlDoc(bool v) : kind_(Kind::kBool), int_(v ? 1 : 0) {}               // NOLINT
  static YamlDoc List() {
    YamlDoc d;
    d.kind_ = Kind::kList;
    return d;
  }
  // A list of strings.
  static YamlDoc Strings(const std::vector<std::string>& items);

  // Map: the value under `key`, added (as an empty map) if absent.
  YamlDoc& operator[](const std::string& key);
  // List: appends `item`; returns it.
  YamlDoc& Add(YamlDoc item);

  Kind kind() const { return kind_; }

  // The document as YAML (block style).
  std::string Emit() const;

 private:
  friend struct YamlDocEmitter;
  Kind kind_;
  std::string text_;
  int64_t int_ = 0;
  std::vector<std::pair<std::string, YamlDoc>> map_;
  std::vector<YamlDoc> list_;
};

// Several documents as one multi-document stream ("---" between them).
std::string EmitYamlStream(const std::vector<YamlDoc>& docs);

}  // namespace berth
