#include "image_header.h"

#include <string>

namespace berth {
namespace {

uint32_t Be16(std::string_view b, size_t at) {
  return (uint32_t{static_cast<uint8_t>(b[at])} << 8) | static_cast<uint8_t>(b[at + 1]);
}
uint32_t Be32(std::string_view b, size_t at) { return (Be16(b, at) << 16) | Be16(b, at + 2); }
uint32_t Le16(std::string_view b, size_t at) {
  return static_cast<uint8_t>(b[at]) | (uint32_t{static_cast<uint8_t>(b[at + 1])} << 8);
}
uint32_t Le24(std::string_view b, size_t at) { return Le16(b, at) | (uint32_t{static_cast<uint8_t>(b[at + 2])} << 16); }
uint32_t Le32(std::string_view b, size_t at) { return Le16(b, at) | (Le16(b, at + 2) << 16); }

Status Cut(ImageFormat format, const char* what) {
  return InvalidArgument(std::string("a ") + ImageFormatName(format) + " image cut short (" + what + ")");
}

// PNG (ISO/IEC 15948): the signature, then the IHDR chunk first: length 13, "IHDR", width, height (big-endian).
Result<ImageHeader> Png(std::string_view b) {
  if (b.size() < 24) return Cut(ImageFormat::kPng, "no complete IHDR chunk");
  if (b.substr(12, 4) != "IHDR") return InvalidArgument("a PNG image whose first chunk is not IHDR");
  return ImageHeader{ImageFormat::kPng, Be32(b, 16), Be32(b, 20)};
}

// JPEG (ITU T.81, B.1): markers FF xx, each but the standalone ones followed by a 2-byte big-endian length
// that counts itself. The frame header (SOFn) carries height then width; entropy-coded data follows SOS, and
// there a byte FF is always followed by 00 or a restart marker, so an FF D9 after the first SOS is the end of
// this image (an EXIF thumbnail's own FF D9 sits inside an APP1 segment, before it).
Result<ImageHeader> Jpeg(std::string_view b) {
  size_t at = 2;
  ImageHeader h{ImageFormat::kJpeg, 0, 0};
  bool frame = false;
  while (true) {
    if (at + 2 > b.size()) return Cut(ImageFormat::kJpeg, "no scan");
    if (static_cast<uint8_t>(b[at]) != 0xFF) return InvalidArgument("a JPEG image with a malformed marker");
    uint8_t marker = static_cast<uint8_t>(b[at + 1]);
    if (marker == 0xFF) {  // fill byte
      ++at;
      continue;
    }
    at += 2;
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) continue;  // standalone
    if (marker == 0xD8 || marker == 0xD9 || marker == 0x00) {
      return InvalidArgument("a JPEG image with a malformed marker");
    }
    if (at + 2 > b.size()) return Cut(ImageFormat::kJpeg, "in a marker segment");
    uint32_t length = Be16(b, at);
    if (length < 2) return InvalidArgument("a JPEG image with a malformed marker segment");
    if (at + length > b.size()) return Cut(ImageFormat::kJpeg, "in a marker segment");
    bool sof = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
    if (sof) {
      if (length < 8) return InvalidArgument("a JPEG image with a malformed frame header");
      h.height = Be16(b, at + 3);
      h.width = Be16(b, at + 5);
      frame = true;
    }
    if (marker == 0xDA) {  // SOS: the first scan
      if (!frame) return InvalidArgument("a JPEG image with a scan before its frame header");
      size_t eoi = b.rfind("\xFF\xD9");
      if (eoi == std::string_view::npos || eoi < at + length) {
        return Cut(ImageFormat::kJpeg, "no end-of-image marker");
      }
      return h;
    }
    at += length;
  }
}

// WebP (RFC 9649): "RIFF", size, "WEBP", then one of VP8 (lossy: frame tag, start code 9D 01 2A, 14-bit
// width and height), VP8L (lossless: signature 2F, 14-bit width-1 and height-1) or VP8X (extended: 24-bit
// canvas width-1 and height-1).
Result<ImageHeader> Webp(std::string_view b) {
  if (b.size() < 30) return Cut(ImageFormat::kWebp, "no complete header");
  if (uint64_t{Le32(b, 4)} + 8 > b.size()) return Cut(ImageFormat::kWebp, "shorter than its RIFF size");
  std::string_view chunk = b.substr(12, 4);
  ImageHeader h{ImageFormat::kWebp, 0, 0};
  if (chunk == "VP8 ") {
    if (b.substr(23, 3) != "\x9D\x01\x2A") return InvalidArgument("a WebP image with a malformed VP8 header");
    h.width = Le16(b, 26) & 0x3FFF;
    h.height = Le16(b, 28) & 0x3FFF;
  } else if (chunk == "VP8L") {
    if (static_cast<uint8_t>(b[20]) != 0x2F) return InvalidArgument("a WebP image with a malformed VP8L header");
    uint32_t bits = Le32(b, 21);
    h.width = int64_t{bits & 0x3FFF} + 1;
    h.height = int64_t{(bits >> 14) & 0x3FFF} + 1;
  } else if (chunk == "VP8X") {
    h.width = int64_t{Le24(b, 24)} + 1;
    h.height = int64_t{Le24(b, 27)} + 1;
  } else {
    return InvalidArgument("a WebP image with an unknown first chunk");
  }
  return h;
}

}  // namespace

const char* ImageFormatName(ImageFormat format) {
  switch (format) {
    case ImageFormat::kPng: return "PNG";
    case ImageFormat::kJpeg: return "JPEG";
    case ImageFormat::kWebp: return "WebP";
  }
  return "?";
}

Result<ImageHeader> ReadImageHeader(std::string_view b) {
  if (b.empty()) return InvalidArgument("empty (0 bytes), not an image");
  Result<ImageHeader> h = InvalidArgument("not a PNG, JPEG or WebP image");
  if (b.size() >= 8 && b.substr(0, 8) == "\x89PNG\r\n\x1A\n") {
    h = Png(b);
  } else if (b.size() >= 3 && b.substr(0, 3) == "\xFF\xD8\xFF") {
    h = Jpeg(b);
  } else if (b.size() >= 12 && b.substr(0, 4) == "RIFF" && b.substr(8, 4) == "WEBP") {
    h = Webp(b);
  }
  // PNG allows up to 2^31 - 1 per side, JPEG 65535, WebP 2^24: larger is no image (and width x height must fit
  // in int64 for the pixel limit).
  constexpr int64_t kMaxSide = (int64_t{1} << 31) - 1;
  if (h.ok() && (h->width <= 0 || h->height <= 0 || h->width > kMaxSide || h->height > kMaxSide)) {
    return InvalidArgument(std::string("a ") + ImageFormatName(h->format) + " image of " + std::to_string(h->width) +
                           "x" + std::to_string(h->height) + " pixels");
  }
  return h;
}

}  // namespace berth
