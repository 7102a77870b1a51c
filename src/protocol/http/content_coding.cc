#include "protocol/http/content_coding.h"

#include <zlib.h>

#include <cctype>

namespace berth {

ContentCoding ParseContentCoding(std::string_view value) {
  std::string v;
  for (char c : value) {
    if (c != ' ' && c != '\t') v.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  if (v.empty() || v == "identity") return ContentCoding::kIdentity;
  if (v == "gzip" || v == "x-gzip") return ContentCoding::kGzip;
  if (v == "deflate") return ContentCoding::kDeflate;
  return ContentCoding::kUnsupported;
}

Result<std::string> DecodeBody(ContentCoding coding, std::string_view body, uint64_t max_bytes) {
  if (coding == ContentCoding::kIdentity) return std::string(body);
  if (coding == ContentCoding::kUnsupported) return Unimplemented("unsupported Content-Encoding");
  z_stream z{};
  // gzip: 16 + 15; deflate: 32 + 15 detects a zlib or gzip header. A raw deflate stream is tried after.
  int window = coding == ContentCoding::kGzip ? 16 + MAX_WBITS : 32 + MAX_WBITS;
  auto inflate_all = [&](int bits) -> Result<std::string> {
    z = z_stream{};
    if (inflateInit2(&z, bits) != Z_OK) return Internal("zlib: inflateInit2 failed");
    std::string out;
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(body.data()));
    z.avail_in = static_cast<uInt>(body.size());
    char chunk[64 << 10];
    int rc = Z_OK;
    while (rc != Z_STREAM_END) {
      z.next_out = reinterpret_cast<Bytef*>(chunk);
      z.avail_out = sizeof chunk;
      rc = inflate(&z, Z_NO_FLUSH);
      if (rc != Z_OK && rc != Z_STREAM_END) {
        inflateEnd(&z);
        return InvalidArgument(std::string("the request body is not valid ") +
                               (coding == ContentCoding::kGzip ? "gzip" : "deflate") + " data");
      }
      size_t n = sizeof chunk - z.avail_out;
      if (out.size() + n > max_bytes) {
        inflateEnd(&z);
        return ResourceExhausted("the decompressed request body is larger than the limit of " +
                                 std::to_string(max_bytes) + " bytes (--max-request-bytes)");
      }
      out.append(chunk, n);
      if (rc != Z_STREAM_END && z.avail_in == 0 && n == 0) {
        inflateEnd(&z);
        return InvalidArgument("the request body's compressed data is truncated");
      }
    }
    inflateEnd(&z);
    return out;
  };
  Result<std::string> r = inflate_all(window);
  if (!r.ok() && coding == ContentCoding::kDeflate && r.status().code() == StatusCode::kInvalidArgument) {
    r = inflate_all(-MAX_WBITS);  // raw deflate, as some clients send "deflate"
  }
  return r;
}

std::optional<std::string> EncodeBody(ContentCoding coding, std::string_view data) {
  z_stream z{};
  int window = coding == ContentCoding::kGzip ? 16 + MAX_WBITS : MAX_WBITS;
  if (deflateInit2(&z, Z_BEST_SPEED, Z_DEFLATED, window, 8, Z_DEFAULT_STRATEGY) != Z_OK) return std::nullopt;
  std::string out;
  out.resize(deflateBound(&z, static_cast<uLong>(data.size())));
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

ContentCoding PreferredResponseCoding(std::string_view accept) {
  bool gzip = false, deflate = false, any = false;
  while (!accept.empty()) {
    size_t comma = accept.find(',');
    std::string_view item = accept.substr(0, comma);
    accept = comma == std::string_view::npos ? std::string_view() : accept.substr(comma + 1);
    std::string_view name = item.substr(0, item.find(';'));
    bool accepted = true;  // "q=0" (with any number of zeros after the point) refuses
    if (size_t q = item.find("q="); q != std::string_view::npos) {
      std::string_view v = item.substr(q + 2);
      while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
      accepted = v.find_first_not_of("0.") != std::string_view::npos;
    }
    switch (ParseContentCoding(name)) {
      case ContentCoding::kGzip: gzip = accepted; break;
      case ContentCoding::kDeflate: deflate = accepted; break;
      default: {
        std::string trimmed;
        for (char c : name) {
          if (c != ' ' && c != '\t') trimmed.push_back(c);
        }
        if (trimmed == "*") any = accepted;
      }
    }
  }
  if (gzip) return ContentCoding::kGzip;
  if (deflate) return ContentCoding::kDeflate;
  if (any) return ContentCoding::kGzip;
  return ContentCoding::kIdentity;
}

}  // namespace berth
