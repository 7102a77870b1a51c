#include "net/url.h"

#include <gtest/gtest.h>

namespace berth {
namespace {

TEST(UrlTest, ParsesTheFormsClientsUse) {
  auto u = ParseUrl("https://registry.example:5000/v2/x?n=1");
  ASSERT_TRUE(u.ok()) << u.status().message();
  EXPECT_TRUE(u->tls);
  EXPECT_EQ(u->host, "registry.example");
  EXPECT_EQ(u->port, "5000");
  EXPECT_EQ(u->target, "/v2/x?n=1");
  EXPECT_EQ(u->HostHeader(), "registry.example:5000");
  u = ParseUrl("http://scorer");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->port, "80");
  EXPECT_EQ(u->target, "/");
  EXPECT_EQ(u->HostHeader(), "scorer");
  u = ParseUrl("http://[::1]:9000?q");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->target, "/?q");
  EXPECT_EQ(u->HostHeader(), "[::1]:9000");
  EXPECT_EQ(u->Origin(), "http://[::1]:9000");
}

TEST(UrlTest, RefusesWhatIsNotAPlainAbsoluteUrl) {
  for (const char* bad : {"", "ftp://x", "x:1", "http://", "http://:80", "http://h:0", "http://h:70000", "http://h:x",
                          "http://h:", "http://[::1", "http://[::1]x", "http://u:p@h:1", "http://h/#frag"}) {
    EXPECT_FALSE(ParseUrl(bad).ok()) << bad;
  }
  EXPECT_NE(ParseUrl("http://u:secret@h/").status().message().find("user information"), std::string::npos);
}

TEST(UrlTest, ResolvesLocationHeaders) {
  Url base = *ParseUrl("https://r.example/v2/");
  EXPECT_EQ(ResolveUrl(base, "/v2/uploads/1?x=y")->ToString(), "https://r.example:443/v2/uploads/1?x=y");
  EXPECT_EQ(ResolveUrl(base, "http://other:1/a")->ToString(), "http://other:1/a");
  EXPECT_FALSE(ResolveUrl(base, "relative/path").ok());
}

TEST(UrlTest, PercentEncodesAllButUnreserved) {
  EXPECT_EQ(PercentEncode("a-Z_0.~"), "a-Z_0.~");
  EXPECT_EQ(PercentEncode("repository:x/y:pull,push"), "repository%3Ax%2Fy%3Apull%2Cpush");
  EXPECT_EQ(PercentEncode(std::string("\xff ", 2)), "%FF%20");
}

}  // namespace
}  // namespace berth
