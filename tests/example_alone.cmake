# The example controller is written against the public API alone. Run with
# cmake -DCC=... -DSOURCE_DIR=... -DWORK_DIR=... -P example_alone.cmake:
# compiles a copy of src/controllers/example.c made outside the source tree
# (so that no relative #include reaches the daemon's own headers) in strict
# C11 with include/ as the only include path, then checks every header the
# compiler read: the project's must be under include/wssignd/, and no library
# header (libsodium, jansson, libwebsockets, libuv, uthash, libuuid) may appear.
file(MAKE_DIRECTORY ${WORK_DIR})
configure_file(${SOURCE_DIR}/src/controllers/example.c ${WORK_DIR}/example.c COPYONLY)
execute_process(
    COMMAND ${CC} -std=c11 -Wall -Wextra -Wpedantic -Werror -I${SOURCE_DIR}/include
            -c ${WORK_DIR}/example.c -o ${WORK_DIR}/example.o -MD -MF ${WORK_DIR}/example.d
    RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
    message(FATAL_ERROR "example.c does not build from include/wssignd/ alone")
endif()
file(READ ${WORK_DIR}/example.d deps)
string(REGEX REPLACE "[ \\\\\n]+" ";" deps "${deps}")
set(headers 0)
foreach(dep IN LISTS deps)
    if(NOT dep MATCHES "\\.h$")
        continue()
    endif()
    math(EXPR headers "${headers} + 1")
    string(FIND "${dep}" "${SOURCE_DIR}/" in_tree)
    string(FIND "${dep}" "${SOURCE_DIR}/include/wssignd/" in_public)
    if(in_tree EQUAL 0 AND NOT in_public EQUAL 0)
        message(FATAL_ERROR "example.c reads a private header: ${dep}")
    endif()
    if(dep MATCHES "(sodium|jansson|libwebsockets|lws_|/uv\\.h|/uv/|uthash|uuid)")
        message(FATAL_ERROR "example.c reads a library header: ${dep}")
    endif()
endforeach()
if(headers EQUAL 0)
    message(FATAL_ERROR "no header list from the compiler")
endif()
message(STATUS "example.c: ${headers} headers, all public or the C library's")
