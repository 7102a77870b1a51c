#include "common/pipeline_condition.h"

#include <cctype>
#include <cmath>
#include <cstring>

namespace berth {

struct Condition::Node {
  enum class Kind { kOr, kAnd, kNot, kCompare };
  enum class Op { kGt, kGe, kLt, kLe, kEq, kNe };
  Kind kind = Kind::kCompare;
  std::vector<std::unique_ptr<Node>> children;
  // kCompare: ref OP number (a NUMBER OP REF comparison is stored flipped).
  TensorRef ref;
  Op op = Op::kGt;
  double number = 0;
  bool any = false;  // any() rather than all()
};

Condition::~Condition() = default;

namespace {

using Node = Condition::Node;

class Parser {
 public:
  Parser(const std::string& text, std::vector<TensorRef>* refs) : s_(text), refs_(refs) {}

  Result<std::unique_ptr<Node>> ParseAll() {
    ASSIGN_OR_RETURN(std::unique_ptr<Node> n, Or());
    Skip();
    if (i_ != s_.size()) return Fail("expected and, or or the end");
    return n;
  }

 private:
  Status Fail(const std::string& what) const {
    return InvalidArgument("at character " + std::to_string(i_ + 1) + ": " + what);
  }
  void Skip() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }
  // The keyword `word` as a whole word.
  bool Word(const char* word) {
    Skip();
    size_t n = std::strlen(word);
    if (s_.compare(i_, n, word) != 0) return false;
    if (i_ + n < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[i_ + n])) || s_[i_ + n] == '_')) return false;
    i_ += n;
    return true;
  }
  bool Char(char c) {
    Skip();
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }

  Result<std::unique_ptr<Node>> Join(Node::Kind kind, std::unique_ptr<Node> first,
                                     Result<std::unique_ptr<Node>> (Parser::*next)(), const char* word) {
    if (!Word(word)) return first;
    auto n = std::make_unique<Node>();
    n->kind = kind;
    n->children.push_back(std::move(first));
    do {
      ASSIGN_OR_RETURN(std::unique_ptr<Node> c, (this->*next)());
      n->children.push_back(std::move(c));
    } while (Word(word));
    return n;
  }
  Result<std::unique_ptr<Node>> Or() {
    ASSIGN_OR_RETURN(std::unique_ptr<Node> a, And());
    return Join(Node::Kind::kOr, std::move(a), &Parser::And, "or");
  }
  Result<std::unique_ptr<Node>> And() {
    ASSIGN_OR_RETURN(std::unique_ptr<Node> a, Not());
    return Join(Node::Kind::kAnd, std::move(a), &Parser::Not, "and");
  }
  Result<std::unique_ptr<Node>> Not() {
    if (++depth_ > 32) return Fail("nested too deeply");
    Result<std::unique_ptr<Node>> out = NotBody();
    --depth_;
    return out;
  }
  Result<std::unique_ptr<Node>> NotBody() {
    if (Word("not")) {
      ASSIGN_OR_RETURN(std::unique_ptr<Node> c, Not());
      auto n = std::make_unique<Node>();
      n->kind = Node::Kind::kNot;
      n->children.push_back(std::move(c));
      return n;
    }
    if (Char('(')) {
      ASSIGN_OR_RETURN(std::unique_ptr<Node> c, Or());
      if (!Char(')')) return Fail("expected ')'");
      return c;
    }
    bool any = Word("any");
    if (any || Word("all")) {
      if (!Char('(')) return Fail("expected '(' after any/all");
      ASSIGN_OR_RETURN(std::unique_ptr<Node> c, Compare());
      if (!Char(')')) return Fail("expected ')'");
      c->any = any;
      return c;
    }
    return Compare();
  }

  Result<TensorRef> Ref() {
    Skip();
    size_t start = i_;
    while (i_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[i_])) || s_[i_] == '_' || s_[i_] == '-' ||
                              s_[i_] == '$' || s_[i_] == '.')) {
      ++i_;
    }
    std::string t = s_.substr(start, i_ - start);
    size_t dot = t.find('.');
    if (dot == std::string::npos || dot == 0 || dot + 1 == t.size()) {
      i_ = start;
      return Fail("expected a tensor ($in.NAME or STEP.OUTPUT) or a number");
    }
    TensorRef ref;
    if (t.substr(0, dot) != "$in") ref.step = t.substr(0, dot);
    ref.tensor = t.substr(dot + 1);
    return ref;
  }
  bool Number(double* out) {
    Skip();
    if (i_ >= s_.size() ||
        !(std::isdigit(static_cast<unsigned char>(s_[i_])) || s_[i_] == '-' || s_[i_] == '+' || s_[i_] == '.')) {
      return false;
    }
    const char* begin = s_.c_str() + i_;
    char* end = nullptr;
    double v = std::strtod(begin, &end);
    if (end == begin || !std::isfinite(v)) return false;
    i_ += static_cast<size_t>(end - begin);
    *out = v;
    return true;
  }
  Result<Node::Op> Op() {
    Skip();
    static const std::pair<const char*, Node::Op> kOps[] = {{">=", Node::Op::kGe}, {"<=", Node::Op::kLe},
                                                            {"==", Node::Op::kEq}, {"!=", Node::Op::kNe},
                                                            {">", Node::Op::kGt},  {"<", Node::Op::kLt}};
    for (const auto& [text, op] : kOps) {
      if (s_.compare(i_, std::strlen(text), text) == 0) {
        i_ += std::strlen(text);
        return op;
      }
    }
    return Fail("expected a comparison (> >= < <= == !=)");
  }
  Result<std::unique_ptr<Node>> Compare() {
    auto n = std::make_unique<Node>();
    double number = 0;
    if (Number(&n->number)) {  // NUMBER OP REF: flip it
      ASSIGN_OR_RETURN(Node::Op op, Op());
      ASSIGN_OR_RETURN(n->ref, Ref());
      static const Node::Op kFlip[] = {Node::Op::kLt, Node::Op::kLe, Node::Op::kGt,
                                       Node::Op::kGe, Node::Op::kEq, Node::Op::kNe};
      n->op = kFlip[static_cast<int>(op)];
    } else {
      ASSIGN_OR_RETURN(n->ref, Ref());
      ASSIGN_OR_RETURN(n->op, Op());
      if (!Number(&number)) return Fail("expected a number");
      n->number = number;
    }
    refs_->push_back(n->ref);
    return n;
  }

  const std::string& s_;
  std::vector<TensorRef>* refs_;
  size_t i_ = 0;
  int depth_ = 0;
};

