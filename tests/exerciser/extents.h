// What SEEK_DATA/SEEK_HOLE say a file holds, and whether the reference reads as zeros over a
// range: the tools for comparing sparse files without reading their holes.
#ifndef ZBUDFS_TESTS_EXERCISER_EXTENTS_H_
#define ZBUDFS_TESTS_EXERCISER_EXTENTS_H_

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

namespace zbudfs::exerciser {

// Data extents [start, end) of fd by SEEK_DATA/SEEK_HOLE, up to size. The file position is
// restored.
std::vector<std::pair<uint64_t, uint64_t>> Extents(int fd, uint64_t size);

// True when the reference reads as zeros over [a, b); nullopt when finding out would mean
// reading more than 4 MiB of the reference's data.
std::optional<bool> RefZeros(int rfd, uint64_t a, uint64_t b);

}  // namespace zbudfs::exerciser

#endif  // ZBUDFS_TESTS_EXERCISER_EXTENTS_H_
