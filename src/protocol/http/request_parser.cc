#include "protocol/http/request_parser.h"

#include <algorithm>
#include <cctype>
#include <vector>

namespace berth {

namespace beast = boost::beast;
namespace http = beast::http;

void RequestParser::on_field_impl(http::field name, beast::string_view name_string, beast::string_view value,
                                  beast::error_code& ec) {
  if (name_string.size() > kMaxFieldBytes || value.size() > kMaxFieldBytes) {
    refusal_ = std::string(is_header_done() ? "a trailer field" : "a header field") + " is longer than " +
               std::to_string(kMaxFieldBytes) + " bytes";
    ec = http::error::header_limit;
    return;
  }
  if (is_header_done()) {  // a trailer field
    trailer_bytes_ += name_string.size() + value.size() + 4;
    if (trailer_bytes_ > max_trailer_bytes_) {
      refusal_ = "the trailer section is larger than the limit of " + std::to_string(max_trailer_bytes_) +
                 " bytes (--max-header-bytes)";
      ec = http::error::header_limit;
    }
    return;
  }
  get().insert(name, name_string, value);
}

std::optional<std::pair<http::status, std::string>> CheckFraming(const RequestParser& parser) {
  const auto& req = parser.get();
  auto [first, last] = req.equal_range(http::field::transfer_encoding);
  if (first == last) return std::nullopt;
  using Refusal = std::pair<http::status, std::string>;
  if (req.version() < 11) return Refusal{http::status::bad_request, "Transfer-Encoding in an HTTP/1.0 request"};
  std::vector<std::string> codings;
  for (auto it = first; it != last; ++it) {
    std::string_view v = it->value();
    while (!v.empty()) {
      size_t comma = v.find(',');
      std::string_view token = v.substr(0, comma);
      v = comma == std::string_view::npos ? std::string_view() : v.substr(comma + 1);
      while (!token.empty() && (token.front() == ' ' || token.front() == '\t')) token.remove_prefix(1);
      while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
      if (token.empty()) continue;
      std::string lower(token);
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      codings.push_back(std::move(lower));
    }
  }
  if (codings.empty() || codings.back() != "chunked" || !parser.chunked()) {
    return Refusal{http::status::bad_request,
                   "Transfer-Encoding: the final transfer coding must be chunked (RFC 9112 6.1)"};
  }
  if (codings.size() == 1) return std::nullopt;
  if (std::count(codings.begin(), codings.end(), "chunked") > 1) {
    return Refusal{http::status::bad_request, "Transfer-Encoding: chunked is applied more than once"};
  }
  return Refusal{http::status::not_implemented,
                 "Transfer-Encoding: only chunked is supported (for compressed bodies use Content-Encoding)"};
}

std::optional<std::pair<http::status, std::string>> CheckRequestHead(const RequestParser& parser) {
  if (auto refusal = CheckFraming(parser)) return refusal;
  const auto& req = parser.get();
  using Refusal = std::pair<http::status, std::string>;
  if (req.version() >= 11 && req.find(http::field::host) == req.end()) {
    return Refusal{http::status::bad_request, "an HTTP/1.1 request needs a Host header"};
  }
  if (auto expect = req.find(http::field::expect); expect != req.end()) {
    if (!beast::iequals(expect->value(), "100-continue")) {
      return Refusal{http::status::expectation_failed, "Expect: only 100-continue is supported"};
    }
  }
  return std::nullopt;
}

}  // namespace berth
