// Tests of fs/options.cc: ParseSize, ParseCommandLine (every zbudfs option, its bounds, its
// one-line error message, the defaults), ValidateOptions and ParseRemount. No mount, no root.
// --help has option_table_test.cc.
#include "fs/options.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "store/page_store.h"

namespace zbudfs {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr uint64_t kKiB = uint64_t{1} << 10;
constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kGiB = uint64_t{1} << 30;
constexpr uint64_t kTiB = uint64_t{1} << 40;

// What ParseCommandLine made of one command line.
struct Parsed {
  bool ok = false;
  MountOptions opts;
  std::string error;
  std::vector<std::string> fuse_args;  // What is left for fuse_session_new().
};

// Parses "zbudfs" followed by args.
Parsed Parse(std::initializer_list<std::string> args) {
  std::vector<std::string> storage{"zbudfs"};
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& s : storage) argv.push_back(s.data());
  argv.push_back(nullptr);
  Parsed p;
  FuseArgs fuse_args(static_cast<int>(storage.size()), argv.data());
  p.ok = ParseCommandLine(&fuse_args, &p.opts, &p.error);
  for (int i = 0; i < fuse_args.get()->argc; ++i) p.fuse_args.push_back(fuse_args.get()->argv[i]);
  return p;
}

// Parses "-o OPT /mnt", expecting success.
MountOptions ParseOk(const std::string& opt) {
  Parsed p = Parse({"-o", opt, "/mnt"});
  EXPECT_TRUE(p.ok) << opt << ": " << p.error;
  EXPECT_EQ(p.error, "") << opt;
  return p.opts;
}

// Parses "-o OPT /mnt", expecting failure; returns the message.
std::string ParseError(const std::string& opt) {
  Parsed p = Parse({"-o", opt, "/mnt"});
  EXPECT_FALSE(p.ok) << opt;
  EXPECT_THAT(p.error, Not(HasSubstr("\n"))) << opt;  // One line.
  return p.error;
}

// The comma-separated -o list libfuse will see ("" if none).
std::string FuseOptions(const Parsed& p) {
  std::string all;
  for (size_t i = 0; i + 1 < p.fuse_args.size(); ++i) {
    if (p.fuse_args[i] == "-o") all += (all.empty() ? "" : ",") + p.fuse_args[i + 1];
  }
  return all;
}

// ---- ParseSize ---------------------------------------------------------------------------------

TEST(ParseSizeTest, PlainBytes) {
  EXPECT_EQ(ParseSize("0"), uint64_t{0});
  EXPECT_EQ(ParseSize("1"), uint64_t{1});
  EXPECT_EQ(ParseSize("4096"), uint64_t{4096});
  EXPECT_EQ(ParseSize("18446744073709551615"), UINT64_MAX);
}

TEST(ParseSizeTest, SuffixesArePowersOf1024EitherCase) {
  EXPECT_EQ(ParseSize("4k"), 4 * kKiB);
  EXPECT_EQ(ParseSize("4K"), 4 * kKiB);
  EXPECT_EQ(ParseSize("3m"), 3 * kMiB);
  EXPECT_EQ(ParseSize("3M"), 3 * kMiB);
  EXPECT_EQ(ParseSize("2g"), 2 * kGiB);
  EXPECT_EQ(ParseSize("2G"), 2 * kGiB);
  EXPECT_EQ(ParseSize("5t"), 5 * kTiB);
  EXPECT_EQ(ParseSize("5T"), 5 * kTiB);
  EXPECT_EQ(ParseSize("0K"), uint64_t{0});
}

TEST(ParseSizeTest, RejectsMalformed) {
  for (const char* bad : {"", "K", "M", "-1", "+1", " 1", "1 ", "1.5G", "1KB", "1P", "1e3", "0x10",
                          "abc", "12a4", "K1"}) {
    EXPECT_EQ(ParseSize(bad), std::nullopt) << "'" << bad << "'";
  }
}

