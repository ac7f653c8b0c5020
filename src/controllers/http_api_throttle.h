/*
 * Failed-authentication throttling for the HTTP control API, per client:
 * each client has a bucket of failures it may make (the burst), refilled at
 * one a second; while a client's bucket is empty its requests are refused
 * unchecked, and no other client is affected. A client is an IPv4 address,
 * an IPv6 /64 (one host usually holds a whole /64), or, on a Unix socket,
 * the connecting process's user id. The table is bounded; a full bucket
 * needs no entry, so entries expire once refilled. No lws, no I/O; time is
 * a parameter.
 */
#ifndef WSSIGND_HTTP_API_THROTTLE_H
#define WSSIGND_HTTP_API_THROTTLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Clients tracked at most; when full, the one whose last failure is oldest is forgotten. */
#define HTTP_API_THROTTLE_MAX 4096

/* Per request: who a request comes from, as the throttle counts it. */
struct http_api_client {
    uint8_t bytes[17]; /* a kind tag, then the address (or uid) bytes, zero-padded */
};

/* Per controller: the table of clients with failures. */
struct http_api_throttle;

/* Creates an empty table for at most max clients, each allowed burst
 * failures in a row. Never NULL. Free with http_api_throttle_free (NULL is a no-op). */
struct http_api_throttle *http_api_throttle_new(size_t max, unsigned burst);
void http_api_throttle_free(struct http_api_throttle *t);

/* Changes the burst (on reload); buckets above it are cut down to it. */
void http_api_throttle_set_burst(struct http_api_throttle *t, unsigned burst);

/*
 * Fills *client from a peer address: IPv4 (and IPv4-mapped IPv6) by the
 * whole address, IPv6 by its first 64 bits, AF_UNIX by *uid (the user of
 * the process at the other end; NULL when its credentials could not be
 * read). Returns false, with *client set to one shared "unknown" client,
 * when the address is of no such kind or a Unix socket has no uid.
 */
bool http_api_client_of(const struct sockaddr *sa, const uint32_t *uid,
                        struct http_api_client *client);

/* True if client has used up its failures at now_ms (its bucket holds less than one). */
bool http_api_throttle_blocked(struct http_api_throttle *t, const struct http_api_client *client,
                               uint64_t now_ms);

/* Counts one failed authentication by client at now_ms. */
void http_api_throttle_fail(struct http_api_throttle *t, const struct http_api_client *client,
                            uint64_t now_ms);

/* Clients currently in the table. */
size_t http_api_throttle_count(const struct http_api_throttle *t);

#endif
