// Tests of fs/option_table.cc's --help (HelpText): every option of the table has its entry,
// and each entry's text starts in column 27. Parsing (fs/options.cc) has options_test.cc.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>
#include <string>

#include "fs/options.h"

namespace zbudfs {
namespace {

using ::testing::HasSubstr;

// ---- HelpText ----------------------------------------------------------------------------------

TEST(HelpTextTest, NamesEveryOption) {
  const std::string help = HelpText("zbudfs");
  EXPECT_THAT(help, HasSubstr("usage: zbudfs "));
  for (const char* opt :
       {"size=", "mem_limit=", "overflow_dir=", "overflow_limit=", "staging=", "zstd_level=",
        "zstd_fast=", "nr_inodes=", "max_threads=", "clone_fd", "remount"}) {
    EXPECT_THAT(help, HasSubstr("-o " + std::string(opt))) << opt;
  }
}

TEST(HelpTextTest, OptionTextStartsInColumn27) {
  const std::string help = HelpText("zbudfs");
  const size_t begin = help.find("general options:\n");
  const size_t end = help.find("\nzbudfs always mounts");
  ASSERT_NE(begin, std::string::npos);
  ASSERT_NE(end, std::string::npos);
  std::istringstream lines(help.substr(begin, end - begin));
  int options = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line[0] != ' ') continue;  // A heading.
    ASSERT_GT(line.size(), 27u) << line;
    EXPECT_EQ(line.substr(26, 1), " ") << line;
    EXPECT_NE(line.substr(27, 1), " ") << line;
    if (line.compare(0, 5, "    -") == 0) {
      ++options;
    } else {
      EXPECT_EQ(line.substr(0, 27), std::string(27, ' ')) << line;  // A continuation.
    }
  }
  EXPECT_EQ(options, 20);  // -f, -d, -s, -h, -V and the fifteen -o options.
}

}  // namespace
}  // namespace zbudfs