TEST(ParseSizeTest, RejectsOverflow) {
  EXPECT_EQ(ParseSize("18446744073709551616"), std::nullopt);  // 2^64.
  EXPECT_EQ(ParseSize("16777216T"), std::nullopt);             // 2^24 TiB = 2^64.
  EXPECT_EQ(ParseSize("16777215T"), ((uint64_t{1} << 24) - 1) << 40);
  EXPECT_EQ(ParseSize("17179869184G"), std::nullopt);  // 2^34 GiB = 2^64.
  EXPECT_EQ(ParseSize("17592186044416M"), std::nullopt);
  EXPECT_EQ(ParseSize("18014398509481984K"), std::nullopt);
  EXPECT_EQ(ParseSize("18014398509481983K"), ((uint64_t{1} << 54) - 1) << 10);
}

// ---- Defaults ----------------------------------------------------------------------------------

TEST(ParseCommandLineTest, DefaultsFollowThisMachine) {
  Parsed p = Parse({"/mnt"});
  ASSERT_TRUE(p.ok) << p.error;
  const MountOptions& o = p.opts;
  const uint64_t ram = PhysicalMemory();
  EXPECT_EQ(o.mountpoint, "/mnt");
  EXPECT_EQ(o.size, std::max<uint64_t>(ram / 2 / 4096 * 4096, 4096));       // Half of RAM.
  EXPECT_EQ(o.mem_limit, std::max<uint64_t>(ram / 4 / 4096 * 4096, 4096));  // A quarter.
  EXPECT_EQ(o.overflow_limit, o.size);
  EXPECT_EQ(o.staging, std::min<uint64_t>(64 * kMiB, o.mem_limit / 8 / 4096 * 4096));
  EXPECT_EQ(o.overflow_dir, "");
  EXPECT_EQ(o.nr_inodes, std::max<uint64_t>(ram / 4096 / 2, 1024));
  const long cores = sysconf(_SC_NPROCESSORS_ONLN);
  EXPECT_EQ(o.max_threads, static_cast<unsigned>(std::clamp<long>(2 * cores, 4, 16)));
  EXPECT_EQ(o.zstd_level, PageStoreOptions{}.zstd_level);
  EXPECT_EQ(o.zstd_fast_level, std::optional<int>(PageStoreOptions{}.zstd_fast_level));
  EXPECT_FALSE(o.clone_fd);
  EXPECT_FALSE(o.foreground);
  EXPECT_FALSE(o.debug);
  EXPECT_FALSE(o.single_thread);
  EXPECT_FALSE(o.allow_other);
  EXPECT_FALSE(o.show_help);
  EXPECT_FALSE(o.show_version);
}

TEST(ParseCommandLineTest, AddsOurFuseDefaults) {
  Parsed p = Parse({"/mnt"});
  ASSERT_TRUE(p.ok) << p.error;
  EXPECT_EQ(FuseOptions(p), "fsname=zbudfs,subtype=zbudfs,default_permissions");
  EXPECT_THAT(p.fuse_args, Not(::testing::Contains("/mnt")));  // Consumed as mountpoint.
}

TEST(ParseCommandLineTest, UserFsnameAndSubtypeWin) {
  Parsed p = Parse({"-o", "fsname=mine,subtype=sub,default_permissions", "/mnt"});
  ASSERT_TRUE(p.ok) << p.error;
  std::string fuse = FuseOptions(p);
  EXPECT_THAT(fuse, HasSubstr("fsname=mine"));
  EXPECT_THAT(fuse, HasSubstr("subtype=sub"));
  EXPECT_THAT(fuse, Not(HasSubstr("fsname=zbudfs")));
  EXPECT_THAT(fuse, Not(HasSubstr("subtype=zbudfs")));
}

TEST(ParseCommandLineTest, UnknownDashOOptionIsLeftForLibfuse) {
  Parsed p = Parse({"-o", "ro,size=1M", "/mnt"});
  ASSERT_TRUE(p.ok) << p.error;
  EXPECT_EQ(p.opts.size, 1 * kMiB);
  std::string fuse = FuseOptions(p);
  EXPECT_THAT(fuse, HasSubstr("ro"));
  EXPECT_THAT(fuse, Not(HasSubstr("size=")));  // Ours are consumed.
}

