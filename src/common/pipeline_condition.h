// A pipeline step's `when:` condition, parsed once at load:
//
//   cond  := or
//   or    := and ("or" and)*
//   and   := not ("and" not)*
//   not   := "not" not | "(" cond ")" | quant | cmp
//   quant := ("any" | "all") "(" cmp ")"
//   cmp   := REF OP NUMBER | NUMBER OP REF        OP: > >= < <= == !=
//
// REF is a tensor ($in.NAME or STEP.OUTPUT). A comparison holds elementwise;
// any() asks for one element that satisfies it, all() (and a bare
// comparison) for every element, over the whole tensor (every row). A
// tensor that is absent makes the condition false.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "berth/status.h"
#include "berth/tensor.h"
#include "common/pipeline_spec.h"

namespace berth {

class Condition {
 public:
  // InvalidArgument saying where in the text parsing stopped (by position,
  // never quoting it).
  static Result<std::shared_ptr<const Condition>> Parse(const std::string& text);

  // Every tensor the condition reads (its step must run first).
  const std::vector<TensorRef>& refs() const { return refs_; }

  // Evaluates against the tensors present; `find` returns null for an absent one.
  Result<bool> Evaluate(const std::function<const Tensor*(const TensorRef&)>& find) const;

  struct Node;
  ~Condition();

 private:
  Condition() = default;
  std::unique_ptr<Node> root_;
  std::vector<TensorRef> refs_;
};

}  // namespace berth
