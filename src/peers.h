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
#include <sys/socket.h>

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

#endif