TEST(ParseCommandLineTest, UnknownDashOptionIsAnError) {
  Parsed p = Parse({"-x", "/mnt"});
  EXPECT_FALSE(p.ok);
  EXPECT_EQ(p.error, "unknown option '-x' (try --help)");
}

TEST(ParseCommandLineTest, UnknownLongOptionIsAnError) {
  Parsed p = Parse({"--size=1M", "/mnt"});
  EXPECT_FALSE(p.ok);
  EXPECT_EQ(p.error, "unknown option '--size=1M' (try --help)");
}

TEST(ParseCommandLineTest, LastValueWins) {
  MountOptions o = ParseOk("size=1M,size=2M,zstd_fast=off,zstd_fast=2,max_threads=3,max_threads=5");
  EXPECT_EQ(o.size, 2 * kMiB);
  EXPECT_EQ(o.overflow_limit, 2 * kMiB);
  EXPECT_EQ(o.zstd_fast_level, std::optional<int>(2));
  EXPECT_EQ(o.max_threads, 5u);
}

TEST(ParseCommandLineTest, FlagWithAValueIsLeftForLibfuse) {
  Parsed p = Parse({"-o", "clone_fd=1", "/mnt"});
  ASSERT_TRUE(p.ok) << p.error;
  EXPECT_FALSE(p.opts.clone_fd);
  EXPECT_THAT(FuseOptions(p), HasSubstr("clone_fd=1"));  // fuse_session_new() rejects it.
}

TEST(ParseCommandLineTest, FuseOptionsGivenAreNotAddedAgain) {
  Parsed p = Parse({"-o", "default_permissions,fsname", "/mnt"});
  ASSERT_TRUE(p.ok) << p.error;  // A bare fsname is libfuse's to judge, not ours.
  EXPECT_EQ(FuseOptions(p), "fsname=zbudfs,subtype=zbudfs,default_permissions,fsname");
}

// ---- Flags and positionals ---------------------------------------------------------------------

TEST(ParseCommandLineTest, Flags) {
  Parsed p = Parse({"-f", "-s", "-o", "clone_fd,allow_other", "/mnt"});
  ASSERT_TRUE(p.ok) << p.error;
  EXPECT_TRUE(p.opts.foreground);
  EXPECT_TRUE(p.opts.single_thread);
  EXPECT_TRUE(p.opts.clone_fd);
  EXPECT_TRUE(p.opts.allow_other);
  EXPECT_FALSE(p.opts.debug);
  EXPECT_THAT(FuseOptions(p), HasSubstr("allow_other"));  // libfuse needs it too.
  EXPECT_THAT(FuseOptions(p), Not(HasSubstr("clone_fd")));
}

TEST(ParseCommandLineTest, DebugImpliesForeground) {
  for (const char* d : {"-d", "--debug"}) {
    Parsed p = Parse({d, "/mnt"});
    ASSERT_TRUE(p.ok) << d << ": " << p.error;
    EXPECT_TRUE(p.opts.debug) << d;
    EXPECT_TRUE(p.opts.foreground) << d;
  }
  Parsed p = Parse({"-o", "debug", "/mnt"});
  ASSERT_TRUE(p.ok) << p.error;
  EXPECT_TRUE(p.opts.debug);
  EXPECT_TRUE(p.opts.foreground);
}

TEST(ParseCommandLineTest, DebugIsLeftForLibfuse) {
  Parsed p = Parse({"-d", "-o", "debug", "/mnt"});
  ASSERT_TRUE(p.ok) << p.error;
  EXPECT_THAT(p.fuse_args, ::testing::Contains("-d"));
  EXPECT_THAT(FuseOptions(p), HasSubstr("debug"));
}

