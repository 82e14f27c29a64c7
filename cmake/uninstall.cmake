# `cmake --build build --target uninstall`: removes every file the last `cmake --install`
# of this build directory wrote, as listed in its install_manifest.txt (with $DESTDIR put
# in front again if set, as for the install). Directories are left: the manifest does not
# say which ones the install created (bin/ and share/man/man8/ usually held other files).
# Usage: cmake -DMANIFEST=build/install_manifest.txt -P cmake/uninstall.cmake
if(NOT MANIFEST OR NOT EXISTS "${MANIFEST}")
  message(FATAL_ERROR "nothing to uninstall: no install manifest '${MANIFEST}' "
                      "(it is written by cmake --install)")
endif()
file(STRINGS "${MANIFEST}" files)
set(left "")
foreach(file IN LISTS files)
  set(path "$ENV{DESTDIR}${file}")
  if(IS_SYMLINK "${path}" OR EXISTS "${path}")
    message(STATUS "Uninstalling: ${path}")
    file(REMOVE "${path}")
    if(IS_SYMLINK "${path}" OR EXISTS "${path}")
      list(APPEND left "${path}")
    endif()
  else()
    message(STATUS "Not installed (already gone): ${path}")
  endif()
endforeach()
if(left)
  string(REPLACE ";" "\n  " left "${left}")
  message(FATAL_ERROR "could not remove:\n  ${left}")
endif()
