// Content-Encoding of request bodies (RFC 9110 8.4): identity, gzip and
// deflate (zlib or raw, as clients send it), decompressed with a bound so that
// a small body cannot inflate into a large allocation (a zip bomb).
#pragma once

#include <cstdint>
#include <optional>
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

// `data` compressed (gzip or deflate/zlib), for responses; nullopt if zlib
// could not start (out of memory): send it uncompressed then.
std::optional<std::string> EncodeBody(ContentCoding coding, std::string_view data);

// The coding to answer with for a request's Accept-Encoding (RFC 9110
// 12.5.3): gzip, else deflate, if the client accepts one (q > 0, or "*");
// identity otherwise.
ContentCoding PreferredResponseCoding(std::string_view accept_encoding);

// Responses smaller than this go uncompressed: the headers would outweigh the saving.
inline constexpr size_t kMinCompressedResponseBytes = 1024;

}  // namespace berth
