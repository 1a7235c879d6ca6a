# Registers the hardening tree's runs with the main tree's CTest (included from
# tests/bad_inputs/CMakeLists.txt). The tree itself (preset `asan`, build/asan) is built by
# scripts/bootstrap.sh and brought up to date by the fixture test `hardening.build`, so a plain
# `ctest --preset cpu` always runs the sanitised tests and fuzzers of the current sources.
#   asan.<suite>     the GoogleTest suites of core, tokenizer, workloads and the model parsers
#                    under ASan+UBSan (labels unit, asan)
#   fuzz.<target>    each libFuzzer target for SEMSKIP_FUZZ_SECONDS from its seed corpus
#                    (fuzz/corpus/<target>); a crash, sanitiser report, leak or abort fails it
#                    and leaves the input under the test's work folder (label fuzz)
# SEMSKIP_HARDENING_TESTS=OFF leaves them out (a build that runs only some test programs, such
# as the GPU machine's, which has no clang).
option(SEMSKIP_HARDENING_TESTS "Register the sanitised tests and fuzzers of the hardening tree" ON)
if(NOT SEMSKIP_HARDENING_TESTS)
  return()
endif()
set(SEMSKIP_FUZZ_SECONDS 45 CACHE STRING "Seconds each fuzzing target runs in the test suite")
set(_hardening_dir ${PROJECT_SOURCE_DIR}/build/asan)
find_program(SEMSKIP_CLANGXX clang++-14)
if(NOT SEMSKIP_CLANGXX)
  message(FATAL_ERROR "fuzz/ctest_tests.cmake: clang++-14 not found; scripts/install-deps.sh installs "
                      "clang-14 and libclang-rt-14-dev, which the sanitised tests and fuzzers need")
endif()

add_test(NAME hardening.build
  COMMAND sh -c "cd \"$1\" && { test -f build/asan/CMakeCache.txt || cmake --preset asan >/dev/null; } && cmake --build --preset asan"
          sh ${PROJECT_SOURCE_DIR})
set_tests_properties(hardening.build PROPERTIES LABELS "asan;fuzz" TIMEOUT 1800 FIXTURES_SETUP hardening_tree)

foreach(suite asan_core_tests asan_tokenizer_tests asan_workloads_tests asan_model_parsers_tests)
  string(REPLACE "asan_" "" short ${suite})
  add_test(NAME asan.${short} COMMAND ${_hardening_dir}/fuzz/${suite})
  set_tests_properties(asan.${short} PROPERTIES LABELS "unit;asan" TIMEOUT 600 FIXTURES_REQUIRED hardening_tree
    ENVIRONMENT "OMP_NUM_THREADS=1;ASAN_OPTIONS=detect_leaks=1:abort_on_error=0;UBSAN_OPTIONS=print_stacktrace=1")
endforeach()

foreach(target fuzz_safetensors_header fuzz_model_config fuzz_tokenizer fuzz_workload_lines fuzz_descriptors
               fuzz_run_toml)
  set(work ${CMAKE_CURRENT_BINARY_DIR}/fuzz_work/${target})
  add_test(NAME fuzz.${target}
    COMMAND sh -c "rm -rf \"$2\" && mkdir -p \"$2/corpus\" && cd \"$2\" && exec \"$1\" -max_total_time=$4 -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=\"$2/\" \"$2/corpus\" \"$3\""
            sh ${_hardening_dir}/fuzz/${target} ${work} ${PROJECT_SOURCE_DIR}/fuzz/corpus/${target} ${SEMSKIP_FUZZ_SECONDS})
  set_tests_properties(fuzz.${target} PROPERTIES LABELS "fuzz" TIMEOUT 600 FIXTURES_REQUIRED hardening_tree
    ENVIRONMENT "ASAN_OPTIONS=detect_leaks=1")
endforeach()
