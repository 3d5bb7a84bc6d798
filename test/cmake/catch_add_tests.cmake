# Replaces Catch2 v2's CatchAddTests.cmake (run by catch_discover_tests after
# each build): one CTest test per Catch2 test case, whatever its name holds.
#
# Catch2's own script turns the binary's `--list-test-names-only` output into a
# CMake list, so a name with ';' became two tests that matched nothing and
# passed. Here the output is cut at newlines with string(FIND), never through a
# list, every name reaches add_test() as one bracket argument, and the case is
# selected by its name with each character Catch2's test-spec parser treats
# specially escaped by '\'. `--warn NoTests` makes a filter that selects nothing
# a failure, and scripts/test compares the count CTest ran with Catch2's list.
#
# Inputs (set by Catch.cmake): TEST_EXECUTABLE, TEST_EXECUTOR, TEST_WORKING_DIR,
# TEST_PREFIX, TEST_SUFFIX, TEST_EXTRA_ARGS, TEST_PROPERTIES, TEST_LIST, CTEST_FILE.

if(NOT EXISTS "${TEST_EXECUTABLE}")
  message(FATAL_ERROR "no test executable '${TEST_EXECUTABLE}'")
endif()
execute_process(
  COMMAND ${TEST_EXECUTOR} "${TEST_EXECUTABLE}" --list-test-names-only
  OUTPUT_VARIABLE output
  RESULT_VARIABLE result
  WORKING_DIRECTORY "${TEST_WORKING_DIR}")
# Catch2 v2 exits with the number of test cases it listed.
if(result LESS_EQUAL 0)
  message(FATAL_ERROR "'${TEST_EXECUTABLE}' listed no test cases (exit ${result}):\n${output}")
endif()

# A bracket argument holds any text but its own closing bracket.
function(bracket out text)
  set(eq "=")
  while(text MATCHES "]${eq}]")
    string(APPEND eq "=")
  endwhile()
  set(${out} "[${eq}[${text}]${eq}]" PARENT_SCOPE)
endfunction()

set(extra "")
foreach(arg IN LISTS TEST_EXTRA_ARGS)
  bracket(b "${arg}")
  string(APPEND extra " ${b}")
endforeach()
set(props "")
foreach(prop IN LISTS TEST_PROPERTIES)
  bracket(b "${prop}")
  string(APPEND props " ${b}")
endforeach()

set(script "")
while(NOT output STREQUAL "")
  string(FIND "${output}" "\n" nl)
  if(nl EQUAL -1)
    set(line "${output}")
    set(output "")
  else()
    string(SUBSTRING "${output}" 0 ${nl} line)
    math(EXPR nl "${nl} + 1")
    string(SUBSTRING "${output}" ${nl} -1 output)
  endif()
  string(REGEX REPLACE "\r$" "" line "${line}")
  if(line STREQUAL "")
    continue()
  endif()
  # Catch2's test spec: '\' escapes the next character; ',', '[', ']', '"',
  # '~' and '*' mean something unescaped.
  set(spec "")
  string(LENGTH "${line}" len)
  math(EXPR last "${len} - 1")
  foreach(i RANGE 0 ${last})
    string(SUBSTRING "${line}" ${i} 1 c)
    if(c MATCHES "[],[\"~*\\\\]")
      string(APPEND spec "\\")
    endif()
    string(APPEND spec "${c}")
  endforeach()
  bracket(name "${TEST_PREFIX}${line}${TEST_SUFFIX}")
  bracket(exe "${TEST_EXECUTABLE}")
  bracket(filter "${spec}")
  bracket(dir "${TEST_WORKING_DIR}")
  string(APPEND script "add_test(${name} ${TEST_EXECUTOR} ${exe} ${filter}${extra})\n")
  string(APPEND script "set_tests_properties(${name} PROPERTIES WORKING_DIRECTORY ${dir}${props})\n")
endwhile()
file(WRITE "${CTEST_FILE}" "${script}")
