/*
 * Key sets: a sorted array of 32-byte public keys, read from a key file
 * (keys.allow_file, keys.deny_file) or built from a list (a token's keys=).
 * Membership is a binary search. No lws; the only I/O is the file read.
 */
#ifndef WSSIGND_KEYSET_H
#define WSSIGND_KEYSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KEYSET_KEY_BYTES 32
/* The largest key file read: about 350,000 keys with their line ends. */
#define KEYSET_FILE_MAX (16 * 1024 * 1024)

/* Per set: owned keys, sorted by their bytes, without repeats. */
struct keyset {
    uint8_t (*keys)[KEYSET_KEY_BYTES];
    size_t n, cap;
};

/*
 * Reads the key file at path: one key per line in standard padded base64
 * (the text the protocol and the logs use), blank lines and lines starting
 * with '#' ignored, and a key may be followed by blanks and a '#' comment.
 * The file need not be private (it holds no secret) but must be a regular
 * file of at most KEYSET_FILE_MAX bytes. what names the setting in error
 * text ("keys.deny_file"). Fills *set (emptied first) and returns 0, or
 * WSS_ERR_IO / WSS_ERR_CONFIG with "what PATH:LINE: reason" in err; *set is
 * then empty. Free with keyset_clear.
 */
int keyset_load(struct keyset *set, const char *path, const char *what, char *err, size_t errlen);

/* Adds key to set (a repeat is a no-op); call keyset_sort before lookups. */
void keyset_add(struct keyset *set, const uint8_t key[KEYSET_KEY_BYTES]);

/* Sorts set and drops repeats (after keyset_add). */
void keyset_sort(struct keyset *set);

/* True if key is in set (sorted). A NULL set holds nothing. */
bool keyset_has(const struct keyset *set, const uint8_t key[KEYSET_KEY_BYTES]);

/* A deep copy of set. Never NULL; free with keyset_free. */
struct keyset *keyset_dup(const struct keyset *set);

/* Frees the keys of set; set then holds none. */
void keyset_clear(struct keyset *set);

/* keyset_clear and free. NULL is a no-op. */
void keyset_free(struct keyset *set);

#endif
