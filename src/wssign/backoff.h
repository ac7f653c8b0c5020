/*
 * Reconnect delays: capped exponential backoff with full jitter
 * (delay = uniform(0, min(max, base * 2^attempt))). No clocks, no lws;
 * the caller schedules the timer.
 */
#ifndef WSSIGN_BACKOFF_H
#define WSSIGN_BACKOFF_H

#include <stdint.h>

/* Per agent: the backoff state across connection attempts. */
struct backoff {
    uint32_t base_ms; /* ceiling of the first delay */
    uint32_t max_ms;  /* ceiling of every delay */
    unsigned attempt; /* failed attempts since the last reset */
};

/* Sets base and cap (a base above the cap is lowered to it) and resets. */
void backoff_init(struct backoff *b, uint32_t base_ms, uint32_t max_ms);

/* The ceiling the next delay is drawn under: min(max, base * 2^attempt). */
uint32_t backoff_ceiling(const struct backoff *b);

/* Draws the next delay in [0, ceiling] and counts the attempt. */
uint32_t backoff_next(struct backoff *b);

/* Forgets past failures (after a successful introduction). */
void backoff_reset(struct backoff *b);

/* Makes the next delays use the full cap (after being superseded, so two
 * agents sharing a key do not take the connection from each other in a
 * tight loop). */
void backoff_saturate(struct backoff *b);

#endif
