/*
 * Exponential backoff with full jitter (as in the AWS architecture note
 * "Exponential Backoff And Jitter"): spreading reconnects uniformly over the
 * window keeps a restarted daemon from being hit by every agent at once.
 */
#include "backoff.h"

#include <sodium.h>

/* 2^20 times any base above 0 ms already exceeds any 32-bit cap. */
#define ATTEMPT_MAX 20

void backoff_init(struct backoff *b, uint32_t base_ms, uint32_t max_ms)
{
    b->max_ms = max_ms ? max_ms : 1;
    b->base_ms = base_ms ? base_ms : 1;
    if (b->base_ms > b->max_ms)
        b->base_ms = b->max_ms;
    b->attempt = 0;
}

uint32_t backoff_ceiling(const struct backoff *b)
{
    uint64_t c = (uint64_t)b->base_ms << (b->attempt < ATTEMPT_MAX ? b->attempt : ATTEMPT_MAX);

    return c > b->max_ms ? b->max_ms : (uint32_t)c;
}

uint32_t backoff_next(struct backoff *b)
{
    uint32_t ceiling = backoff_ceiling(b);

    if (b->attempt < ATTEMPT_MAX)
        b->attempt++;
    /* Uniform in [0, ceiling]; randombytes_uniform has no modulo bias. */
    return ceiling == UINT32_MAX ? randombytes_random() : randombytes_uniform(ceiling + 1);
}

void backoff_reset(struct backoff *b)
{
    b->attempt = 0;
}

void backoff_saturate(struct backoff *b)
{
    b->attempt = ATTEMPT_MAX;
}
