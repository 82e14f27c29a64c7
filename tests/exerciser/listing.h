// Directory listings as the exerciser compares them: sorted names without "." and "..".
#ifndef ZBUDFS_TESTS_EXERCISER_LISTING_H_
#define ZBUDFS_TESTS_EXERCISER_LISTING_H_

#include <string>
#include <utility>
#include <vector>

namespace zbudfs::exerciser {

// Sorted names of a directory, or the errno (and no names).
std::pair<int, std::vector<std::string>> List(const std::string& dir);

// The names separated by spaces.
std::string Join(const std::vector<std::string>& v);

}  // namespace zbudfs::exerciser

#endif  // ZBUDFS_TESTS_EXERCISER_LISTING_H_
