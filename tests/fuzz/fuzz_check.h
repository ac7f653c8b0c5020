/*
 * The check every fuzz target uses: a broken contract aborts with the file,
 * line and condition, so libFuzzer keeps the input as a crash.
 */
#ifndef WSSIGND_FUZZ_CHECK_H
#define WSSIGND_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                                          \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "fuzz: check failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                         \
        }                                                                                    \
    } while (0)

#endif
