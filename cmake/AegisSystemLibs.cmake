# Imported targets for the C libraries Aegis links that ship no CMake package.
# The build uses this file, and it is installed beside AegisConfig.cmake, so a
# project that finds the installed package resolves them the same way.
#
# Usage:
#   include(AegisSystemLibs)
#   aegis_import_system_library(xxhash xxhash.h xxhash)   # defines aegis::xxhash
#   if(NOT AEGIS_xxhash_FOUND) ... endif()
#
#   aegis::xxhash   libxxhash, the frame checksum (Debian: libxxhash-dev)
#   aegis::fiu      libfiu, fault sites as failpoints (Debian: libfiu-dev)

# Finds `header` and `library` and defines the imported target aegis::<name>;
# sets AEGIS_<name>_FOUND in the caller's scope.
function(aegis_import_system_library name header library)
  if(TARGET aegis::${name})
    set(AEGIS_${name}_FOUND TRUE PARENT_SCOPE)
    return()
  endif()
  find_path(AEGIS_${name}_INCLUDE_DIR ${header})
  find_library(AEGIS_${name}_LIBRARY ${library})
  if(NOT AEGIS_${name}_INCLUDE_DIR OR NOT AEGIS_${name}_LIBRARY)
    set(AEGIS_${name}_FOUND FALSE PARENT_SCOPE)
    return()
  endif()
  add_library(aegis::${name} UNKNOWN IMPORTED)
  set_target_properties(aegis::${name} PROPERTIES
                        IMPORTED_LOCATION "${AEGIS_${name}_LIBRARY}"
                        INTERFACE_INCLUDE_DIRECTORIES "${AEGIS_${name}_INCLUDE_DIR}")
  set(AEGIS_${name}_FOUND TRUE PARENT_SCOPE)
endfunction()
