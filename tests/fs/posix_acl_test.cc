// Tests of fs/posix_acl.cc: which access ACLs are a mode, which need stored ACLs, which are
// not ACLs at all.
#include "fs/posix_acl.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

namespace zbudfs {
namespace {

// The kernel's xattr form: version 2, then {tag, perm, id} little-endian entries.
std::string Acl(const std::vector<std::pair<uint16_t, uint16_t>>& entries, uint32_t version = 2) {
  std::string out(4 + 8 * entries.size(), '\0');
  std::memcpy(out.data(), &version, 4);
  size_t at = 4;
  for (const auto& [tag, perm] : entries) {
    const uint32_t id = tag == 0x02 || tag == 0x08 ? 1000 : 0xffffffff;
    std::memcpy(out.data() + at, &tag, 2);
    std::memcpy(out.data() + at + 2, &perm, 2);
    std::memcpy(out.data() + at + 4, &id, 4);
    at += 8;
  }
  return out;
}

constexpr uint16_t kUserObj = 0x01, kUser = 0x02, kGroupObj = 0x04, kGroup = 0x08, kMask = 0x10,
                   kOther = 0x20;

TEST(PosixAclTest, TheThreeBaseEntriesAreTheirMode) {
  mode_t mode = 0;
  EXPECT_EQ(ParseAccessAcl(Acl({{kUserObj, 7}, {kGroupObj, 5}, {kOther, 4}}), &mode),
            AclKind::kMode);
  EXPECT_EQ(mode, 0754u);
  EXPECT_EQ(ParseAccessAcl(Acl({{kUserObj, 0}, {kGroupObj, 0}, {kOther, 0}}), &mode),
            AclKind::kMode);
  EXPECT_EQ(mode, 0u);
  EXPECT_EQ(ParseAccessAcl(Acl({{kUserObj, 6}, {kGroupObj, 2}, {kOther, 1}}), &mode),
            AclKind::kMode);
  EXPECT_EQ(mode, 0621u);
}

TEST(PosixAclTest, NamedEntriesOrAMaskAreExtended) {
  mode_t mode = 0777;
  EXPECT_EQ(ParseAccessAcl(
                Acl({{kUserObj, 7}, {kUser, 4}, {kGroupObj, 5}, {kMask, 5}, {kOther, 4}}), &mode),
            AclKind::kExtended);
  EXPECT_EQ(ParseAccessAcl(
                Acl({{kUserObj, 7}, {kGroupObj, 5}, {kGroup, 1}, {kMask, 5}, {kOther, 4}}), &mode),
            AclKind::kExtended);
  // A mask alone still changes what group:: grants: not a plain mode.
  EXPECT_EQ(ParseAccessAcl(Acl({{kUserObj, 7}, {kGroupObj, 7}, {kMask, 5}, {kOther, 4}}), &mode),
            AclKind::kExtended);
  EXPECT_EQ(mode, 0777u) << "left alone when not a mode";
}

TEST(PosixAclTest, WhatIsNotAnAclIsMalformed) {
  mode_t mode = 0;
  EXPECT_EQ(ParseAccessAcl("", &mode), AclKind::kMalformed);
  EXPECT_EQ(ParseAccessAcl(Acl({}), &mode), AclKind::kMalformed) << "no entries";
  EXPECT_EQ(ParseAccessAcl(Acl({{kUserObj, 7}, {kGroupObj, 5}, {kOther, 4}}, 1), &mode),
            AclKind::kMalformed)
      << "version 1";
  std::string cut = Acl({{kUserObj, 7}, {kGroupObj, 5}, {kOther, 4}});
  cut.pop_back();
  EXPECT_EQ(ParseAccessAcl(cut, &mode), AclKind::kMalformed) << "a partial entry";
  EXPECT_EQ(ParseAccessAcl(Acl({{kUserObj, 7}, {kGroupObj, 5}}), &mode), AclKind::kMalformed)
      << "no other::";
  EXPECT_EQ(ParseAccessAcl(Acl({{kUserObj, 7}, {kUserObj, 5}, {kGroupObj, 5}, {kOther, 4}}), &mode),
            AclKind::kMalformed)
      << "user:: twice";
  EXPECT_EQ(ParseAccessAcl(Acl({{kUserObj, 8}, {kGroupObj, 5}, {kOther, 4}}), &mode),
            AclKind::kMalformed)
      << "a permission beyond rwx";
  EXPECT_EQ(ParseAccessAcl(Acl({{kUserObj, 7}, {0x40, 5}, {kGroupObj, 5}, {kOther, 4}}), &mode),
            AclKind::kMalformed)
      << "an unknown tag";
}

}  // namespace
}  // namespace zbudfs
