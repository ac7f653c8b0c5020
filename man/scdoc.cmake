# cmake -DSCDOC=scdoc -DIN=page.N.scd -DOUT=page.N -P scdoc.cmake
# scdoc reads stdin and writes stdout; a failed run leaves no output behind,
# so the next build tries again.
execute_process(COMMAND ${SCDOC} INPUT_FILE ${IN} OUTPUT_FILE ${OUT}.tmp
                ERROR_VARIABLE err RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
    file(REMOVE ${OUT}.tmp)
    message(FATAL_ERROR "scdoc ${IN}: ${err}")
endif()
file(RENAME ${OUT}.tmp ${OUT})
