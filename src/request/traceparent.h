// W3C Trace Context (https://www.w3.org/TR/trace-context/): the `traceparent`
// a request arrives with, checked so that only a well-formed one is passed
// on to remote pipeline steps (an invalid one is ignored, as the spec asks).
#pragma once

#include <string>
#include <string_view>

namespace berth {

// `value` when it is a valid traceparent (version 00: exactly
// "00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>", lower-case, ids
// not all zero); for a later version, its first 55 characters when they
// parse as version 00's fields do. Otherwise empty.
std::string CheckedTraceparent(std::string_view value);

}  // namespace berth
