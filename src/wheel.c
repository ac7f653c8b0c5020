/*
 * The timing wheel: an array of doubly linked slot lists indexed by
 * (due / slot_ms) mod WHEEL_SLOTS.
 */
#include "wheel.h"

#include <string.h>

void wheel_init(struct wheel *w, uint64_t slot_ms, uint64_t now_ms)
{
    memset(w, 0, sizeof *w);
    w->slot_ms = slot_ms ? slot_ms : 1;
    w->done_slot = now_ms / w->slot_ms;
}

static void unlink_entry(struct wheel *w, struct wheel_entry *e)
{
    size_t i = (size_t)((e->due_ms / w->slot_ms) % WHEEL_SLOTS);

    if (e->prev)
        e->prev->next = e->next;
    else
        w->slots[i] = e->next;
    if (e->next)
        e->next->prev = e->prev;
    e->prev = e->next = NULL;
    e->armed = false;
    w->count--;
}

void wheel_disarm(struct wheel *w, struct wheel_entry *e)
{
    if (e->armed)
        unlink_entry(w, e);
}

void wheel_arm(struct wheel *w, struct wheel_entry *e, uint64_t due_ms)
{
    size_t i;

    wheel_disarm(w, e);
    /* A slot already advanced would not come up again for a whole turn. */
    if (due_ms / w->slot_ms <= w->done_slot)
        due_ms = (w->done_slot + 1) * w->slot_ms;
    e->due_ms = due_ms;
    i = (size_t)((due_ms / w->slot_ms) % WHEEL_SLOTS);
    e->prev = NULL;
    e->next = w->slots[i];
    if (e->next)
        e->next->prev = e;
    w->slots[i] = e;
    e->armed = true;
    w->count++;
}

struct wheel_entry *wheel_advance(struct wheel *w, uint64_t now_ms)
{
    uint64_t target = now_ms / w->slot_ms, s = w->done_slot;
    struct wheel_entry *due = NULL, *e, *next;

    /* More than a turn behind: one pass over every slot finds all that is due. */
    s++;
    if (target >= s && target - s >= WHEEL_SLOTS)
        s = target - WHEEL_SLOTS + 1;
    for (; s <= target; s++) {
        for (e = w->slots[s % WHEEL_SLOTS]; e; e = next) {
            next = e->next;
            /* Later turns stay, and so do entries of the current slot not yet due. */
            if (e->due_ms > now_ms)
                continue;
            unlink_entry(w, e);
            e->next = due;
            due = e;
        }
    }
    /* The current slot is scanned again next time: it may hold entries still to come. */
    if (target > 0 && target - 1 > w->done_slot)
        w->done_slot = target - 1;
    return due;
}
