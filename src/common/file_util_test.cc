#include "common/file_util.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>

namespace berth {
namespace {

namespace fs = std::filesystem;

class FileUtilTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("berth_file_util_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& content) {
    std::ofstream(dir_ / name, std::ios::binary) << content;
    return (dir_ / name).string();
  }
  fs::path dir_;
};

TEST_F(FileUtilTest, ReadsARegularFile) {
  std::string path = Write("a.txt", std::string("one\0two", 7));
  auto r = ReadRegularFile(path, 100);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(*r, std::string("one\0two", 7));
  EXPECT_EQ(*ReadRegularFile(Write("empty", ""), 0), "");
}

TEST_F(FileUtilTest, MissingFileIsNotFound) {
  auto r = ReadRegularFile((dir_ / "nope").string(), 100);
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
}

TEST_F(FileUtilTest, FileOverTheLimitIsRefusedWithoutItsContents) {
  std::string path = Write("big", "SECRET-CONTENT-0123456789");
  auto r = ReadRegularFile(path, 10);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("larger than the limit of 10 bytes"), std::string::npos);
  EXPECT_EQ(r.status().message().find("SECRET"), std::string::npos);
  EXPECT_TRUE(ReadRegularFile(path, 25).ok());  // exactly at the limit
}

TEST_F(FileUtilTest, FifoIsRefusedAtOnce) {
  std::string path = (dir_ / "fifo").string();
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  auto t0 = std::chrono::steady_clock::now();
  auto r = ReadRegularFile(path, 100);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(1));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("FIFO"), std::string::npos) << r.status().message();
}

TEST_F(FileUtilTest, DevicesAndDirectoriesAreRefused) {
  auto zero = ReadRegularFile("/dev/zero", 1 << 20);
  ASSERT_FALSE(zero.ok());
  EXPECT_NE(zero.status().message().find("character device"), std::string::npos);
  fs::create_symlink("/dev/zero", dir_ / "model.yaml");
  EXPECT_FALSE(ReadRegularFile((dir_ / "model.yaml").string(), 1 << 20).ok());
  auto d = ReadRegularFile(dir_.string(), 1 << 20);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("a directory"), std::string::npos);
}

TEST_F(FileUtilTest, ErrnoStatusNamesTheCall) {
  Status s = ErrnoStatus(ENOENT, "x: cannot be read");
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "x: cannot be read: No such file or directory");
  EXPECT_EQ(ErrnoStatus(EACCES, "y").code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(ErrnoStatus(EIO, "z").code(), StatusCode::kFailedPrecondition);
}

TEST_F(FileUtilTest, AtomicWritesReplaceWholeOrNotAtAll) {
  std::string path = Write("out.json", "old");
  for (Durability d : {Durability::kReplaceOnly, Durability::kSynced}) {
    ASSERT_TRUE(WriteFileAtomically(path, "new content", d).ok());
    EXPECT_EQ(*ReadRegularFile(path, 100), "new content");
  }
  // A writer that fails leaves the old file and no temporary file behind.
  Status failed = WriteFileAtomically(
      path,
      [](const std::string& tmp) {
        std::ofstream(tmp) << "half";
        return Internal("disk full");
      },
      Durability::kSynced);
  EXPECT_EQ(failed.message(), "disk full");
  EXPECT_EQ(*ReadRegularFile(path, 100), "new content");
  size_t entries = 0;
  for (const auto& e : fs::directory_iterator(dir_)) entries += e.path().filename() == "out.json" ? 0 : 1;
  EXPECT_EQ(entries, 0u);
  EXPECT_FALSE(WriteFileAtomically((dir_ / "no" / "dir" / "x").string(), "x", Durability::kSynced).ok());
}

}  // namespace
}  // namespace berth
