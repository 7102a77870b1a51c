// How berth reads an HTTP/1.1 request: Beast's parser with the checks Beast
// leaves to its user, kept apart from the server so that a fuzz target can
// drive exactly this code (tests/fuzz/http_request_fuzzer.cc).
#pragma once

#include <boost/beast/http.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

namespace berth {

// Beast stores a field's name and value lengths in 16 bits and throws
// std::length_error (from inside async_read, past every handler) for a longer
// one: such a field is refused as a header-limit error instead.
inline constexpr size_t kMaxFieldBytes = 65000;

// Beast's request parser, with two changes: a field too long for Beast is an
// error, not an exception, and the trailer section of a chunked body is
// counted and dropped. Trailer fields never join the headers that handlers
// read (RFC 9110 6.5.1: a recipient may discard them), so a trailer cannot
// add, say, an Authorization or Inference-Header-Content-Length after the
// headers were checked.
class RequestParser final : public boost::beast::http::request_parser<boost::beast::http::string_body> {
 public:
  explicit RequestParser(uint64_t max_trailer_bytes) : max_trailer_bytes_(max_trailer_bytes) {}

  // Why the last header_limit error happened ("" for Beast's own limit).
  const std::string& refusal() const { return refusal_; }

 private:
  void on_field_impl(boost::beast::http::field name, boost::beast::string_view name_string,
                     boost::beast::string_view value, boost::beast::error_code& ec) override;

  uint64_t max_trailer_bytes_;
  uint64_t trailer_bytes_ = 0;
  std::string refusal_;
};

// Checks the message framing that Beast leaves to us (RFC 9112 6.1): a
// Transfer-Encoding must end in exactly one `chunked`, with no other coding
// (we decode none), and only in HTTP/1.1. Anything else would let the body
// be read as the next request (request smuggling), so it is refused and the
// connection closed. Returns the status to answer with, or nullopt if fine.
std::optional<std::pair<boost::beast::http::status, std::string>> CheckFraming(const RequestParser& parser);

// Every check of a request's head, in order: the framing (above), a Host
// header in HTTP/1.1 (RFC 9112 3.2: 400 without one), and Expect (only
// 100-continue is understood: 417 for anything else, RFC 9110 10.1.1).
std::optional<std::pair<boost::beast::http::status, std::string>> CheckRequestHead(const RequestParser& parser);

}  // namespace berth
