#include "image/layer.h"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "image/tar_writer.h"

namespace berth {
namespace {

namespace fs = std::filesystem;

class LayerTest : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(testing::TempDir()) / ("layer-" + std::to_string(::getpid()) + "-" +
                                           testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "src");
    std::ofstream(dir_ / "src" / "lib.so") << std::string(100000, 'x');
    fs::permissions(dir_ / "src" / "lib.so", fs::perms::owner_all | fs::perms::group_read);
    std::ofstream(dir_ / "src" / "tool") << "#!/bin/sh\n";
    fs::permissions(dir_ / "src" / "tool", fs::perms::owner_all);
  }
  void TearDown() override { fs::remove_all(dir_); }

  LayerSpec Spec() {
    LayerSpec s{"test", {}};
    LayerEntry a;
    a.path = "usr/lib/x86_64-linux-gnu/libz.so.1";
    a.source = (dir_ / "src" / "lib.so").string();
    LayerEntry alias = a;
    alias.path = "lib64/alias.so";  // same source: a hard link
    LayerEntry tool;
    tool.path = "usr/bin/tool";
    tool.source = (dir_ / "src" / "tool").string();
    LayerEntry passwd;
    passwd.path = "etc/passwd";
    passwd.content = "root:x:0:0::/:/sbin/nologin\n";
    LayerEntry tmp;
    tmp.kind = LayerEntry::Kind::kDirectory;
    tmp.path = "tmp";
    tmp.mode = 01777;
    s.entries = {tool, a, passwd, tmp, alias};  // unsorted on purpose
    return s;
  }

  std::string Read(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  fs::path dir_;
};

TEST_F(LayerTest, SameInputGivesSameBytes) {
  LayerOptions o;
  o.mtime = 1700000000;
  Result<LayerBlob> a = WriteLayer(Spec(), (dir_ / "a.tar.gz").string(), o);
  ASSERT_TRUE(a.ok()) << a.status().message();
  // Another mtime on the host file must not matter.
  fs::last_write_time(dir_ / "src" / "lib.so", fs::file_time_type::clock::now() - std::chrono::hours(5));
  Result<LayerBlob> b = WriteLayer(Spec(), (dir_ / "b.tar.gz").string(), o);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a->digest, b->digest);
  EXPECT_EQ(a->diff_id, b->diff_id);
  EXPECT_EQ(Read(dir_ / "a.tar.gz"), Read(dir_ / "b.tar.gz"));
  EXPECT_EQ(a->digest, "sha256:" + Sha256Hex(Read(dir_ / "a.tar.gz")));
  EXPECT_EQ(a->size, fs::file_size(dir_ / "a.tar.gz"));
  EXPECT_NE(a->digest, a->diff_id);
  // gzip header: magic, deflate, no flags, mtime 0, OS 255.
  std::string bytes = Read(dir_ / "a.tar.gz");
  ASSERT_GT(bytes.size(), 10u);
  EXPECT_EQ(bytes.substr(0, 3), std::string("\x1f\x8b\x08", 3));
  EXPECT_EQ(bytes.substr(4, 4), std::string(4, '\0'));
  EXPECT_EQ(static_cast<unsigned char>(bytes[9]), 255);
}

