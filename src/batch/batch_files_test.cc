#include "batch/batch_files.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

namespace berth {
namespace {

std::string TempDir() {
  char name[] = "/tmp/berth_files_XXXXXX";
  return mkdtemp(name);
}

TEST(Checkpoint, RoundTrips) {
  Checkpoint c{"fp", 123, 7, 10, 8, 2, 456, 78};
  auto back = CheckpointFromJson(CheckpointToJson(c), "ckpt");
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->fingerprint, "fp");
  EXPECT_EQ(back->input_offset, 123u);
  EXPECT_EQ(back->input_line, 7);
  EXPECT_EQ(back->rows_written, 8);
  EXPECT_EQ(back->rejects_bytes, 78u);
  c.rows_read = 11;  // counts that do not add up
  EXPECT_FALSE(CheckpointFromJson(CheckpointToJson(c), "ckpt").ok());
  EXPECT_FALSE(CheckpointFromJson("{", "ckpt").ok());
}

TEST(PartialFile, ResumeCutsBackAndCommitRenames) {
  std::string dir = TempDir();
  std::string path = dir + "/out.csv";
  {
    auto f = PartialFile::Open(path, false, 0);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE((*f)->Append("header\nrow1\nrow2-not-checkpointed\n").ok());
  }
  auto f = PartialFile::Open(path, true, 12);  // "header\nrow1\n"
  ASSERT_TRUE(f.ok()) << f.status().message();
  ASSERT_TRUE((*f)->Append("row2\n").ok());
  ASSERT_TRUE((*f)->Commit().ok());
  auto text = ReadRegularFile(path, 1 << 20);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "header\nrow1\nrow2\n");
  EXPECT_FALSE(std::filesystem::exists(path + ".partial"));
  std::filesystem::remove_all(dir);
}

TEST(PartialFile, ResumeAfterAKillBetweenRenameAndCheckpointRemoval) {
  std::string dir = TempDir();
  std::string path = dir + "/out.csv";
  {
    auto f = PartialFile::Open(path, false, 0);
    ASSERT_TRUE((*f)->Append("header\nrow1\n").ok());
    ASSERT_TRUE((*f)->Commit().ok());  // renamed; the checkpoint would still be there
  }
  auto f = PartialFile::Open(path, true, 12);
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ((*f)->size(), 12u);
  ASSERT_TRUE((*f)->Commit().ok());
  EXPECT_EQ(*ReadRegularFile(path, 1 << 20), "header\nrow1\n");
  // Missing both: a clear error.
  EXPECT_FALSE(PartialFile::Open(dir + "/other.csv", true, 5).ok());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace berth