TEST(ParseCommandLineTest, HelpAndVersionSkipDefaults) {
  for (const char* h : {"-h", "--help"}) {
    Parsed p = Parse({h});
    ASSERT_TRUE(p.ok) << h << ": " << p.error;
    EXPECT_TRUE(p.opts.show_help) << h;
    EXPECT_EQ(p.opts.size, uint64_t{0}) << h;  // Not filled in: nothing will be mounted.
  }
  for (const char* v : {"-V", "--version"}) {
    Parsed p = Parse({v});
    ASSERT_TRUE(p.ok) << v << ": " << p.error;
    EXPECT_TRUE(p.opts.show_version) << v;
  }
}

TEST(ParseCommandLineTest, SourceAndMountpointLastWins) {
  Parsed p = Parse({"zbudfs", "/mnt/z"});  // The mount.fuse3 form: SOURCE MOUNTPOINT.
  ASSERT_TRUE(p.ok) << p.error;
  EXPECT_EQ(p.opts.mountpoint, "/mnt/z");
  EXPECT_EQ(p.opts.source, "zbudfs");
}

TEST(ParseCommandLineTest, SourceBecomesFsnameEscaped) {
  Parsed p = Parse({"ram,disk", "/mnt/z"});
  ASSERT_TRUE(p.ok) << p.error;
  EXPECT_EQ(p.opts.source, "ram,disk");
  EXPECT_THAT(FuseOptions(p), HasSubstr("fsname=ram\\,disk,"));
  Parsed given = Parse({"src", "/mnt/z", "-o", "fsname=mine"});
  ASSERT_TRUE(given.ok) << given.error;
  EXPECT_THAT(FuseOptions(given), Not(HasSubstr("fsname=src")));
}

TEST(ParseCommandLineTest, RemountKeepsTheOptionsGiven) {
  Parsed p = Parse({"zbudfs", "/mnt/z", "-o", "rw,remount,size=2G,user_id=0,nosuid,zstd_level=3"});
  ASSERT_TRUE(p.ok) << p.error;
  EXPECT_TRUE(p.opts.remount);
  EXPECT_THAT(p.opts.zbudfs_args, ElementsAre("size=2G", "zstd_level=3"));
  EXPECT_THAT(p.opts.other_args, ElementsAre("rw", "user_id=0", "nosuid"));
  // staging's default (from the default mem_limit) is not checked against a remount's values.
  Parsed tiny = Parse({"/mnt/z", "-o", "remount,mem_limit=64K"});
  ASSERT_TRUE(tiny.ok) << tiny.error;
  EXPECT_TRUE(ValidateOptions(tiny.opts, &tiny.error)) << tiny.error;
}

TEST(ParseCommandLineTest, ThreePositionalsAreTooMany) {
  Parsed p = Parse({"a", "b", "c"});
  EXPECT_FALSE(p.ok);
  EXPECT_EQ(p.error, "too many arguments: 'c' (try --help)");
}

TEST(ParseCommandLineTest, OptionGluedToDashO) {
  Parsed p = Parse({"-osize=8M,mem_limit=2M", "/mnt"});
  ASSERT_TRUE(p.ok) << p.error;
  EXPECT_EQ(p.opts.size, 8 * kMiB);
  EXPECT_EQ(p.opts.mem_limit, 2 * kMiB);
}

// ---- size= -------------------------------------------------------------------------------------

TEST(SizeOptionTest, SuffixesAndRoundingUpToPages) {
  EXPECT_EQ(ParseOk("size=4096").size, uint64_t{4096});
  EXPECT_EQ(ParseOk("size=4097").size, uint64_t{8192});
  EXPECT_EQ(ParseOk("size=10000").size, uint64_t{12288});
  EXPECT_EQ(ParseOk("size=64k").size, 64 * kKiB);
  EXPECT_EQ(ParseOk("size=512M").size, 512 * kMiB);
  EXPECT_EQ(ParseOk("size=3G").size, 3 * kGiB);
  EXPECT_EQ(ParseOk("size=2T").size, 2 * kTiB);
  EXPECT_EQ(ParseOk("size=4096T").size, uint64_t{1} << 52);  // 4P, the most.
}

TEST(SizeOptionTest, OverflowLimitDefaultsToSize) {
  MountOptions o = ParseOk("size=64M");
  EXPECT_EQ(o.overflow_limit, 64 * kMiB);
}

