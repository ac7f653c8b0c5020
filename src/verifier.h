/*
 * Ed25519 verification off the loop thread: a small pool of worker threads
 * takes (key, message, signature) jobs and posts each verdict back to the
 * loop thread through a libuv async handle. All daemon state stays on the
 * loop thread; a job owns copies of what it checks.
 */
#ifndef WSSIGND_VERIFIER_H
#define WSSIGND_VERIFIER_H

#include <stddef.h>
#include <stdint.h>

#include <wssignd/service.h>

struct verifier;

/* Called on the loop thread with each verdict: 0 valid, or WSS_ERR_BAD_SIG. */
typedef void (*verifier_done_cb)(const char *request_id, int verdict, void *arg);

/*
 * Starts threads workers on the libuv loop uv_loop (a uv_loop_t *). done runs
 * on the loop thread for every job submitted. Returns NULL if threads is 0 or
 * the threads cannot be started (the caller then verifies inline).
 */
struct verifier *verifier_new(void *uv_loop, unsigned threads, verifier_done_cb done, void *arg);

/* Queues a job; copies everything. Never fails (out-of-memory aborts). */
void verifier_submit(struct verifier *v, const char *request_id,
                     const uint8_t key[WSS_PUBLIC_KEY_BYTES], const uint8_t *message,
                     size_t message_len, const uint8_t signature[WSS_SIGNATURE_BYTES]);

/* Jobs submitted and not yet delivered to done. */
size_t verifier_in_flight(const struct verifier *v);

/*
 * Stops the workers (jobs still queued are dropped without a verdict),
 * joins them and closes the async handle; the loop must run once more for
 * the close to finish. NULL is a no-op.
 */
void verifier_free(struct verifier *v);

#endif
