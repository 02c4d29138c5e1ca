# Layering the build enforces (docs/LAYERS.md).
#
# aegis_prefixed_include_root(<target>): lets targets that link <target>
# include the calling directory's headers by its name ("sim/world.hpp")
# without seeing the rest of the repository. The include root is a directory
# in the build tree holding one symbolic link, <name> -> the source
# directory, so no target ever needs the repository root on its include path.
#
# aegis_check_layers(): runs scripts/check_layers.py at configure time and
# stops the configure on a violation; ctest runs the same check as
# `check_layers` (label lint), which also catches an include added since.

function(aegis_prefixed_include_root target)
  get_filename_component(name ${CMAKE_CURRENT_SOURCE_DIR} NAME)
  set(root ${PROJECT_BINARY_DIR}/include_roots/${name})
  file(MAKE_DIRECTORY ${root})
  # Made again at every configure, so a moved source tree gets a fresh link.
  file(CREATE_LINK ${CMAKE_CURRENT_SOURCE_DIR} ${root}/${name} SYMBOLIC)
  target_include_directories(${target} INTERFACE ${root})
endfunction()

function(aegis_check_layers)
  set(script ${PROJECT_SOURCE_DIR}/scripts/check_layers.py)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${script})
  execute_process(COMMAND /usr/bin/python3 ${script} --root ${PROJECT_SOURCE_DIR}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "Layering violation (docs/LAYERS.md):\n${out}")
  endif()
endfunction()
