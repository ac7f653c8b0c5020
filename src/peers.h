/*
 * Connection admission: how many sockets each client address, and all of
 * them together, hold on the signer listener. Owns its per-address entries;
 * knows nothing of lws (addresses come in as struct sockaddr).
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
 * cap) and max_per_ip. IPv4-mapped IPv6 addresses count as their IPv4
 * address. Changes nothing.
 */
bool peers_admit(const struct peers *p, const struct sockaddr *sa, size_t max_total,
                 size_t max_per_ip);

/* Counts one connection from sa; returns the handle to release it with.
 * NULL if sa is not an IPv4/IPv6 address (then nothing is counted). */
struct peer *peers_add(struct peers *p, const struct sockaddr *sa);

/* Uncounts a connection counted by peers_add. NULL is a no-op. */
void peers_release(struct peers *p, struct peer *peer);

/* Connections counted, in all and from sa. */
size_t peers_total(const struct peers *p);
size_t peers_count(const struct peers *p, const struct sockaddr *sa);

#endif
