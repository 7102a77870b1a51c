#include "image/elf_closure.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

namespace berth {
namespace {

namespace fs = std::filesystem;

std::string SelfPath() { return fs::canonical("/proc/self/exe").string(); }

TEST(ElfClosureTest, ReadsInterpreterAndNeededOfThisTest) {
  Result<ElfInfo> info = ReadElfInfo(SelfPath());
  ASSERT_TRUE(info.ok()) << info.status().message();
  EXPECT_EQ(info->interpreter, "/lib64/ld-linux-x86-64.so.2");
  EXPECT_NE(std::find(info->needed.begin(), info->needed.end(), "libc.so.6"), info->needed.end());
}

TEST(ElfClosureTest, RefusesFilesThatAreNotElf) {
  std::string path = testing::TempDir() + "/not_elf.txt";
  std::ofstream(path) << "hello, this is not an ELF file at all";
  Result<ElfInfo> info = ReadElfInfo(path);
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(info.status().message().find("not an ELF file"), std::string::npos);
  EXPECT_EQ(ReadElfInfo("/nonexistent/lib.so").status().code(), StatusCode::kNotFound);
}

TEST(ElfClosureTest, ClosureOfThisTestHoldsLibcAndTheLoader) {
  Result<LibraryClosure> c = ComputeLibraryClosure({SelfPath()}, LibrarySearchPath::System());
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->interpreter, "/lib64/ld-linux-x86-64.so.2");
  EXPECT_TRUE(fs::is_regular_file(c->interpreter_source));
  auto has = [&](const std::string& name) {
    return std::any_of(c->libraries.begin(), c->libraries.end(), [&](const auto& l) { return l.name == name; });
  };
  EXPECT_TRUE(has("libc.so.6"));
  EXPECT_TRUE(has("libstdc++.so.6"));
  for (const auto& l : c->libraries) {
    EXPECT_TRUE(fs::is_regular_file(l.source)) << l.source;
    EXPECT_FALSE(fs::is_symlink(l.source)) << l.source;
  }
  // Excluded names are neither listed nor followed.
  Result<LibraryClosure> rest = ComputeLibraryClosure({SelfPath()}, LibrarySearchPath::System(), {"libc.so.6"});
  ASSERT_TRUE(rest.ok());
  EXPECT_LT(rest->libraries.size(), c->libraries.size());
}

TEST(ElfClosureTest, MissingLibraryNamesItAndWhoNeedsIt) {
  LibrarySearchPath empty;  // nowhere to look
  Result<LibraryClosure> c = ComputeLibraryClosure({SelfPath()}, empty);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kNotFound);
  EXPECT_NE(c.status().message().find("needed by"), std::string::npos) << c.status().message();
}

TEST(ElfClosureTest, ExpandsOriginAndFriends) {
  EXPECT_EQ(ExpandDynamicString("$ORIGIN/../lib", "/opt/app/bin"), "/opt/app/bin/../lib");
  EXPECT_EQ(ExpandDynamicString("${ORIGIN}:x", "/o"), "/o:x");
  EXPECT_EQ(ExpandDynamicString("/usr/$LIB/$PLATFORM", "/o"), "/usr/lib/x86_64-linux-gnu/x86_64");
  EXPECT_EQ(ExpandDynamicString("/plain", "/o"), "/plain");
}

TEST(ElfClosureTest, ReadsLdSoConfWithIncludes) {
  fs::path dir = fs::path(testing::TempDir()) / ("ldconf-" + std::to_string(::getpid()));
  fs::create_directories(dir / "conf.d");
  std::ofstream(dir / "ld.so.conf") << "/first\ninclude conf.d/*.conf\n# comment\n/last  # trailing\n";
  std::ofstream(dir / "conf.d" / "b.conf") << "/b\n";
  std::ofstream(dir / "conf.d" / "a.conf") << "/a1\n/a2\n";
  std::ofstream(dir / "conf.d" / "ignored.txt") << "/ignored\n";
  std::vector<std::string> dirs = ReadLdSoConf((dir / "ld.so.conf").string());
  EXPECT_EQ(dirs, (std::vector<std::string>{"/first", "/a1", "/a2", "/b", "/last"}));
  EXPECT_TRUE(ReadLdSoConf((dir / "missing.conf").string()).empty());
  fs::remove_all(dir);
}

}  // namespace
}  // namespace berth