TEST_F(LayerTest, EntriesAreSortedWithParentsRootOwnedAndFixedTime) {
  LayerOptions o;
  o.mtime = 42;
  Result<LayerBlob> blob = WriteLayer(Spec(), (dir_ / "l.tar.gz").string(), o);
  ASSERT_TRUE(blob.ok()) << blob.status().message();
  struct archive* a = archive_read_new();
  archive_read_support_filter_gzip(a);
  archive_read_support_format_tar(a);
  ASSERT_EQ(archive_read_open_filename(a, blob->path.c_str(), 10240), ARCHIVE_OK);
  std::vector<std::string> names;
  struct archive_entry* e;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    std::string name = archive_entry_pathname(e);
    names.push_back(name);
    EXPECT_EQ(archive_entry_mtime(e), 42) << name;
    EXPECT_EQ(archive_entry_uid(e), 0) << name;
    EXPECT_EQ(archive_entry_gid(e), 0) << name;
    const char* uname = archive_entry_uname(e);
    EXPECT_TRUE(uname == nullptr || *uname == '\0') << name << ": " << uname;
    if (name == "tmp/" || name == "tmp") {
      EXPECT_EQ(archive_entry_perm(e), 01777);
    }
    if (name == "usr/bin/tool") {
      EXPECT_EQ(archive_entry_perm(e), 0755);
    }
    if (name == "usr/lib/x86_64-linux-gnu/libz.so.1") {
      ASSERT_NE(archive_entry_hardlink(e), nullptr);
      EXPECT_STREQ(archive_entry_hardlink(e), "lib64/alias.so");
    }
    if (name == "lib64/alias.so" || name == "usr/lib/x86_64-linux-gnu/libz.so.1") {
      EXPECT_EQ(archive_entry_perm(e), 0755);  // the link carries its target's mode
    }
  }
  archive_read_free(a);
  std::vector<std::string> expected = {"etc",
                                       "etc/passwd",
                                       "lib64",
                                       "lib64/alias.so",
                                       "tmp",
                                       "usr",
                                       "usr/bin",
                                       "usr/bin/tool",
                                       "usr/lib",
                                       "usr/lib/x86_64-linux-gnu",
                                       "usr/lib/x86_64-linux-gnu/libz.so.1"};
  for (auto& n : names) {
    if (!n.empty() && n.back() == '/') n.pop_back();
  }
  EXPECT_EQ(names, expected);
  ASSERT_EQ(blob->files.size(), 4u);  // passwd, alias, tool, libz
  EXPECT_EQ(blob->files[1].sha256, blob->files[3].sha256);
  EXPECT_EQ(blob->files[0].sha256, Sha256Hex("root:x:0:0::/:/sbin/nologin\n"));
}

TEST_F(LayerTest, UnreadableSourceIsAnErrorAndNoBlobIsLeft) {
  LayerSpec s = Spec();
  s.entries[1].source = (dir_ / "src" / "missing.so").string();
  Result<LayerBlob> blob = WriteLayer(s, (dir_ / "x.tar.gz").string(), LayerOptions{});
  ASSERT_FALSE(blob.ok());
  EXPECT_NE(blob.status().message().find("missing.so: cannot be read"), std::string::npos) << blob.status().message();
  EXPECT_FALSE(fs::exists(dir_ / "x.tar.gz"));
}

TEST_F(LayerTest, BadPathsAndDuplicatesAreRefused) {
  LayerSpec s{"bad", {}};
  LayerEntry e;
  e.path = "/abs";
  e.content = "x";
  s.entries = {e};
  EXPECT_EQ(WriteLayer(s, (dir_ / "1.tar.gz").string(), LayerOptions{}).status().code(), StatusCode::kInvalidArgument);
  e.path = "dup";
  s.entries = {e, e};
  EXPECT_EQ(WriteLayer(s, (dir_ / "2.tar.gz").string(), LayerOptions{}).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(LayerTest, LongNamesAndLinksSurviveThroughPaxHeaders) {
  std::string deep;
  for (int i = 0; i < 12; ++i) deep += "directory-with-a-long-name-" + std::to_string(i) + "/";
  LayerSpec s{"long", {}};
  LayerEntry f;
  f.path = deep + std::string(120, 'f');
  f.content = "payload";
  LayerEntry l;
  l.kind = LayerEntry::Kind::kSymlink;
  l.path = "link";
  l.target = "/" + f.path;
  s.entries = {f, l};
  Result<LayerBlob> blob = WriteLayer(s, (dir_ / "long.tar.gz").string(), LayerOptions{});
  ASSERT_TRUE(blob.ok()) << blob.status().message();
  struct archive* a = archive_read_new();
  archive_read_support_filter_gzip(a);
  archive_read_support_format_tar(a);
  ASSERT_EQ(archive_read_open_filename(a, blob->path.c_str(), 10240), ARCHIVE_OK);
  struct archive_entry* e;
  bool saw_file = false, saw_link = false;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    std::string name = archive_entry_pathname(e);
    if (name == f.path) {
      saw_file = true;
      char buf[16] = {};
      EXPECT_EQ(archive_read_data(a, buf, sizeof buf), 7);
      EXPECT_STREQ(buf, "payload");
    }
    if (name == "link") {
      saw_link = true;
      EXPECT_EQ(std::string(archive_entry_symlink(e)), l.target);
    }
  }
  archive_read_free(a);
  EXPECT_TRUE(saw_file);
  EXPECT_TRUE(saw_link);
}

}  // namespace
}  // namespace berth
