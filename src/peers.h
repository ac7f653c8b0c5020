/*
 * Connection admission: how many sockets each client address, and all of
 * them together, hold on a listener, and of those how many have introduced a
 * key. The per-address cap at accept applies to sockets that have not proved
 * a key (many signers behind one balancer or NAT share an address); proven
 * ones have a cap of their own. IPv6 addresses count per /64. Owns its
 * per-address entries; knows nothing of lws (addresses come in as struct
 * sockaddr).
 */
#ifndef WSSIGND_PEERS_H
#define WSSIGND_PEERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "log.h"

struct peers;
struct peer;

/* Creates an empty table. Never NULL. Free with peers_free (NULL is a no-op). */
struct peers *peers_new(void);
void peers_free(struct peers *p);

/*
 * True if one more connection from sa fits under max_total (0: no global
 * cap) and under max_unproven_per_ip sockets from its address that have not
 * proved a key. IPv4-mapped IPv6 addresses count as their IPv4 address, other
 * IPv6 addresses as their /64. Changes nothing.
 */
bool peers_admit(const struct peers *p, const struct sockaddr *sa, size_t max_total,
                 size_t max_unproven_per_ip);

/* Counts one connection from sa; returns the handle to release it with.
 * NULL if sa is not an IPv4/IPv6 address (then nothing is counted). */
struct peer *peers_add(struct peers *p, const struct sockaddr *sa);

/*
 * A connection counted under e has introduced a key: it no longer counts
 * toward the unproven cap. Returns false, counting nothing, if its address
 * already holds max_proven_per_ip introduced connections (0: no cap).
 * NULL e is always true. Undo with peers_unprove before peers_release.
 */
bool peers_prove(struct peers *p, struct peer *e, size_t max_proven_per_ip);
void peers_unprove(struct peers *p, struct peer *e);

/* Uncounts a connection counted by peers_add. NULL is a no-op. */
void peers_release(struct peers *p, struct peer *peer);

/* Connections counted, in all and from sa. */
size_t peers_total(const struct peers *p);
size_t peers_count(const struct peers *p, const struct sockaddr *sa);
/* Connections from sa's address that introduced a key. */
size_t peers_count_proven(const struct peers *p, const struct sockaddr *sa);

/*
 * Per listener: admission at accept. The peers table of its TCP clients, a
 * count of Unix-socket clients (which have no address to key), the caps in
 * force and the rate limit of the refusal log line. Embedded in the
 * transport's state; set it up with admission_init.
 */
struct admission {
    struct peers *peers;
    size_t unix_clients;
    size_t max_total;           /* all sockets (0: no cap) */
    size_t max_unproven_per_ip; /* unproven sockets per address (0: no cap) */
    const char *listener;       /* "signer", "control": named in the refusal line */
    uint64_t *refused;          /* counter of refusals to bump (a metric), or NULL */
    size_t *gauge;              /* gauge of sockets held to keep, or NULL */
    struct log_limit refusal_log;
};

void admission_init(struct admission *a, const char *listener, uint64_t *refused, size_t *gauge);
void admission_cleanup(struct admission *a);

/* Sockets the listener holds. */
size_t admission_total(const struct admission *a);

/*
 * Accept-time check of a new socket from sa: true to keep it. A refusal is
 * counted and logged (at most once a second, with the count of those not
 * logged).
 */
bool admission_accept(struct admission *a, const struct sockaddr *sa);

/*
 * Counts the accepted socket fd (its peer address read with getpeername)
 * until admission_release. Returns the handle to release it with, or NULL
 * if it could not be counted.
 */
void *admission_count(struct admission *a, int fd);
void admission_release(struct admission *a, void *handle);

/* The peers entry behind a handle (NULL for a Unix-socket client): what
 * peers_prove and peers_unprove take. */
struct peer *admission_peer(const struct admission *a, void *handle);

#endif