TEST(SizeOptionTest, Bad) {
  EXPECT_EQ(ParseError("size=0"),
            "invalid size for option size: '0' (must be at least 4096 bytes)");
  EXPECT_EQ(ParseError("size=4095"),
            "invalid size for option size: '4095' (must be at least 4096 bytes)");
  EXPECT_EQ(ParseError("size=4097T"), "invalid size for option size: '4097T' (must be at most 4P)");
  EXPECT_EQ(ParseError("size=16777216T"),
            "invalid size for option size: '16777216T' (expected a byte count with an optional "
            "K, M, G or T suffix)");
  for (const char* bad : {"size=", "size=1P", "size=-1", "size=1.5G", "size=abc"}) {
    EXPECT_THAT(ParseError(bad), HasSubstr("invalid size for option size: ")) << bad;
  }
  EXPECT_EQ(ParseError("size"), "option size needs a value (size=...)");
}

// ---- mem_limit= --------------------------------------------------------------------------------

TEST(MemLimitOptionTest, Good) {
  EXPECT_EQ(ParseOk("mem_limit=4096").mem_limit, uint64_t{4096});
  EXPECT_EQ(ParseOk("mem_limit=4097").mem_limit, uint64_t{4097});  // Not rounded.
  EXPECT_EQ(ParseOk("mem_limit=4M").mem_limit, 4 * kMiB);
  EXPECT_EQ(ParseOk("mem_limit=1g").mem_limit, kGiB);
}

TEST(MemLimitOptionTest, Bad) {
  EXPECT_EQ(ParseError("mem_limit=0"),
            "invalid size for option mem_limit: '0' (must be at least 4096 bytes)");
  EXPECT_EQ(ParseError("mem_limit=4095"),
            "invalid size for option mem_limit: '4095' (must be at least 4096 bytes)");
  EXPECT_EQ(ParseError("mem_limit=1X"),
            "invalid size for option mem_limit: '1X' (expected a byte count with an optional "
            "K, M, G or T suffix)");
  EXPECT_THAT(ParseError("mem_limit=99999999999999999999"),
              HasSubstr("invalid size for option mem_limit: "));
  EXPECT_EQ(ParseError("mem_limit"), "option mem_limit needs a value (mem_limit=...)");
}

// ---- staging= ---------------------------------------------------------------------------------

TEST(StagingOptionTest, FollowsMemLimitUnlessGiven) {
  EXPECT_EQ(ParseOk("mem_limit=8M").staging, 1 * kMiB);       // An eighth...
  EXPECT_EQ(ParseOk("mem_limit=4G").staging, 64 * kMiB);      // ...at most 64M.
  EXPECT_EQ(ParseOk("mem_limit=4097").staging, uint64_t{0});  // Under a page: off.
  EXPECT_EQ(ParseOk("mem_limit=8M,staging=0").staging, uint64_t{0});
  EXPECT_EQ(ParseOk("mem_limit=8M,staging=5000").staging, uint64_t{8192});  // Whole pages.
  EXPECT_EQ(ParseError("staging=1X"),
            "invalid size for option staging: '1X' (expected a byte count with an optional "
            "K, M, G or T suffix)");
}

TEST(StagingOptionTest, AtMostHalfOfMemLimit) {
  std::string error;
  Parsed p = Parse({"-o", "mem_limit=8M,staging=4M", "/mnt"});
  ASSERT_TRUE(p.ok) << p.error;
  EXPECT_TRUE(ValidateOptions(p.opts, &error)) << error;
  p = Parse({"-o", "mem_limit=8M,staging=5M", "/mnt"});
  ASSERT_TRUE(p.ok) << p.error;
  EXPECT_FALSE(ValidateOptions(p.opts, &error));
  EXPECT_EQ(error,
            "invalid value for option -o staging=SIZE: 5242880 bytes is more than half of "
            "mem_limit (8388608 bytes)");
}

// ---- cluster= and pack_after= ------------------------------------------------------------------

