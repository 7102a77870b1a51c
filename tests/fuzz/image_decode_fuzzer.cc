// The image header checks with OpenCV's decoder behind them, as the image
// backend runs them: whatever passes ReadImageHeader (and the pixel limit)
// reaches cv::imdecode, and anything that then crashes, hangs or allocates
// without bound is a hole in the checks.
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "fuzz_util.h"
#include "image_header.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto bytes = berth::fuzz::View(data, size);
  auto header = berth::ReadImageHeader(bytes);
  if (!header.ok() || header->width * header->height > 1 << 20) return 0;
  try {
    const cv::Mat encoded(1, static_cast<int>(size), CV_8U, const_cast<uint8_t*>(data));
    cv::Mat image = cv::imdecode(encoded, cv::IMREAD_COLOR);
    (void)image;
  } catch (const cv::Exception&) {
  }
  return 0;
}
