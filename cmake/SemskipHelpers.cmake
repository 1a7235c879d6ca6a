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

# semskip_cli_test(<name> RC <code|nonzero> REGEX <regex> [REJECT <regex>] [LABELS <labels...>]
#                  [TIMEOUT s] [WORKING_DIRECTORY dir] [PROPERTIES <prop value>...]
#                  COMMAND <program> [args...])
# A command-line test that checks both the exit status (RC: the exact code, or `nonzero`) and
# the output (REGEX must match stdout followed by stderr; REJECT, when given, must not). An
# uncaught exception ("terminate called") always fails the test. COMMAND comes last: every
# argument after it belongs to the command. Labels default to `unit`, the timeout to 120 s;
# OMP_NUM_THREADS=1 like the GoogleTest tests. (CMake lists: no ';' in REGEX or arguments.)
function(semskip_cli_test name)
  list(FIND ARGN COMMAND cmd_at)
  if(cmd_at LESS 0)
    message(FATAL_ERROR "semskip_cli_test(${name}): COMMAND is missing")
  endif()
  list(SUBLIST ARGN 0 ${cmd_at} opts)
  math(EXPR cmd_from "${cmd_at} + 1")
  list(SUBLIST ARGN ${cmd_from} -1 cmd)
  cmake_parse_arguments(ARG "" "RC;REGEX;REJECT;TIMEOUT;WORKING_DIRECTORY" "LABELS;PROPERTIES" ${opts})
  if(ARG_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "semskip_cli_test(${name}): unknown arguments ${ARG_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT DEFINED ARG_RC OR "${ARG_REGEX}" STREQUAL "" OR NOT cmd)
    message(FATAL_ERROR "semskip_cli_test(${name}): RC, REGEX and COMMAND are required")
  endif()
  if(NOT ARG_RC MATCHES "^([0-9]+|nonzero)$")
    message(FATAL_ERROR "semskip_cli_test(${name}): RC must be an exit code or `nonzero`, got '${ARG_RC}'")
  endif()
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 120)
  endif()
  set(reject "terminate called")
  if(NOT "${ARG_REJECT}" STREQUAL "")
    set(reject "${reject}|${ARG_REJECT}")
  endif()
  set(wd)
  if(ARG_WORKING_DIRECTORY)
    set(wd WORKING_DIRECTORY ${ARG_WORKING_DIRECTORY})
  endif()
  add_test(NAME ${name} ${wd}
    COMMAND ${CMAKE_COMMAND} -DEXPECT_RC=${ARG_RC} "-DEXPECT_REGEX=${ARG_REGEX}" "-DREJECT_REGEX=${reject}"
            -P ${PROJECT_SOURCE_DIR}/tests/cli_expect.cmake -- ${cmd})
  set_tests_properties(${name} PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT}
    ENVIRONMENT "OMP_NUM_THREADS=1" ${ARG_PROPERTIES})
endfunction()

# semskip_require_python_modules(<module>... FOR <what>): stops the configure step unless
# SEMSKIP_PYTHON3 imports every module, so that a test needing them can never be silently
# left out (scripts/install-deps.sh installs python3-h5py, python3-matplotlib, python3-numpy).
set(SEMSKIP_PYTHON3 /usr/bin/python3 CACHE FILEPATH "Python 3 with h5py, numpy and matplotlib, for the report tests")
# SEMSKIP_REQUIRE_PYTHON_MODULES=OFF (a build that runs only some test programs, such as the GPU
# machine's) turns the stop into a warning; the tests that need the modules would then fail.
option(SEMSKIP_REQUIRE_PYTHON_MODULES "Stop configuring when the report tests' Python modules are missing" ON)
function(semskip_require_python_modules)
  cmake_parse_arguments(ARG "" "FOR" "" ${ARGN})
  foreach(module IN LISTS ARG_UNPARSED_ARGUMENTS)
    if(NOT SEMSKIP_REQUIRE_PYTHON_MODULES)
      execute_process(COMMAND ${SEMSKIP_PYTHON3} -c "import ${module}" RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
      if(NOT rc EQUAL 0)
        message(WARNING "semskip: ${SEMSKIP_PYTHON3} cannot import '${module}'; ${ARG_FOR} will fail if run")
      endif()
      continue()
    endif()
    execute_process(COMMAND ${SEMSKIP_PYTHON3} -c "import ${module}" RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "semskip: ${SEMSKIP_PYTHON3} cannot import the Python module '${module}', needed by "
        "${ARG_FOR}. scripts/install-deps.sh installs it (Debian: python3-${module}); or point "
        "-DSEMSKIP_PYTHON3=<python> at a Python 3 that has it.")
    endif()
  endforeach()
endfunction()
