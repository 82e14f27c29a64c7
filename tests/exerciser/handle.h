// An open file on both sides: the zbudfs descriptor and the reference's, opened alike.
#ifndef ZBUDFS_TESTS_EXERCISER_HANDLE_H_
#define ZBUDFS_TESTS_EXERCISER_HANDLE_H_

#include <fcntl.h>

#include <cstdint>
#include <string>

namespace zbudfs::exerciser {

struct Handle {
  int z, r;
  int acc;  // O_RDONLY / O_WRONLY / O_RDWR.
  bool append;
  std::string name;  // The path it was opened by (the file may be renamed or unlinked since).
  uint64_t id;
};

// "h12(d0/f1,rw,app)": how the log names a handle.
std::string HName(const Handle& h);

inline bool Writable(const Handle& h) { return h.acc != O_RDONLY; }
inline bool Readable(const Handle& h) { return h.acc != O_WRONLY; }

}  // namespace zbudfs::exerciser

#endif  // ZBUDFS_TESTS_EXERCISER_HANDLE_H_
