// The page: the unit the store indexes, compresses and allocates. A zbud pool page, an arena
// page, a codec frame's content and a file's page are all this size; nothing else names it.
#ifndef ZBUDFS_STORE_PAGE_SIZE_H_
#define ZBUDFS_STORE_PAGE_SIZE_H_

#include <cstddef>

namespace zbudfs {

inline constexpr size_t kPageSize = 4096;

}  // namespace zbudfs

#endif  // ZBUDFS_STORE_PAGE_SIZE_H_
