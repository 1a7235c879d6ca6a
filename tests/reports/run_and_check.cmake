# Runs a command and checks its exit status and output, for CLI tests that need both (a
# PASS_REGULAR_EXPRESSION alone would ignore the exit status).
#   -DCOMMAND=<program>|<arg>|...  the command, arguments separated by '|'
#   -DWORKDIR=<dir>                where to run it
#   -DEXPECT_RC=0|nonzero          expected exit status (default 0)
#   -DEXPECT_STDOUT=<file>         stdout must equal this file exactly
#   -DEXPECT_REGEX=<regex>         stdout+stderr must match
string(REPLACE "|" ";" cmd "${COMMAND}")
if(NOT WORKDIR)
  set(WORKDIR ".")
endif()
execute_process(COMMAND ${cmd} WORKING_DIRECTORY "${WORKDIR}"
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT DEFINED EXPECT_RC OR EXPECT_RC STREQUAL "0")
  if(NOT rc STREQUAL "0")
    message(FATAL_ERROR "exit status ${rc}, expected 0\nstdout:\n${out}\nstderr:\n${err}")
  endif()
elseif(rc STREQUAL "0" OR NOT rc MATCHES "^[0-9]+$")
  message(FATAL_ERROR "exit status '${rc}', expected a failure (non-zero)\nstdout:\n${out}\nstderr:\n${err}")
endif()
if(EXPECT_STDOUT)
  file(READ "${EXPECT_STDOUT}" want)
  if(NOT out STREQUAL want)
    file(WRITE "${WORKDIR}/actual_stdout.txt" "${out}")
    message(FATAL_ERROR "stdout differs from ${EXPECT_STDOUT} (actual output in ${WORKDIR}/actual_stdout.txt):\n${out}")
  endif()
endif()
if(EXPECT_REGEX AND NOT "${out}${err}" MATCHES "${EXPECT_REGEX}")
  message(FATAL_ERROR "output does not match '${EXPECT_REGEX}'\nstdout:\n${out}\nstderr:\n${err}")
endif()
