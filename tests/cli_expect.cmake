# Runs one command and checks its exit status AND its output (semskip_cli_test in
# cmake/SemskipHelpers.cmake registers tests that run it):
#   cmake -DEXPECT_RC=<code|nonzero> -DEXPECT_REGEX=<regex> [-DREJECT_REGEX=<regex>]
#         -P cli_expect.cmake -- <program> [args...]
# EXPECT_RC: the exact exit status, or `nonzero` for any failure exit (a crash or a signal,
# which execute_process reports as text, never counts as the expected failure).
# EXPECT_REGEX must match stdout followed by stderr (so `^` anchors at the start of stdout);
# REJECT_REGEX, when given, must not match it. Everything after `--` is the command, passed on
# untouched (so options such as --help reach the program, not cmake).
set(cmd)
set(seen_separator FALSE)
math(EXPR last "${CMAKE_ARGC} - 1")
foreach(i RANGE ${last})
  if(seen_separator)
    list(APPEND cmd "${CMAKE_ARGV${i}}")
  elseif(CMAKE_ARGV${i} STREQUAL "--")
    set(seen_separator TRUE)
  endif()
endforeach()
if(NOT cmd)
  message(FATAL_ERROR "cli_expect.cmake: no command after --")
endif()
if(NOT DEFINED EXPECT_RC OR EXPECT_RC STREQUAL "")
  message(FATAL_ERROR "cli_expect.cmake: EXPECT_RC is not set")
endif()
if(NOT DEFINED EXPECT_REGEX OR EXPECT_REGEX STREQUAL "")
  message(FATAL_ERROR "cli_expect.cmake: EXPECT_REGEX is not set (every CLI test checks the output)")
endif()

execute_process(COMMAND ${cmd} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
set(all "${out}${err}")
string(JOIN " " shown ${cmd})
set(report "command: ${shown}\nexit status: ${rc}\n--- stdout\n${out}\n--- stderr\n${err}")

if(EXPECT_RC STREQUAL "nonzero")
  if(rc STREQUAL "0" OR NOT rc MATCHES "^[0-9]+$")
    message(FATAL_ERROR "exit status '${rc}', expected a failure exit (non-zero)\n${report}")
  endif()
elseif(NOT rc STREQUAL "${EXPECT_RC}")
  message(FATAL_ERROR "exit status '${rc}', expected ${EXPECT_RC}\n${report}")
endif()
if(NOT all MATCHES "${EXPECT_REGEX}")
  message(FATAL_ERROR "output does not match: ${EXPECT_REGEX}\n${report}")
endif()
if(DEFINED REJECT_REGEX AND NOT REJECT_REGEX STREQUAL "" AND all MATCHES "${REJECT_REGEX}")
  message(FATAL_ERROR "output matches what it must not: ${REJECT_REGEX}\n${report}")
endif()
message("${report}")
