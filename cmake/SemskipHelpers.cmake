# semskip_torch_target(<target>): compile and link a target against LibTorch (ATen).
function(semskip_torch_target target)
  target_link_libraries(${target} PUBLIC ${TORCH_LIBRARIES})
  target_compile_options(${target} PUBLIC ${SEMSKIP_TORCH_CXX_FLAGS})
  if(SEMSKIP_PCH)
    # ATen's headers dominate compile time; each Torch target precompiles them once.
    target_precompile_headers(${target} PRIVATE <ATen/ATen.h>)
  endif()
endfunction()

# semskip_add_test(<name> LABELS <labels...> SOURCES <files...> LIBS <targets...> [TIMEOUT s])
# One GoogleTest executable; each TEST becomes a CTest test carrying the labels.
function(semskip_add_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "LABELS;SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} GTest::gtest GTest::gtest_main)
  target_compile_definitions(${name} PRIVATE
    SEMSKIP_TEST_DATA="${PROJECT_SOURCE_DIR}/tests/data"
    SEMSKIP_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    SEMSKIP_BINARY_DIR="${PROJECT_BINARY_DIR}")
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  gtest_discover_tests(${name}
    PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT}
               ENVIRONMENT "OMP_NUM_THREADS=1"
    DISCOVERY_TIMEOUT 60)
endfunction()
