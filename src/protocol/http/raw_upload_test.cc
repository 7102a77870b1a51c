#include "protocol/http/raw_upload.h"

#include <gtest/gtest.h>

#include <string>

namespace berth {
namespace {

const char* kType = "multipart/form-data; boundary=XyZ";

std::vector<std::string> Parts(std::string_view type, std::string_view body) {
  auto parts = SplitMultipart(type, body);
  EXPECT_TRUE(parts.ok()) << parts.status().message();
  std::vector<std::string> out;
  if (parts.ok()) out.assign(parts->begin(), parts->end());
  return out;
}

TEST(RawUploadTest, KindFollowsTheContentType) {
  EXPECT_EQ(UploadKindOf("image/png", false), UploadKind::kRaw);
  EXPECT_EQ(UploadKindOf("Text/Plain; charset=utf-8", false), UploadKind::kRaw);
  EXPECT_EQ(UploadKindOf("application/octet-stream", false), UploadKind::kRaw);
  EXPECT_EQ(UploadKindOf("application/octet-stream", true), UploadKind::kNone);  // v2 binary tensors
  EXPECT_EQ(UploadKindOf("multipart/form-data; boundary=a", false), UploadKind::kMultipart);
  EXPECT_EQ(UploadKindOf("application/json", false), UploadKind::kNone);
  EXPECT_EQ(UploadKindOf("", false), UploadKind::kNone);
  EXPECT_EQ(UploadKindOf("application/x-www-form-urlencoded", false), UploadKind::kNone);  // curl -d
}

TEST(RawUploadTest, SplitsPartsInOrder) {
  std::string body =
      "preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"a\"; filename=\"a.png\"\r\n"
      "Content-Type: image/png\r\n\r\n\x89PNG\r\n--XyZ-in-data\r\n--XyZ \r\n\r\n\r\n--XyZ\r\n"
      "Content-Disposition: form-data; name=\"b\"\r\n\r\nsecond\r\n--XyZ--\r\nepilogue";
  EXPECT_EQ(Parts(kType, body), (std::vector<std::string>{"\x89PNG\r\n--XyZ-in-data", "", "second"}));
  EXPECT_EQ(Parts("multipart/form-data; charset=x; boundary=\"XyZ\"", "--XyZ\r\nA: b\r\n\r\nv\r\n--XyZ--"),
            (std::vector<std::string>{"v"}));
}

TEST(RawUploadTest, RefusesMalformedBodiesWithoutQuotingThem) {
  auto message = [](std::string_view type, std::string_view body) {
    return SplitMultipart(type, body).status().message();
  };
  const std::string p = "multipart/form-data body: ";
  EXPECT_EQ(message("multipart/form-data", "x"), p + "the Content-Type has no valid boundary parameter");
  EXPECT_EQ(message("multipart/form-data; boundary=", "x"), p + "the Content-Type has no valid boundary parameter");
  EXPECT_EQ(message(kType, "secret text"), p + "no boundary found (is the boundary parameter right?)");
  EXPECT_EQ(message(kType, "--XyZ\r\nA: b\r\n\r\nsecret"), p + "part 0 has no closing boundary (cut short?)");
  EXPECT_EQ(message(kType, "--XyZ\r\nA: secret"), p + "part 0 has no end to its headers");
  EXPECT_EQ(message(kType, "--XyZsecret"), p + "a boundary not followed by a line break");
  EXPECT_EQ(message(kType, "--XyZ\r\n\r\nv\r\n--XyZ-more"), p + "part 0 has no closing boundary (cut short?)");
  EXPECT_EQ(message(kType, "--XyZ--"), p + "no parts");
}

}  // namespace
}  // namespace berth
