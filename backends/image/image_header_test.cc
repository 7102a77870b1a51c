#include "image_header.h"

#include <gtest/gtest.h>

#include <string>

namespace berth {
namespace {

std::string Be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

std::string Png(uint32_t w, uint32_t h) {
  return std::string("\x89PNG\r\n\x1A\n", 8) + Be32(13) + "IHDR" + Be32(w) + Be32(h) + std::string("\x08\x02\0\0\0", 5);
}

// SOI, an APP1 segment holding a thumbnail's own EOI, SOF0 (h, w), SOS, entropy data, EOI.
std::string Jpeg(int h, int w, bool with_eoi) {
  std::string app1 = std::string("\xFF\xE1\x00\x08", 4) + "Exif" + std::string("\xFF\xD9", 2);
  std::string sof = std::string("\xFF\xC0\x00\x0B\x08", 5) + static_cast<char>(h >> 8) + static_cast<char>(h) +
                    static_cast<char>(w >> 8) + static_cast<char>(w) + std::string("\x01\x01\x11\x00", 4);
  std::string sos = std::string("\xFF\xDA\x00\x08\x01\x01\x00\x00\x3F\x00", 10);
  return std::string("\xFF\xD8", 2) + app1 + sof + sos + std::string("\x12\xFF\x00\x34", 4) +
         (with_eoi ? std::string("\xFF\xD9", 2) : "");
}

std::string Le(uint32_t v, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += static_cast<char>(v >> (8 * i));
  return s;
}

std::string Webp(const std::string& chunk, const std::string& payload) {
  std::string body = "WEBP" + chunk + Le(static_cast<uint32_t>(payload.size()), 4) + payload;
  return "RIFF" + Le(static_cast<uint32_t>(body.size()), 4) + body;
}

TEST(ImageHeaderTest, ReadsThePixelSizeOfEachFormat) {
  auto png = ReadImageHeader(Png(37, 53));
  ASSERT_TRUE(png.ok()) << png.status().message();
  EXPECT_EQ(png->format, ImageFormat::kPng);
  EXPECT_EQ(png->width, 37);
  EXPECT_EQ(png->height, 53);

  auto jpeg = ReadImageHeader(Jpeg(480, 640, true));
  ASSERT_TRUE(jpeg.ok()) << jpeg.status().message();
  EXPECT_EQ(jpeg->format, ImageFormat::kJpeg);
  EXPECT_EQ(jpeg->width, 640);
  EXPECT_EQ(jpeg->height, 480);

  // VP8 (lossy): frame tag, start code, 14-bit width and height.
  auto vp8 = ReadImageHeader(Webp("VP8 ", std::string("\0\0\0\x9D\x01\x2A", 6) + Le(300, 2) + Le(200, 2) + "xx"));
  ASSERT_TRUE(vp8.ok()) << vp8.status().message();
  EXPECT_EQ(vp8->width, 300);
  EXPECT_EQ(vp8->height, 200);
  // VP8L (lossless): 0x2F, then width-1 and height-1 in 14 bits each.
  auto vp8l = ReadImageHeader(Webp("VP8L", "\x2F" + Le((99u) | (49u << 14), 4) + "xxxxx"));
  ASSERT_TRUE(vp8l.ok()) << vp8l.status().message();
  EXPECT_EQ(vp8l->width, 100);
  EXPECT_EQ(vp8l->height, 50);
  // VP8X (extended): flags, then 24-bit canvas width-1 and height-1.
  auto vp8x = ReadImageHeader(Webp("VP8X", std::string(4, '\0') + Le(29999, 3) + Le(29999, 3)));
  ASSERT_TRUE(vp8x.ok()) << vp8x.status().message();
  EXPECT_EQ(vp8x->width, 30000);
  EXPECT_EQ(vp8x->height, 30000);
}

TEST(ImageHeaderTest, RefusesWhatIsNotACompleteImage) {
  auto message = [](const std::string& bytes) { return ReadImageHeader(bytes).status().message(); };
  EXPECT_EQ(message(""), "empty (0 bytes), not an image");
  EXPECT_EQ(message("<html>secret</html>"), "not a PNG, JPEG or WebP image");
  EXPECT_EQ(message("BM\x36\x00\x00\x00"), "not a PNG, JPEG or WebP image");  // BMP: OpenCV would decode it
  EXPECT_EQ(message(Png(37, 53).substr(0, 20)), "a PNG image cut short (no complete IHDR chunk)");
  EXPECT_EQ(message(Png(0, 53)), "a PNG image of 0x53 pixels");
  // Found by image_decode_fuzzer: width x height of 2^32 - 1 each overflowed the pixel-limit check.
  EXPECT_EQ(message(Png(0xFFFFFFFF, 0xFFFFFFFF)), "a PNG image of 4294967295x4294967295 pixels");
  EXPECT_TRUE(ReadImageHeader(Png(0x7FFFFFFF, 0x7FFFFFFF)).ok());
  // A JPEG cut anywhere after its first scan began has no end-of-image marker after it; the thumbnail's
  // EOI inside APP1 does not count.
  std::string jpeg = Jpeg(48, 64, true);
  EXPECT_EQ(message(jpeg.substr(0, jpeg.size() - 2)), "a JPEG image cut short (no end-of-image marker)");
  EXPECT_EQ(message(jpeg.substr(0, 8)), "a JPEG image cut short (in a marker segment)");
  EXPECT_EQ(message(Jpeg(0, 64, true)), "a JPEG image of 64x0 pixels");
  std::string webp = Webp("VP8L", "\x2F" + Le(99, 4) + "xxxxxxxxxx");
  EXPECT_EQ(message(webp.substr(0, webp.size() - 1)), "a WebP image cut short (shorter than its RIFF size)");
  EXPECT_EQ(message(Webp("ABCD", std::string(10, 'x'))), "a WebP image with an unknown first chunk");
}

TEST(ImageHeaderTest, NeverReadsPastTheEnd) {
  // Every prefix of every format is refused or read within bounds (ASan builds check the reads).
  for (const std::string& full : {Png(5, 5), Jpeg(5, 5, true), Webp("VP8X", std::string(10, '\0'))}) {
    for (size_t n = 0; n < full.size(); ++n) (void)ReadImageHeader(full.substr(0, n));
  }
}

}  // namespace
}  // namespace berth
