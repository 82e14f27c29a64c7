#include "tests/exerciser/handle.h"

#include "tests/exerciser/result.h"

namespace zbudfs::exerciser {

std::string HName(const Handle& h) {
  return Fmt("h%llu(%s%s%s)", static_cast<unsigned long long>(h.id), h.name.c_str(),
             h.acc == O_RDONLY   ? ",ro"
             : h.acc == O_WRONLY ? ",wo"
                                 : ",rw",
             h.append ? ",app" : "");
}

}  // namespace zbudfs::exerciser
