# `cmake --install`: the production offload path as a package a payment core
# can use with find_package(Aegis 1 REQUIRED) or pkg-config (docs/EMBEDDING.md).
#
# Installed (paths under the prefix; LIBDIR is lib, or lib/<multiarch> for /usr):
#   include/aegis/*.hpp               the production headers (aegis_offload's file set)
#   LIBDIR/libaegis_offload.a         the library
#   LIBDIR/cmake/Aegis/               AegisConfig.cmake, AegisConfigVersion.cmake,
#                                     AegisTargets*.cmake (aegis::offload), AegisSystemLibs.cmake
#   LIBDIR/pkgconfig/aegis.pc
#
# Nothing else: no simulator, tests, benchmarks, fuzzers, fixtures, test-side
# headers (the catalogues of testing/, the writer of tools/) or binaries.
# aegis-core stays in the build tree: it is the test and benchmark harness;
# examples/payment_core is the demo.
# scripts/test_install.py (ctest label `install`) checks exactly this list.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(AEGIS_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/Aegis)

install(TARGETS aegis_offload EXPORT AegisTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        FILE_SET HEADERS DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT AegisTargets NAMESPACE aegis:: DESTINATION ${AEGIS_INSTALL_CMAKEDIR})

configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/AegisConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/AegisConfig.cmake
                              INSTALL_DESTINATION ${AEGIS_INSTALL_CMAKEDIR})
# SameMajorVersion: a 1.x release keeps the C++ API of 1.0 (a core builds
# against it unchanged); a breaking change is 2.0. The wire protocol has its
# own version (docs/PROTOCOL.md), checked between core and bridge at run time.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/AegisConfigVersion.cmake
                                 VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/AegisConfig.cmake ${PROJECT_BINARY_DIR}/AegisConfigVersion.cmake
              ${CMAKE_CURRENT_LIST_DIR}/AegisSystemLibs.cmake
        DESTINATION ${AEGIS_INSTALL_CMAKEDIR})

# aegis.pc finds its prefix from its own directory, so the prefix given to
# `cmake --install --prefix` (not known at configure time) is the right one.
file(RELATIVE_PATH AEGIS_PC_PREFIX_FROM_PCDIR /${CMAKE_INSTALL_LIBDIR}/pkgconfig /)
string(REGEX REPLACE "/$" "" AEGIS_PC_PREFIX_FROM_PCDIR "${AEGIS_PC_PREFIX_FROM_PCDIR}")
set(AEGIS_PC_CFLAGS "")
set(AEGIS_PC_LIBS "")
if(AEGIS_FIU)
  set(AEGIS_PC_CFLAGS " -DFIU_ENABLE")
  set(AEGIS_PC_LIBS " -lfiu")
endif()
configure_file(${CMAKE_CURRENT_LIST_DIR}/aegis.pc.in ${PROJECT_BINARY_DIR}/aegis.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/aegis.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
