// One side's result of a system call (the value, and errno when it failed), and the text the
// exerciser prints for results and errno values.
#ifndef ZBUDFS_TESTS_EXERCISER_RESULT_H_
#define ZBUDFS_TESTS_EXERCISER_RESULT_H_

#include <cerrno>
#include <string>

namespace zbudfs::exerciser {

struct Res {
  long v;
  int err;
};

// Evaluates a call that returns a negative value on failure, capturing errno with it.
#define CALL(expr)                      \
  ([&]() -> Res {                       \
    errno = 0;                          \
    long r_ = static_cast<long>(expr);  \
    return Res{r_, r_ < 0 ? errno : 0}; \
  }())

// printf into a std::string (messages are short: at most 1023 bytes are kept).
std::string Fmt(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

// "ENOENT" for ENOENT, "OK" for 0, "errnoN" for the ones the exerciser does not expect.
std::string ErrName(int e);

// The value, or the errno's name when the call failed.
std::string Show(Res r);

}  // namespace zbudfs::exerciser

#endif  // ZBUDFS_TESTS_EXERCISER_RESULT_H_