// Element i of `t` as a double (numeric datatypes only; checked at load).
double At(const Tensor& t, int64_t i) { return ElementAsDouble(t, i); }

bool Holds(Node::Op op, double a, double b) {
  switch (op) {
    case Node::Op::kGt: return a > b;
    case Node::Op::kGe: return a >= b;
    case Node::Op::kLt: return a < b;
    case Node::Op::kLe: return a <= b;
    case Node::Op::kEq: return a == b;
    case Node::Op::kNe: return a != b;
  }
  return false;
}

Result<bool> Eval(const Node& n, const std::function<const Tensor*(const TensorRef&)>& find) {
  switch (n.kind) {
    case Node::Kind::kOr:
      for (const auto& c : n.children) {
        ASSIGN_OR_RETURN(bool v, Eval(*c, find));
        if (v) return true;
      }
      return false;
    case Node::Kind::kAnd:
      for (const auto& c : n.children) {
        ASSIGN_OR_RETURN(bool v, Eval(*c, find));
        if (!v) return false;
      }
      return true;
    case Node::Kind::kNot: {
      ASSIGN_OR_RETURN(bool v, Eval(*n.children[0], find));
      return !v;
    }
    case Node::Kind::kCompare: break;
  }
  const Tensor* t = find(n.ref);
  if (t == nullptr) return false;
  if (t->dtype == DataType::kBytes || t->dtype == DataType::kFp16) {
    return InvalidArgument(n.ref.ToString() + ": a " + std::string(DataTypeName(t->dtype)) + " tensor in a condition");
  }
  int64_t count = static_cast<int64_t>(t->data.size() / DataTypeSize(t->dtype));
  for (int64_t i = 0; i < count; ++i) {
    bool holds = Holds(n.op, At(*t, i), n.number);
    if (n.any && holds) return true;
    if (!n.any && !holds) return false;
  }
  return !n.any;  // any() of nothing is false, all() of nothing is true
}

}  // namespace

Result<std::shared_ptr<const Condition>> Condition::Parse(const std::string& text) {
  std::shared_ptr<Condition> c(new Condition());
  Parser p(text, &c->refs_);
  ASSIGN_OR_RETURN(c->root_, p.ParseAll());
  return std::shared_ptr<const Condition>(std::move(c));
}

Result<bool> Condition::Evaluate(const std::function<const Tensor*(const TensorRef&)>& find) const {
  return Eval(*root_, find);
}

}  // namespace berth
