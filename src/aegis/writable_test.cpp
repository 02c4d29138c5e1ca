// why_unwritable: each way an output path can be unwritable is reported
// before the run, and a writable path is left exactly as it was.
#include "aegis/writable.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace {
namespace fs = std::filesystem;

class WritableTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "aegis-writable-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::size_t entries() const { return static_cast<std::size_t>(std::distance(fs::directory_iterator(dir_), fs::directory_iterator{})); }

  fs::path dir_;
};

TEST_F(WritableTest, NewFileInWritableDirectoryIsWritableAndNothingIsLeftBehind) {
  EXPECT_EQ(aegis::why_unwritable((dir_ / "out.json").string()), "");
  EXPECT_FALSE(fs::exists(dir_ / "out.json"));
  EXPECT_EQ(entries(), 0u);
}

TEST_F(WritableTest, ExistingFileKeepsItsContents) {
  const fs::path f = dir_ / "ledger.txt";
  std::ofstream(f) << "kept\n";
  EXPECT_EQ(aegis::why_unwritable(f.string()), "");
  std::ifstream in(f);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "kept");
  EXPECT_EQ(entries(), 1u);
}

TEST_F(WritableTest, MissingDirectory) {
  EXPECT_EQ(aegis::why_unwritable((dir_ / "nope" / "out.json").string()), "No such file or directory");
}

TEST_F(WritableTest, DirectoryIsNotAFile) {
  EXPECT_EQ(aegis::why_unwritable(dir_.string()), "it is a directory");
}

TEST_F(WritableTest, FifoWithoutReaderFailsInsteadOfHanging) {
  const fs::path f = dir_ / "fifo";
  ASSERT_EQ(::mkfifo(f.c_str(), 0600), 0);
  EXPECT_EQ(aegis::why_unwritable(f.string()), "No such device or address");
}

TEST_F(WritableTest, ReadOnlyMountIsRefusedEvenForRoot) {
  // access(2) says W_OK to root for any mode; /proc takes no new files.
  EXPECT_NE(aegis::why_unwritable("/proc/aegis-writable-test"), "");
}

TEST_F(WritableTest, RelativePathUsesTheCurrentDirectory) {
  const fs::path old = fs::current_path();
  fs::current_path(dir_);
  const std::string why = aegis::why_unwritable("out.json");
  fs::current_path(old);
  EXPECT_EQ(why, "");
  EXPECT_EQ(entries(), 0u);
}

TEST_F(WritableTest, EmptyPath) { EXPECT_EQ(aegis::why_unwritable(""), "empty path"); }

}  // namespace
