// Invariants checked, with the XGBoost 1.7.4 source that relies on each
// (all were reproduced against Debian's libxgboost 1.7.4; a violation marked
// "crash" segfaults, aborts, hangs or corrupts memory; the others would be
// clean XGBoost errors, checked here anyway so that the checks below can
// rely on them):
//
// Syntax
//  - nesting at most 64 deep (json.cc Parse recursion: crash at ~50k)
//  - UBJ: every length and count fits in the bytes left, the document is
//    not truncated, every unsized array is closed, nothing follows the top
//    level (json_io.h ReadStream/PeekNextChar: no bounds checks; crash)
//  - UBJ markers and typed-array types XGBoost reads (json.cc 720-864)
//  - no duplicate object keys (JSON keeps the last, UBJ the first: a check
//    of one occurrence could be bypassed with the other)
// Learner (learner.cc 154-235)
//  - num_feature, num_class, num_target are canonical decimal strings within
//    limits ("-1" wraps to 4294967295 in a uint32 field; prediction
//    allocates num_feature- and outputs-sized buffers)
//  - outputs x num_parallel_tree < 2^31 (gbtree.h LayerTrees() is a uint32
//    product that BoostedRounds() divides by: SIGFPE when it wraps to 0)
// Trees (gbtree_model.cc 90-111, tree_model.cc 1018-1138)
//  - num_trees == len(trees) == len(tree_info) (tree_info indexed by
//    num_trees: crash); ids are 0..len-1 (duplicate ids leave a null tree:
//    crash); 0 <= tree_info[i] < outputs (prediction writes
//    preds[row * groups + tree_info[i]]: heap corruption)
//  - each per-node array has num_nodes entries (split_type is never checked
//    by XGBoost: crash); parents[i] in [0, n) for i >= 1 (load writes
//    through it: crash)
//  - an internal node (left != -1) has 0 < left, right == left + 1 < n (the
//    predictor goes to left + !(x < cond) and never reads right for numeric
//    splits), each node the child of at most one node, the root of none:
//    then every walk from the root ends (otherwise: out-of-bounds reads or
//    an endless loop)
//  - split_indices of internal nodes < num_feature (read unchecked)
// Categorical splits (tree_model.cc 923-978)
//  - categories_nodes, _segments, _sizes of one length; nodes strictly
//    increasing and exactly the nodes with split_type 1; segments inside
//    categories with size >= 1; categories in [0, 2^24) (a negative one
//    aborts in the bitset); bitset bytes summed within a limit
// Dart: len(weight_drop) == len(trees). Gblinear: weights present, of
// (num_feature + 1) x outputs numbers.
#include "model_file_check.h"

#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <unordered_set>
#include <vector>

namespace berth {
namespace {

constexpr int kMaxNesting = 64;  // real models nest about 6 levels
constexpr int64_t kMaxCategory = int64_t{1} << 24;

Status Bad(const std::string& where, const std::string& what) {
  return InvalidArgument(where.empty() ? what : where + ": " + what);
}

// ---------------------------------------------------------------------------
// UBJSON -> JSON text, along the grammar XGBoost 1.7's UBJ reader accepts.

class UbjToJson {
 public:
  explicit UbjToJson(std::string_view in) : s_(in) { out_.reserve(in.size() * 2); }

  Result<std::string> Convert() {
    if (s_.empty() || s_[0] != '{') return InvalidArgument("not UBJSON: does not start with '{'");
    if (!Value(0)) return InvalidArgument("not valid UBJSON: " + error_ + " at byte " + std::to_string(pos_));
    if (pos_ != s_.size())
      return InvalidArgument("not valid UBJSON: bytes after the end at byte " + std::to_string(pos_));
    return std::move(out_);
  }

