#include "batch/checkpointer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "common/file_util.h"

namespace berth {
namespace {

namespace fs = std::filesystem;

TEST(CheckpointerTest, AKilledRunResumesFromItsLastCheckpoint) {
  fs::path dir = fs::temp_directory_path() / ("berth_ckpt_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  Checkpointer::Options o;
  o.out = (dir / "out.csv").string();
  o.rejects = (dir / "out.rejects.csv").string();
  o.fingerprint = "input A";
  o.every_rows = 2;
  o.every_secs = 3600;
  {
    auto c = Checkpointer::Start(o, "y\n", "line,reason,record\n", 10, 2);
    ASSERT_TRUE(c.ok()) << c.status().message();
    ASSERT_TRUE((*c)->Append("1\n", "").ok());
    ASSERT_TRUE((*c)->Advance(20, 3, 1, 1, 0).ok());  // not due yet: 1 row
    EXPECT_EQ((*c)->last().rows_read, 0);
    ASSERT_TRUE((*c)->Append("2\n", "4,bad,x\n").ok());
    ASSERT_TRUE((*c)->Advance(30, 5, 3, 2, 1).ok());  // due: 3 rows since
    EXPECT_EQ((*c)->last().input_offset, 30u);
    ASSERT_TRUE((*c)->Append("3-not-checkpointed\n", "").ok());
    // killed here: no Commit
  }
  auto loaded = Checkpointer::Load(o);
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  ASSERT_TRUE(loaded->has_value());
  EXPECT_EQ((*loaded)->rows_written, 2);
  EXPECT_EQ((*loaded)->out_bytes, 6u);  // "y\n1\n2\n"
  auto resumed = Checkpointer::Resume(o, **loaded);
  ASSERT_TRUE(resumed.ok());
  ASSERT_TRUE((*resumed)->Append("3\n", "").ok());
  ASSERT_TRUE((*resumed)->Advance(40, 6, 4, 3, 1).ok());
  ASSERT_TRUE((*resumed)->Commit().ok());
  EXPECT_EQ(*ReadRegularFile(o.out, 100), "y\n1\n2\n3\n");
  EXPECT_EQ(*ReadRegularFile(o.rejects, 100), "line,reason,record\n4,bad,x\n");
  EXPECT_FALSE(fs::exists(o.out + ".checkpoint"));
  EXPECT_FALSE(Checkpointer::Load(o)->has_value());

  // A checkpoint of another input is refused, naming both.
  auto again = Checkpointer::Start(o, "y\n", "r\n", 0, 1);
  ASSERT_TRUE((*again)->Flush().ok());
  o.fingerprint = "input B";
  auto other = Checkpointer::Load(o);
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.status().message().find("made for another input"), std::string::npos);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace berth
