// Content-Encoding of request bodies (RFC 9110 8.4): identity, gzip and
// deflate (zlib or raw, as clients send it), decompressed with a bound so that
// a small body cannot inflate into a large allocation (a zip bomb).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "berth/status.h"

namespace berth {

enum class ContentCoding { kIdentity, kGzip, kDeflate, kUnsupported };

// The coding a Content-Encoding value names (case-insensitive; "" = identity).
ContentCoding ParseContentCoding(std::string_view value);

// `body` decoded. ResourceExhausted when the decoded bytes would pass
// `max_bytes` (decoding stops there), InvalidArgument for corrupt data.
Result<std::string> DecodeBody(ContentCoding coding, std::string_view body, uint64_t max_bytes);

// `data` compressed (gzip or deflate/zlib), for responses.
std::string EncodeBody(ContentCoding coding, std::string_view data);

}  // namespace berth
