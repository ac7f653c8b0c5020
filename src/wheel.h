/*
 * A hashed timing wheel for per-connection deadlines (introduction,
 * keep-alive ping, idle hang-up): arm and disarm are O(1), and advancing
 * touches only the entries whose slot comes up. Entries are embedded in the
 * objects they time; the wheel owns nothing. Time is a parameter.
 */
#ifndef WSSIGND_WHEEL_H
#define WSSIGND_WHEEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WHEEL_SLOTS 1024

/* Per timed object: embedded; zero it before first use. */
struct wheel_entry {
    struct wheel_entry *prev, *next;
    uint64_t due_ms;
    bool armed;
};

/* Per wheel: slots of slot_ms each; a full turn is WHEEL_SLOTS * slot_ms. */
struct wheel {
    struct wheel_entry *slots[WHEEL_SLOTS];
    uint64_t slot_ms;
    uint64_t done_slot; /* every slot up to this absolute index has been advanced */
    size_t count;
};

/* Sets up an empty wheel whose time starts at now_ms. */
void wheel_init(struct wheel *w, uint64_t slot_ms, uint64_t now_ms);

/* Arms e to come due at due_ms (re-arming it if it was armed). A time
 * already past comes due at the next advance. */
void wheel_arm(struct wheel *w, struct wheel_entry *e, uint64_t due_ms);

/* Disarms e if it is armed. */
void wheel_disarm(struct wheel *w, struct wheel_entry *e);

/*
 * Advances to now_ms and returns every entry due at or before it, never one
 * due later, disarmed, as a list through ->next (in no particular order).
 * Entries of later turns stay in their slots.
 */
struct wheel_entry *wheel_advance(struct wheel *w, uint64_t now_ms);

#endif