 private:
  bool Fail(const char* what) {
    if (error_.empty()) error_ = what;
    return false;
  }
  size_t Left() const { return s_.size() - pos_; }
  bool Next(char* c) {
    if (Left() == 0) return Fail("truncated");
    *c = s_[pos_++];
    return true;
  }
  bool Peek(char* c) const {
    if (Left() == 0) return false;
    *c = s_[pos_];
    return true;
  }
  // Big-endian integer of `n` bytes.
  bool BigEndian(size_t n, uint64_t* v) {
    if (Left() < n) return Fail("truncated");
    *v = 0;
    for (size_t i = 0; i < n; ++i) *v = (*v << 8) | static_cast<unsigned char>(s_[pos_++]);
    return true;
  }
  // A length: 'L' then an int64 that is >= 0 and fits in what is left.
  bool Length(uint64_t* n) {
    char c = 0;
    if (!Next(&c)) return false;
    if (c != 'L') return Fail("a length that is not an int64 ('L')");
    uint64_t v = 0;
    if (!BigEndian(8, &v)) return false;
    if (v > Left()) return Fail("a length past the end of the file");
    *n = v;
    return true;
  }
  void Int(int64_t v) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out_.append(buf, r.ptr);
  }
  bool Float32() {
    uint64_t bits = 0;
    if (!BigEndian(4, &bits)) return false;
    uint32_t b = static_cast<uint32_t>(bits);
    float f;
    std::memcpy(&f, &b, 4);
    if (!std::isfinite(f)) f = 0;  // the value is never checked; its kind (a float) is
    char buf[40];
    auto r = std::to_chars(buf, buf + sizeof buf, f);
    std::string_view t(buf, static_cast<size_t>(r.ptr - buf));
    out_.append(t);
    if (t.find_first_of(".eE") == std::string_view::npos) out_.append(".0");
    return true;
  }
  bool String() {
    uint64_t n = 0;
    if (!Length(&n)) return false;
    out_.push_back('"');
    for (uint64_t i = 0; i < n; ++i) {
      unsigned char c = static_cast<unsigned char>(s_[pos_++]);
      if (c == '"' || c == '\\') {
        out_.push_back('\\');
        out_.push_back(static_cast<char>(c));
      } else if (c < 0x20) {
        static const char kHex[] = "0123456789abcdef";
        out_.append("\\u00");
        out_.push_back(kHex[c >> 4]);
        out_.push_back(kHex[c & 15]);
      } else {
        out_.push_back(static_cast<char>(c));
      }
    }
    out_.push_back('"');
    return true;
  }
  // A scalar of marker `c` (already read).
  bool Scalar(char c) {
    uint64_t v = 0;
    switch (c) {
      case 'Z': out_.append("null"); return true;
      case 'T':
      case 'F': out_.append(c == 'T' ? "true" : "false"); return true;
      case 'i':
      case 'C':
        if (!BigEndian(1, &v)) return false;
        Int(static_cast<int8_t>(v));
        return true;
      case 'U':
        if (!BigEndian(1, &v)) return false;
        Int(static_cast<int64_t>(v));
        return true;
      case 'I':
        if (!BigEndian(2, &v)) return false;
        Int(static_cast<int16_t>(v));
        return true;
      case 'l':
        if (!BigEndian(4, &v)) return false;
        Int(static_cast<int32_t>(v));
        return true;
      case 'L':
        if (!BigEndian(8, &v)) return false;
        Int(static_cast<int64_t>(v));
        return true;
      case 'd': return Float32();
      case 'S': return String();
      default: return Fail("a marker XGBoost does not read");
    }
  }
  bool Value(int depth) {
    if (depth > kMaxNesting) return Fail("nested too deep");
    char c = 0;
    if (!Next(&c)) return false;
    if (c == '{') return Object(depth);
    if (c == '[') return Array(depth);
    return Scalar(c);
  }
  bool Object(int depth) {
    out_.push_back('{');
    bool first = true;
    for (;;) {
      char c = 0;
      if (!Peek(&c)) return Fail("truncated object");
      if (c == '}') {
        ++pos_;
        out_.push_back('}');
        return true;
      }
      if (!first) out_.push_back(',');
      first = false;
      if (!String()) return false;  // a key: no marker, an 'L' length
      out_.push_back(':');
      if (!Value(depth + 1)) return false;
    }
  }
  bool Array(int depth) {
    out_.push_back('[');
    char c = 0;
    if (Peek(&c) && c == '$') {  // typed: '$' type '#' 'L' count, then raw big-endian elements
      ++pos_;
      char type = 0, hash = 0;
      if (!Next(&type) || !Next(&hash)) return false;
      if (hash != '#') return Fail("a typed array without a count");
      uint64_t n = 0;
      if (!Length(&n)) return false;
      const uint64_t size = type == 'U' ? 1 : type == 'l' || type == 'd' ? 4 : type == 'L' ? 8 : 0;
      if (size == 0) return Fail("a typed array of a type XGBoost does not read");
      if (n > Left() / size) return Fail("a typed array past the end of the file");
      for (uint64_t i = 0; i < n; ++i) {
        if (i) out_.push_back(',');
        if (!Scalar(type)) return false;
      }
      out_.push_back(']');
      return true;
    }
    if (Peek(&c) && c == '#') {  // counted: every element takes at least a byte
      ++pos_;
      uint64_t n = 0;
      if (!Length(&n)) return false;
      for (uint64_t i = 0; i < n; ++i) {
        if (i) out_.push_back(',');
        if (!Value(depth + 1)) return false;
      }
      out_.push_back(']');
      return true;
    }
    for (bool first = true;; first = false) {
      if (!Peek(&c)) return Fail("truncated array");  // XGBoost would loop here forever
      if (c == ']') {
        ++pos_;
        out_.push_back(']');
        return true;
      }
      if (!first) out_.push_back(',');
      if (!Value(depth + 1)) return false;
    }
  }

