// Status and StatusOr: errors as values across the store API.
//
// A Status is OK or an errno value (EINVAL, ENOSPC, ENOMEM, EIO, EAGAIN, ...) with an optional
// message. The FUSE daemon hands code() straight to fuse_reply_err(), so codes are positive
// errno numbers. Nothing in store/ throws across its API.
#ifndef ZBUDFS_STORE_STATUS_H_
#define ZBUDFS_STORE_STATUS_H_

#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace zbudfs {

class [[nodiscard]] Status {
 public:
  Status() = default;                                         // OK.
  static Status OK() { return Status(); }                     // OK.
  static Status Error(int code, std::string_view msg = {}) {  // code must be a positive errno.
    Status s;
    s.code_ = code > 0 ? code : EIO;
    s.msg_ = msg;
    return s;
  }

  bool ok() const { return code_ == 0; }               // True when no error.
  int code() const { return code_; }                   // 0 or a positive errno.
  const std::string& message() const { return msg_; }  // Extra context, may be empty.
  std::string ToString() const {                       // "OK" or "<strerror>: <message>".
    if (ok()) return "OK";
    std::string s = std::strerror(code_);
    if (!msg_.empty()) s += ": " + msg_;
    return s;
  }

 private:
  int code_ = 0;
  std::string msg_;
};

// A value or an error Status.
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design.
    if (status_.ok()) status_ = Status::Error(EINVAL, "StatusOr built from OK without value");
  }
  StatusOr(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design.

  bool ok() const { return status_.ok(); }          // True when a value is held.
  const Status& status() const { return status_; }  // OK or the error.
  const T& value() const& { return *value_; }       // Requires ok().
  T& value() & { return *value_; }                  // Requires ok().
  T&& value() && { return std::move(*value_); }     // Requires ok().
  const T& operator*() const& { return *value_; }
  T& operator*() & { return *value_; }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace zbudfs

#endif  // ZBUDFS_STORE_STATUS_H_
