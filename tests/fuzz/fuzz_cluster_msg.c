/*
 * libFuzzer target for the cluster's message decoder (cmsg_decode in
 * src/cluster/msg.c): whoever can publish on the cluster's Redis channels
 * reaches it. Each input is tried twice: as a whole message (so the tag
 * check sees every shape of garbage), and as the JSON text behind a valid
 * tag (what a node that holds the secret, or a bug in one, could send), so
 * the JSON decoding is exercised past the tag. A decoded message is encoded
 * again and must decode to the same fields.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "msg.h"

static const uint8_t key[CMSG_KEY_BYTES] = {1, 2, 3, 4, 5, 6, 7, 8};

static void round_trip(const struct cmsg *m)
{
    struct cmsg again;
    const char *why;
    size_t len;
    char *buf = cmsg_encode(m, key, &len);

    CHECK(cmsg_decode(buf, len, len, key, &again, &why) == 0);
    CHECK(again.type == m->type && again.seq == m->seq && !strcmp(again.from, m->from));
    CHECK(again.has_key == m->has_key && !memcmp(again.key, m->key, sizeof m->key));
    CHECK(!strcmp(again.id, m->id) && again.exp == m->exp);
    CHECK(again.frame_len == m->frame_len);
    CHECK(!m->frame_len || !memcmp(again.frame, m->frame, m->frame_len));
    cmsg_cleanup(&again);
    free(buf);
}

static void try_decode(const char *buf, size_t len)
{
    struct cmsg m;
    const char *why = NULL;

    if (cmsg_decode(buf, len, 1 << 20, key, &m, &why) == 0) {
        CHECK(cmsg_node_id_valid(m.from));
        round_trip(&m);
        cmsg_cleanup(&m);
    } else {
        CHECK(why && (!strcmp(why, CMSG_BAD_TAG) || !strcmp(why, CMSG_BAD_FORMAT)));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *signed_buf = malloc(CMSG_TAG_BYTES + size + 1);

    CHECK(signed_buf != NULL);
    try_decode((const char *)data, size);
    crypto_auth_hmacsha512256((uint8_t *)signed_buf, data, size, key);
    memcpy(signed_buf + CMSG_TAG_BYTES, data, size);
    try_decode(signed_buf, CMSG_TAG_BYTES + size);
    free(signed_buf);
    return 0;
}