  std::string_view s_;
  size_t pos_ = 0;
  std::string out_;
  std::string error_;
};

// XGBoost's JSON has NaN, Infinity and -Infinity literals (a categorical
// split's condition is NaN); standard JSON does not. Outside strings they
// become 0.0: their values are never checked, their kind (a float) is.
std::string WithoutNonFiniteLiterals(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  bool in_string = false;
  for (size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (in_string) {
      out.push_back(c);
      if (c == '\\' && i + 1 < in.size()) {
        out.push_back(in[++i]);
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    in_string = c == '"';
    bool replaced = false;
    for (std::string_view literal : {"NaN", "Infinity", "-Infinity"}) {
      if (in.compare(i, literal.size(), literal) == 0) {
        out.append("0.0");
        i += literal.size() - 1;
        replaced = true;
        break;
      }
    }
    if (!replaced) out.push_back(c);
  }
  return out;
}

// ---------------------------------------------------------------------------
// The model's structure.

using simdjson::dom::element;
using simdjson::dom::element_type;

// Every object in the document has distinct keys.
Status NoDuplicateKeys(const element& e, const std::string& where, int depth) {
  if (depth > kMaxNesting) return Bad(where, "nested too deep");
  if (e.type() == element_type::OBJECT) {
    std::unordered_set<std::string_view> keys;
    simdjson::dom::object members = e.get_object().value_unsafe();
    for (auto [key, value] : members) {
      if (!keys.insert(key).second) return Bad(where, "a key appears twice in one object");
      if (value.type() == element_type::OBJECT || value.type() == element_type::ARRAY) {
        RETURN_IF_ERROR(
            NoDuplicateKeys(value, where.empty() ? std::string(key) : where + "." + std::string(key), depth + 1));
      }
    }
  } else if (e.type() == element_type::ARRAY) {
    size_t i = 0;
    simdjson::dom::array items = e.get_array().value_unsafe();
    for (element child : items) {
      if (child.type() == element_type::OBJECT || child.type() == element_type::ARRAY) {
        RETURN_IF_ERROR(NoDuplicateKeys(child, where + "[" + std::to_string(i) + "]", depth + 1));
      }
      ++i;
    }
  }
  return Status::Ok();
}

Result<element> Member(const element& obj, const std::string& where, const char* key) {
  std::string at = where.empty() ? key : where + "." + key;
  if (obj.type() != element_type::OBJECT) return Bad(where, "expected an object");
  element v;
  if (obj.at_key(key).get(v)) return Bad(at, "missing");
  return v;
}

bool Has(const element& obj, const char* key) {
  element v;
  return obj.type() == element_type::OBJECT && !obj.at_key(key).get(v);
}

// XGBoost keeps parameters as strings; a canonical decimal within [lo, hi].
Result<int64_t> DecimalString(const element& obj, const std::string& where, const char* key, int64_t lo, int64_t hi) {
  ASSIGN_OR_RETURN(element v, Member(obj, where, key));
  std::string at = where + "." + key;
  std::string_view s;
  if (v.get(s)) return Bad(at, "expected a number written as a string");
  int64_t n = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  bool canonical = !s.empty() && (s == "0" || s[0] != '0') && ec == std::errc() && p == s.data() + s.size();
  if (!canonical || n < lo || n > hi) {
    return Bad(at, "expected a whole number from " + std::to_string(lo) + " to " + std::to_string(hi));
  }
  return n;
}

Result<simdjson::dom::array> Array(const element& obj, const std::string& where, const char* key) {
  ASSIGN_OR_RETURN(element v, Member(obj, where, key));
  if (v.type() != element_type::ARRAY) return Bad(where + "." + key, "expected an array");
  return v.get_array().value_unsafe();
}

Result<std::vector<int64_t>> IntArray(const element& obj, const std::string& where, const char* key) {
  ASSIGN_OR_RETURN(simdjson::dom::array a, Array(obj, where, key));
  std::vector<int64_t> out;
  out.reserve(a.size());
  for (element e : a) {
    if (e.type() != element_type::INT64) {
      return Bad(where + "." + key + "[" + std::to_string(out.size()) + "]", "expected a whole number in int64");
    }
    out.push_back(e.get_int64().value_unsafe());
  }
  return out;
}

Status Length(size_t got, size_t want, const std::string& at) {
  if (got == want) return Status::Ok();
  return Bad(at, "has " + std::to_string(got) + " entries; expected " + std::to_string(want));
}

class ModelChecker {
 public:
  ModelChecker(const XgboostModelLimits& limits, XgboostModelFacts* facts) : limits_(limits), facts_(facts) {}

  Status Check(const element& root) {
    const std::string lp = "learner.learner_model_param";
    ASSIGN_OR_RETURN(element learner, Member(root, "", "learner"));
    ASSIGN_OR_RETURN(element params, Member(learner, "learner", "learner_model_param"));
    ASSIGN_OR_RETURN(facts_->num_feature, DecimalString(params, lp, "num_feature", 1, limits_.max_features));
    int64_t num_class = 0, num_target = 1;
    if (Has(params, "num_class")) {
      ASSIGN_OR_RETURN(num_class, DecimalString(params, lp, "num_class", 0, limits_.max_outputs));
    }
    if (Has(params, "num_target")) {
      ASSIGN_OR_RETURN(num_target, DecimalString(params, lp, "num_target", 1, limits_.max_outputs));
    }
    if (num_class > 1 && num_target > 1) return Bad(lp, "num_class and num_target cannot both be above 1");
    facts_->num_outputs = std::max<int64_t>({num_class, num_target, 1});
    if (Has(params, "base_score")) {
      ASSIGN_OR_RETURN(element bs, Member(params, lp, "base_score"));
      std::string_view s;
      double v = 0;
      auto ok =
          !bs.get(s) && !s.empty() && std::from_chars(s.data(), s.data() + s.size(), v).ptr == s.data() + s.size();
      if (!ok || !std::isfinite(v)) return Bad(lp + ".base_score", "expected a finite number written as a string");
    }

    const std::string gp = "learner.gradient_booster";
    ASSIGN_OR_RETURN(element booster, Member(learner, "learner", "gradient_booster"));
    ASSIGN_OR_RETURN(element name, Member(booster, gp, "name"));
    std::string_view booster_name;
    if (name.get(booster_name)) return Bad(gp + ".name", "expected a string");
    facts_->booster = std::string(booster_name);
    if (booster_name == "gbtree") {
      ASSIGN_OR_RETURN(element model, Member(booster, gp, "model"));
      return Trees(model, gp + ".model", nullptr);
    }
    if (booster_name == "dart") {
      ASSIGN_OR_RETURN(element inner, Member(booster, gp, "gbtree"));
      ASSIGN_OR_RETURN(element inner_name, Member(inner, gp + ".gbtree", "name"));
      std::string_view n;
      if (inner_name.get(n) || n != "gbtree") return Bad(gp + ".gbtree.name", "expected \"gbtree\"");
      ASSIGN_OR_RETURN(simdjson::dom::array drop, Array(booster, gp, "weight_drop"));
      ASSIGN_OR_RETURN(element model, Member(inner, gp + ".gbtree", "model"));
      size_t drops = drop.size();
      return Trees(model, gp + ".gbtree.model", &drops);
    }
    if (booster_name == "gblinear") {
      ASSIGN_OR_RETURN(element model, Member(booster, gp, "model"));
      ASSIGN_OR_RETURN(simdjson::dom::array w, Array(model, gp + ".model", "weights"));
      return Length(w.size(), static_cast<size_t>((facts_->num_feature + 1) * facts_->num_outputs),
                    gp + ".model.weights");
    }
    return Bad(gp + ".name", "expected gbtree, dart or gblinear");
  }

 private:
  Status Trees(const element& model, const std::string& mp, const size_t* weight_drops) {
    const std::string pp = mp + ".gbtree_model_param";
    ASSIGN_OR_RETURN(element param, Member(model, mp, "gbtree_model_param"));
    ASSIGN_OR_RETURN(int64_t num_trees, DecimalString(param, pp, "num_trees", 0, INT32_MAX));
    ASSIGN_OR_RETURN(int64_t parallel, DecimalString(param, pp, "num_parallel_tree", 1, INT32_MAX));
    if (Has(param, "size_leaf_vector")) RETURN_IF_ERROR(DecimalString(param, pp, "size_leaf_vector", 0, 0).status());
    if (parallel * facts_->num_outputs > INT32_MAX) {
      return Bad(pp + ".num_parallel_tree", "times the outputs must stay below 2^31");
    }
    ASSIGN_OR_RETURN(simdjson::dom::array trees, Array(model, mp, "trees"));
    RETURN_IF_ERROR(Length(trees.size(), static_cast<size_t>(num_trees), mp + ".trees"));
    ASSIGN_OR_RETURN(std::vector<int64_t> info, IntArray(model, mp, "tree_info"));
    RETURN_IF_ERROR(Length(info.size(), static_cast<size_t>(num_trees), mp + ".tree_info"));
    for (size_t i = 0; i < info.size(); ++i) {
      if (info[i] < 0 || info[i] >= facts_->num_outputs) {
        return Bad(mp + ".tree_info[" + std::to_string(i) + "]",
                   "an output group the model does not have (it has " + std::to_string(facts_->num_outputs) + ")");
      }
    }
    if (weight_drops) RETURN_IF_ERROR(Length(*weight_drops, info.size(), "learner.gradient_booster.weight_drop"));
    facts_->num_trees = num_trees;
    int64_t k = 0;
    for (element tree : trees) {
      RETURN_IF_ERROR(Tree(tree, mp + ".trees[" + std::to_string(k) + "]", k));
      ++k;
    }
    return Status::Ok();
  }

  Status Tree(const element& t, const std::string& tp, int64_t index) {
    ASSIGN_OR_RETURN(element id, Member(t, tp, "id"));
    if (id.type() != element_type::INT64 || id.get_int64().value_unsafe() != index) {
      return Bad(tp + ".id", "expected " + std::to_string(index) + " (trees are numbered in order)");
    }
    ASSIGN_OR_RETURN(element param, Member(t, tp, "tree_param"));
    ASSIGN_OR_RETURN(int64_t n64, DecimalString(param, tp + ".tree_param", "num_nodes", 1, INT32_MAX));
    const size_t n = static_cast<size_t>(n64);
    ASSIGN_OR_RETURN(std::vector<int64_t> left, IntArray(t, tp, "left_children"));
    ASSIGN_OR_RETURN(std::vector<int64_t> right, IntArray(t, tp, "right_children"));
    ASSIGN_OR_RETURN(std::vector<int64_t> parents, IntArray(t, tp, "parents"));
    ASSIGN_OR_RETURN(std::vector<int64_t> split, IntArray(t, tp, "split_indices"));
    RETURN_IF_ERROR(Length(left.size(), n, tp + ".left_children"));
    RETURN_IF_ERROR(Length(right.size(), n, tp + ".right_children"));
    RETURN_IF_ERROR(Length(parents.size(), n, tp + ".parents"));
    RETURN_IF_ERROR(Length(split.size(), n, tp + ".split_indices"));
    for (const char* key : {"split_conditions", "default_left", "base_weights", "loss_changes", "sum_hessian"}) {
      ASSIGN_OR_RETURN(simdjson::dom::array a, Array(t, tp, key));
      RETURN_IF_ERROR(Length(a.size(), n, tp + "." + key));
    }
    for (size_t i = 1; i < n; ++i) {
      if (parents[i] < 0 || parents[i] >= n64) {
        return Bad(tp + ".parents[" + std::to_string(i) + "]", "not a node of the tree");
      }
    }
    std::vector<uint8_t> has_parent(n, 0);
    for (size_t i = 0; i < n; ++i) {
      if (left[i] == -1) continue;  // a leaf: nothing else of it is read
      const std::string node = tp + " node " + std::to_string(i);
      if (left[i] <= 0 || left[i] >= n64 - 1) return Bad(node, "its children are not nodes of the tree");
      if (right[i] != left[i] + 1) return Bad(node, "its right child must follow its left child");
      for (int64_t child : {left[i], right[i]}) {
        if (has_parent[static_cast<size_t>(child)]++) {
          return Bad(node, "node " + std::to_string(child) + " has more than one parent");
        }
      }
      if (split[i] < 0 || split[i] >= facts_->num_feature) {
        return Bad(tp + ".split_indices[" + std::to_string(i) + "]",
                   "a feature the model does not have (it has " + std::to_string(facts_->num_feature) + ")");
      }
    }
    if (Has(t, "split_type")) RETURN_IF_ERROR(Categorical(t, tp, n));
    return Status::Ok();
  }

  Status Categorical(const element& t, const std::string& tp, size_t n) {
    ASSIGN_OR_RETURN(std::vector<int64_t> type, IntArray(t, tp, "split_type"));
    RETURN_IF_ERROR(Length(type.size(), n, tp + ".split_type"));
    ASSIGN_OR_RETURN(std::vector<int64_t> cats, IntArray(t, tp, "categories"));
    ASSIGN_OR_RETURN(std::vector<int64_t> nodes, IntArray(t, tp, "categories_nodes"));
    ASSIGN_OR_RETURN(std::vector<int64_t> segments, IntArray(t, tp, "categories_segments"));
    ASSIGN_OR_RETURN(std::vector<int64_t> sizes, IntArray(t, tp, "categories_sizes"));
    RETURN_IF_ERROR(Length(segments.size(), nodes.size(), tp + ".categories_segments"));
    RETURN_IF_ERROR(Length(sizes.size(), nodes.size(), tp + ".categories_sizes"));
    size_t next = 0;  // into nodes: the categorical nodes, in order
    for (size_t i = 0; i < n; ++i) {
      const std::string at = tp + ".split_type[" + std::to_string(i) + "]";
      if (type[i] != 0 && type[i] != 1) return Bad(at, "expected 0 (numerical) or 1 (categorical)");
      if (type[i] == 0) continue;
      if (next == nodes.size() || nodes[next] != static_cast<int64_t>(i)) {
        return Bad(at, "a categorical split that categories_nodes does not list in order");
      }
      const std::string seg_at = tp + ".categories_segments[" + std::to_string(next) + "]";
      int64_t begin = segments[next], size = sizes[next];
      if (begin < 0 || size < 1 || begin > static_cast<int64_t>(cats.size()) ||
          size > static_cast<int64_t>(cats.size()) - begin) {
        return Bad(seg_at, "with its size, not a range of categories");
      }
      int64_t widest = 0;
      for (int64_t k = begin; k < begin + size; ++k) {
        if (cats[static_cast<size_t>(k)] < 0 || cats[static_cast<size_t>(k)] >= kMaxCategory) {
          return Bad(tp + ".categories[" + std::to_string(k) + "]",
                     "expected a category from 0 to " + std::to_string(kMaxCategory - 1));
        }
        widest = std::max(widest, cats[static_cast<size_t>(k)]);
      }
      bitset_bytes_ += static_cast<uint64_t>(widest) / 8 + 8;
      if (bitset_bytes_ > limits_.max_category_bitset_bytes) {
        return Bad(seg_at, "the categorical splits need more than " +
                               std::to_string(limits_.max_category_bitset_bytes) + " bytes of bitsets");
      }
      ++next;
    }
    if (next != nodes.size()) {
      return Bad(tp + ".categories_nodes[" + std::to_string(next) + "]", "not a node with split_type 1, in order");
    }
    return Status::Ok();
  }

  const XgboostModelLimits& limits_;
  XgboostModelFacts* facts_;
  uint64_t bitset_bytes_ = 0;
};

}  // namespace

Result<XgboostFormat> DetectXgboostFormat(std::string_view bytes, const std::string& file_name) {
  const bool ubj_name = file_name.size() >= 4 && file_name.compare(file_name.size() - 4, 4, ".ubj") == 0;
  if (bytes.empty() || bytes[0] != '{') {
    return InvalidArgument(std::string("not an XGBoost ") + (ubj_name ? "UBJSON" : "JSON") +
                           " model: it does not start with '{' (the legacy binary format is not read)");
  }
  size_t i = 1;
  while (i < bytes.size() && (bytes[i] == ' ' || bytes[i] == '\t' || bytes[i] == '\n' || bytes[i] == '\r')) ++i;
  const char c = i < bytes.size() ? bytes[i] : '\0';
  const bool json = c == '"';
  const bool ubj = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
  if (!json && !ubj) return InvalidArgument("not an XGBoost model: neither JSON nor UBJSON after the first '{'");
  if (json && ubj_name) return InvalidArgument("holds JSON, but its name says UBJSON (.ubj)");
  if (ubj && !ubj_name) return InvalidArgument("holds UBJSON, but its name says JSON (.json)");
  return json ? XgboostFormat::kJson : XgboostFormat::kUbj;
}

Result<XgboostModelFacts> CheckXgboostModel(std::string_view bytes, XgboostFormat format,
                                            const XgboostModelLimits& limits) {
  std::string json;
  if (format == XgboostFormat::kUbj) {
    ASSIGN_OR_RETURN(json, UbjToJson(bytes).Convert());
  } else {
    json = WithoutNonFiniteLiterals(bytes);
  }
  simdjson::dom::parser parser;
  if (auto err = parser.allocate(json.size(), kMaxNesting)) {
    return InvalidArgument(std::string("not valid JSON: ") + simdjson::error_message(err));
  }
  element root;
  if (auto err = parser.parse(json).get(root)) {
    return InvalidArgument(std::string("not valid JSON: ") + simdjson::error_message(err));
  }
  if (root.type() != element_type::OBJECT)
    return InvalidArgument("not an XGBoost model: the top level is not an object");
  RETURN_IF_ERROR(NoDuplicateKeys(root, "", 0));
  XgboostModelFacts facts;
  ModelChecker checker(limits, &facts);
  RETURN_IF_ERROR(checker.Check(root));
  return facts;
}

}  // namespace berth
