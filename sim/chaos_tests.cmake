# Tests of `aegis-sim chaos`, included from sim/CMakeLists.txt.
if(AEGIS_BUILD_TESTS)
  add_executable(sim_chaos_test chaos_test.cpp)
  target_link_libraries(sim_chaos_test PRIVATE aegis_sim_chaos GTest::gtest_main)
  gtest_discover_tests(sim_chaos_test PROPERTIES LABELS sim DISCOVERY_TIMEOUT 60)

  set(_chaos_cli ${CMAKE_CURRENT_SOURCE_DIR}/chaos_cli_test.py)
  add_test(NAME sim_chaos_shards COMMAND /usr/bin/python3 ${_chaos_cli} $<TARGET_FILE:aegis-sim> shards)
  add_test(NAME sim_chaos_mutant_caught COMMAND /usr/bin/python3 ${_chaos_cli} $<TARGET_FILE:aegis-sim> mutant skip_drop_count)
  # A mutant in the Python bridge's protocol handling: chaos runs the real bridge, catches it, shrinks it to a
  # replay line with the python bridge.
  add_test(NAME sim_chaos_bridge_mutant_caught
           COMMAND /usr/bin/python3 ${_chaos_cli} $<TARGET_FILE:aegis-sim> mutant wrong_seq_on_resend)
  # The workflow and Kubernetes files use only flags aegis-sim really has.
  add_test(NAME chaos_deploy_files_use_real_flags
           COMMAND /usr/bin/python3 ${PROJECT_SOURCE_DIR}/deploy/check_deploy_files.py $<TARGET_FILE:aegis-sim> $<TARGET_FILE:aegis-core>)
  # Deferred to the end of the directory: a directory-wide set_tests_properties
  # later in sim/CMakeLists.txt would otherwise overwrite these labels.
  cmake_language(DEFER CALL set_tests_properties sim_chaos_shards chaos_deploy_files_use_real_flags
                 PROPERTIES LABELS sim TIMEOUT 300)
  cmake_language(DEFER CALL set_tests_properties sim_chaos_mutant_caught sim_chaos_bridge_mutant_caught
                 PROPERTIES LABELS "sim;mutant" TIMEOUT 300 SKIP_RETURN_CODE 77)
endif()