TEST(ClusterOptionTest, DefaultsAndGoodValues) {
  EXPECT_EQ(ParseOk("size=1M").cluster, 16 * 1024u);
  EXPECT_EQ(ParseOk("size=1M").pack_after, 30u);
  EXPECT_EQ(ParseOk("cluster=64K").cluster, 64 * 1024u);
  EXPECT_EQ(ParseOk("cluster=0").cluster, 0u);
  EXPECT_EQ(ParseOk("pack_after=0").pack_after, 0u);
  EXPECT_EQ(ParseOk("size=1M").pack_level, 6);
  EXPECT_EQ(ParseOk("pack_level=-5").pack_level, -5);
  EXPECT_EQ(ParseError("pack_after=-1"),
            "invalid value for option pack_after: '-1' (expected an integer from 0 to 86400)");
  EXPECT_THAT(ParseError("cluster=128K"), HasSubstr("invalid size for option cluster"));
}

TEST(ClusterOptionTest, PowerOfTwoFrom8K) {
  for (const char* bad : {"cluster=4K", "cluster=12K", "cluster=5000"}) {
    std::string error;
    Parsed p = Parse({"-o", bad, "/mnt"});
    ASSERT_TRUE(p.ok) << p.error;
    EXPECT_FALSE(ValidateOptions(p.opts, &error)) << bad;
    EXPECT_THAT(error, HasSubstr("expected 8K, 16K, 32K or 64K, or 0 for off")) << bad;
  }
  std::string error;
  Parsed p = Parse({"-o", "cluster=32K", "/mnt"});
  ASSERT_TRUE(p.ok) << p.error;
  EXPECT_TRUE(ValidateOptions(p.opts, &error)) << error;
}

// ---- overflow_limit= and overflow_dir= ---------------------------------------------------------

TEST(OverflowOptionTest, Good) {
  MountOptions o = ParseOk("size=1M,overflow_limit=8M,overflow_dir=/var/tmp/z");
  EXPECT_EQ(o.overflow_limit, 8 * kMiB);  // Given: not size.
  EXPECT_EQ(o.overflow_dir, "/var/tmp/z");
  EXPECT_EQ(ParseOk("overflow_limit=4k").overflow_limit, uint64_t{4096});
}

TEST(OverflowOptionTest, Bad) {
  // 0 would mean "unlimited" to the overflow store.
  EXPECT_EQ(ParseError("overflow_limit=0"),
            "invalid size for option overflow_limit: '0' (must be at least 4096 bytes)");
  EXPECT_EQ(ParseError("overflow_limit=1k"),
            "invalid size for option overflow_limit: '1k' (must be at least 4096 bytes)");
  EXPECT_THAT(ParseError("overflow_limit=lots"),
              HasSubstr("invalid size for option overflow_limit: 'lots'"));
  EXPECT_EQ(ParseError("overflow_dir="), "invalid value for option overflow_dir: empty path");
  EXPECT_EQ(ParseError("overflow_limit"),
            "option overflow_limit needs a value (overflow_limit=...)");
  EXPECT_EQ(ParseError("overflow_dir"), "option overflow_dir needs a value (overflow_dir=...)");
}

// ---- zstd_level= and zstd_fast= ----------------------------------------------------------------

TEST(ZstdOptionTest, LevelRange) {
  EXPECT_EQ(ParseOk("zstd_level=3").zstd_level, 3);
  EXPECT_EQ(ParseOk("zstd_level=-5").zstd_level, -5);
  const int lo = ZSTD_minCLevel(), hi = ZSTD_maxCLevel();
  EXPECT_EQ(ParseOk(std::string("zstd_level=") + std::to_string(lo)).zstd_level, lo);
  EXPECT_EQ(ParseOk(std::string("zstd_level=") + std::to_string(hi)).zstd_level, hi);
  const std::string range = std::string("(expected an integer from ") + std::to_string(lo) +
                            " to " + std::to_string(hi) + ")";
  EXPECT_EQ(ParseError(std::string("zstd_level=") + std::to_string(hi + 1)),
            std::string("invalid value for option zstd_level: '") + std::to_string(hi + 1) + "' " +
                range);
  EXPECT_EQ(ParseError(std::string("zstd_level=") + std::to_string(int64_t{lo} - 1)),
            std::string("invalid value for option zstd_level: '") +
                std::to_string(int64_t{lo} - 1) + "' " + range);
  for (const char* bad :
       {"zstd_level=", "zstd_level=x", "zstd_level=1x", "zstd_level=1.0", "zstd_level= 1"}) {
    EXPECT_THAT(ParseError(bad), HasSubstr("invalid value for option zstd_level: ")) << bad;
  }
  EXPECT_EQ(ParseError("zstd_level"), "option zstd_level needs a value (zstd_level=...)");
}

