/*
 * The --confirm command: one child process per sign request, run through
 * /bin/sh -c, fed the message on stdin, approved by exit status 0. The
 * caller polls it from a timer (confirm_poll never blocks); nothing here
 * knows about lws or the protocol.
 */
#ifndef WSSIGN_CONFIRM_H
#define WSSIGN_CONFIRM_H

#include <stddef.h>
#include <stdint.h>

/* Messages up to this size are also passed in WSSIGN_MESSAGE_HEX and
 * WSSIGN_MESSAGE_B64; longer ones only on stdin (the kernel limits the size
 * of one environment string to 128 KiB). */
#define CONFIRM_ENV_MESSAGE_MAX 32768

/* What a confirmation came to. */
enum confirm_result {
    CONFIRM_RUNNING = 0, /* not finished yet */
    CONFIRM_APPROVED,    /* the command exited with status 0 */
    CONFIRM_DECLINED,    /* it exited non-zero or was killed by a signal */
    CONFIRM_TIMED_OUT,   /* it ran past its deadline and was killed */
};

/* Per request: one running confirmation. */
struct confirm;

/* What the confirm command is told about one request. */
struct confirm_request {
    const uint8_t *msg;
    size_t len;
    const char *request_id;
    const char *public_key_b64;
    const char *label;     /* the requester's label; NULL or "": none */
    const char *requester; /* the requester's name; NULL or "": none */
};

/*
 * Starts `/bin/sh -c cmd` in its own process group, with the message on its
 * stdin (fed without blocking by confirm_poll), its stdout sent to stderr,
 * and in its environment: WSSIGN_REQUEST_ID, WSSIGN_PUBLIC_KEY (base64),
 * WSSIGN_MESSAGE_BYTES, WSSIGN_MESSAGE_SHA256 (hex), for messages up to
 * CONFIRM_ENV_MESSAGE_MAX bytes WSSIGN_MESSAGE_HEX and WSSIGN_MESSAGE_B64,
 * and when the request carries them WSSIGN_LABEL and WSSIGN_REQUESTER (the
 * parent's WSSIGN_* variables are never passed on, so an absent one is
 * unset). deadline_ms is on the util_now_ms() clock. The message is copied.
 * Returns the new confirmation (free with confirm_free), or NULL with a
 * reason in err (pipe or fork failed).
 */
struct confirm *confirm_start(const char *cmd, const struct confirm_request *req,
                              uint64_t deadline_ms, char *err, size_t errlen);

/*
 * Advances c: writes more of the message to its stdin, reaps it if it has
 * exited, kills it (the whole process group) if now_ms is past the deadline.
 * Returns CONFIRM_RUNNING until there is an outcome, then that outcome on
 * every later call. *status (may be NULL) receives the exit status, or
 * 128 + signal number when it was killed.
 */
enum confirm_result confirm_poll(struct confirm *c, uint64_t now_ms, int *status);

/* The child's process id (for logs). */
int confirm_pid(const struct confirm *c);

/* Kills the process group if still running, reaps the child and frees c.
 * NULL is a no-op. */
void confirm_free(struct confirm *c);

#endif
