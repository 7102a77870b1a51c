// What an encoded image says about itself before anything decodes it.
//
// The image backend decodes untrusted uploads. A few bytes of header can
// claim 30000 x 30000 pixels (2.7 GB once decoded), and a JPEG cut short
// decodes "successfully" in libjpeg, its missing rows filled with gray. So
// every element is read here first, without a decoder: the format from its
// signature (PNG, JPEG and WebP only; OpenCV would also try BMP, TIFF, PNM,
// ... whose decoders an upload has no business reaching), the pixel size
// from the header, and, for JPEG, whether the file reaches its end-of-image
// marker after the first scan. Only an element that passes reaches OpenCV.
//
// No OpenCV here: plain code, unit-tested and fuzzed on its own (and fuzzed
// with OpenCV's decoder behind it).
#pragma once

#include <cstdint>
#include <string_view>

#include "berth/status.h"

namespace berth {

enum class ImageFormat { kPng, kJpeg, kWebp };

const char* ImageFormatName(ImageFormat format);  // "PNG", "JPEG", "WebP"

struct ImageHeader {
  ImageFormat format = ImageFormat::kPng;
  int64_t width = 0;
  int64_t height = 0;
};

// The format and size of one encoded image. InvalidArgument, without
// quoting any of its bytes, for an empty element, an unknown signature, a
// header cut short or naming a zero size or a side over 2^31 - 1 (so
// width x height never overflows), or a JPEG without its
// end-of-image marker (truncated).
Result<ImageHeader> ReadImageHeader(std::string_view bytes);

}  // namespace berth