TEST(ZstdOptionTest, FastLevelAndOff) {
  EXPECT_EQ(ParseOk("zstd_fast=off").zstd_fast_level, std::nullopt);
  EXPECT_EQ(ParseOk("zstd_fast=2").zstd_fast_level, std::optional<int>(2));
  EXPECT_EQ(ParseOk("zstd_fast=-3").zstd_fast_level, std::optional<int>(-3));
  EXPECT_EQ(ParseOk("zstd_level=5,zstd_fast=off").zstd_level, 5);
  EXPECT_THAT(ParseError("zstd_fast=OFF"), HasSubstr("invalid value for option zstd_fast: 'OFF'"));
  EXPECT_THAT(ParseError("zstd_fast=on"), HasSubstr("invalid value for option zstd_fast: 'on'"));
  EXPECT_THAT(ParseError(std::string("zstd_fast=") + std::to_string(ZSTD_maxCLevel() + 1)),
              HasSubstr("invalid value for option zstd_fast: "));
  EXPECT_EQ(ParseError("zstd_fast"), "option zstd_fast needs a value (zstd_fast=...)");
  EXPECT_THAT(ParseError("zstd_fast=x"), HasSubstr(", or off)"));
}

// ---- nr_inodes= --------------------------------------------------------------------------------

TEST(NrInodesOptionTest, Good) {
  EXPECT_EQ(ParseOk("nr_inodes=0").nr_inodes, uint64_t{0});  // Unlimited.
  EXPECT_EQ(ParseOk("nr_inodes=1").nr_inodes, uint64_t{1});
  EXPECT_EQ(ParseOk("nr_inodes=100").nr_inodes, uint64_t{100});
  EXPECT_EQ(ParseOk("nr_inodes=2k").nr_inodes, uint64_t{2048});
  EXPECT_EQ(ParseOk("nr_inodes=1M").nr_inodes, kMiB);
}

TEST(NrInodesOptionTest, Bad) {
  EXPECT_EQ(ParseError("nr_inodes=many"),
            "invalid value for option nr_inodes: 'many' (expected a count with an optional K, M "
            "or G suffix; 0 = unlimited)");
  EXPECT_THAT(ParseError("nr_inodes="), HasSubstr("invalid value for option nr_inodes: ''"));
  EXPECT_THAT(ParseError("nr_inodes=-1"), HasSubstr("invalid value for option nr_inodes: '-1'"));
  EXPECT_EQ(ParseError("nr_inodes"), "option nr_inodes needs a value (nr_inodes=...)");
}

// ---- max_threads= ------------------------------------------------------------------------------

TEST(MaxThreadsOptionTest, Bounds) {
  EXPECT_EQ(ParseOk("max_threads=1").max_threads, 1u);
  EXPECT_EQ(ParseOk("max_threads=7").max_threads, 7u);
  EXPECT_EQ(ParseOk("max_threads=1024").max_threads, 1024u);
  EXPECT_EQ(ParseError("max_threads=0"),
            "invalid value for option max_threads: '0' (expected an integer from 1 to 1024)");
  EXPECT_EQ(ParseError("max_threads=1025"),
            "invalid value for option max_threads: '1025' (expected an integer from 1 to 1024)");
  for (const char* bad : {"max_threads=-1", "max_threads=", "max_threads=4k", "max_threads=two",
                          "max_threads=99999999999999999999999"}) {
    EXPECT_THAT(ParseError(bad), HasSubstr("invalid value for option max_threads: ")) << bad;
  }
  EXPECT_EQ(ParseError("max_threads"), "option max_threads needs a value (max_threads=...)");
}

