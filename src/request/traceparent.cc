#include "request/traceparent.h"

namespace berth {

namespace {

bool LowerHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool AllZero(std::string_view s) { return s.find_first_not_of('0') == std::string_view::npos; }

}  // namespace

std::string CheckedTraceparent(std::string_view value) {
  constexpr size_t kLength = 55;  // 2 + 1 + 32 + 1 + 16 + 1 + 2
  if (value.size() < kLength) return {};
  std::string_view version = value.substr(0, 2);
  if (!LowerHex(version) || version == "ff") return {};
  if (version == "00" ? value.size() != kLength : value.size() > kLength && value[kLength] != '-') return {};
  std::string_view head = value.substr(0, kLength);
  if (head[2] != '-' || head[35] != '-' || head[52] != '-') return {};
  std::string_view trace_id = head.substr(3, 32), parent_id = head.substr(36, 16), flags = head.substr(53, 2);
  if (!LowerHex(trace_id) || !LowerHex(parent_id) || !LowerHex(flags)) return {};
  if (AllZero(trace_id) || AllZero(parent_id)) return {};
  return std::string(head);
}

}  // namespace berth
