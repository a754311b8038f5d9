# cmake -DPROGRAM=EXE -DARGS="ARG..." -DOUT=FILE -P capture_output.cmake
# Writes what PROGRAM ARGS prints to OUT, and fails the build (leaving no OUT) when it fails:
# the man page and the service unit are made by the vmgate binary itself.
separate_arguments(args UNIX_COMMAND "${ARGS}")
execute_process(COMMAND "${PROGRAM}" ${args}
                OUTPUT_FILE "${OUT}.tmp" ERROR_VARIABLE err RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  file(REMOVE "${OUT}.tmp")
  message(FATAL_ERROR "${PROGRAM} ${ARGS} failed (${rc}): ${err}")
endif()
file(RENAME "${OUT}.tmp" "${OUT}")