// ---- ValidateOptions ---------------------------------------------------------------------------

TEST(ValidateOptionsTest, NeedsAMountpoint) {
  Parsed p = Parse({"-o", "size=1M"});
  ASSERT_TRUE(p.ok) << p.error;
  std::string error;
  EXPECT_FALSE(ValidateOptions(p.opts, &error));
  EXPECT_EQ(error, "no mountpoint given (try --help)");
}

TEST(ValidateOptionsTest, DefaultOverflowDirIsFine) {
  Parsed p = Parse({"/mnt"});
  ASSERT_TRUE(p.ok) << p.error;
  std::string error;
  EXPECT_TRUE(ValidateOptions(p.opts, &error)) << error;
}

// ---- ParseRemount ------------------------------------------------------------------------------

MountOptions Mounted() {
  MountOptions o = ParseOk("size=1G,mem_limit=512M,staging=16M");
  return o;
}

TEST(ParseRemountTest, ChangesWhatMayChangeAndIgnoresKernelFlags) {
  const MountOptions cur = Mounted();
  MountOptions next;
  std::string error;
  ASSERT_TRUE(
      ParseRemount("rw,relatime,remount,user_id=0,size=2G,mem_limit=1G,nr_inodes=10K,"
                   "zstd_level=7,zstd_fast=off,dev,suid",
                   cur, &next, &error))
      << error;
  EXPECT_EQ(next.size, 2 * kGiB);
  EXPECT_EQ(next.mem_limit, kGiB);
  EXPECT_EQ(next.nr_inodes, 10 * kKiB);
  EXPECT_EQ(next.zstd_level, 7);
  EXPECT_EQ(next.zstd_fast_level, std::nullopt);
  EXPECT_EQ(next.overflow_limit, 2 * kGiB) << "a default overflow_limit follows size";
  EXPECT_EQ(next.staging, cur.staging);
  EXPECT_FALSE(next.remount);
}

TEST(ParseRemountTest, LastValueWinsAndAGivenOverflowLimitStays) {
  MountOptions cur = Mounted();
  MountOptions next;
  std::string error;
  ASSERT_TRUE(ParseRemount("size=32M,size=64M,overflow_limit=8M", cur, &next, &error)) << error;
  EXPECT_EQ(next.size, 64 * kMiB);
  EXPECT_EQ(next.overflow_limit, 8 * kMiB);
  cur = next;
  ASSERT_TRUE(ParseRemount("size=128M", cur, &next, &error)) << error;
  EXPECT_EQ(next.overflow_limit, 8 * kMiB) << "an overflow_limit that is not size's stays";
}

TEST(ParseRemountTest, BadValuesAndFixedOptionsAreRefused) {
  const MountOptions cur = Mounted();
  MountOptions next;
  std::string error;
  EXPECT_FALSE(ParseRemount("size=banana", cur, &next, &error));
  EXPECT_THAT(error, HasSubstr("invalid size for option size: 'banana'"));
  EXPECT_FALSE(ParseRemount("size", cur, &next, &error));
  EXPECT_EQ(error, "option size needs a value (size=...)");
  for (const char* fixed : {"staging=1M", "overflow_dir=/tmp", "max_threads=99", "clone_fd",
                            "cluster=64K", "pack_after=99", "pack_level=9"}) {
    error.clear();
    EXPECT_FALSE(ParseRemount(fixed, cur, &next, &error)) << fixed;
    EXPECT_THAT(error, HasSubstr("cannot change on a mounted zbudfs")) << fixed;
  }
  // The same value again is no change (fstab lines repeat what the mount was given).
  EXPECT_TRUE(ParseRemount("staging=16M", cur, &next, &error)) << error;
  EXPECT_FALSE(ParseRemount("mem_limit=16M", cur, &next, &error));
  EXPECT_THAT(error, HasSubstr("16777216 bytes is below 33554432, twice staging (16777216"));
}

}  // namespace
}  // namespace zbudfs
