// Reading the kernel's xattr form of an access ACL (see posix_acl.h).
#include "fs/posix_acl.h"

#include <bit>
#include <cstdint>
#include <cstring>

namespace zbudfs {
namespace {

// <linux/posix_acl_xattr.h> and <linux/posix_acl.h>: little-endian on the wire, which is
// this host's order on every architecture FUSE runs zbudfs on (checked below).
constexpr uint32_t kXattrVersion = 2;
constexpr uint16_t kUserObj = 0x01, kUser = 0x02, kGroupObj = 0x04, kGroup = 0x08, kMask = 0x10,
                   kOther = 0x20;
constexpr size_t kHeaderSize = 4, kEntrySize = 8;
static_assert(std::endian::native == std::endian::little, "ACL xattrs are little-endian");

template <typename T>
T Load(std::string_view value, size_t at) {
  T v;
  std::memcpy(&v, value.data() + at, sizeof(v));
  return v;
}

}  // namespace

AclKind ParseAccessAcl(std::string_view value, mode_t* mode) {
  if (value.size() < kHeaderSize || (value.size() - kHeaderSize) % kEntrySize != 0 ||
      Load<uint32_t>(value, 0) != kXattrVersion) {
    return AclKind::kMalformed;
  }
  mode_t bits = 0;
  unsigned seen = 0;  // Tags met, each of the three base ones once.
  bool extended = false;
  for (size_t at = kHeaderSize; at < value.size(); at += kEntrySize) {
    const uint16_t tag = Load<uint16_t>(value, at), perm = Load<uint16_t>(value, at + 2);
    if (perm & ~7u) return AclKind::kMalformed;
    if (tag == kUser || tag == kGroup || tag == kMask) {
      extended = true;
      continue;
    }
    const int shift = tag == kUserObj ? 6 : tag == kGroupObj ? 3 : tag == kOther ? 0 : -1;
    if (shift < 0 || (seen & tag) != 0) return AclKind::kMalformed;  // Unknown or twice.
    seen |= tag;
    bits |= static_cast<mode_t>(perm) << shift;
  }
  if (seen != (kUserObj | kGroupObj | kOther)) return AclKind::kMalformed;
  if (extended) return AclKind::kExtended;
  *mode = bits;
  return AclKind::kMode;
}

}  // namespace zbudfs
