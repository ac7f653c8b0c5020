/*
 * libFuzzer target for wssign's URL parser (url_parse in src/wssign/url.c)
 * and the loopback decision on its host (addr_host_is_loopback). Each input
 * is one URL (cut at its first NUL). Besides ASan/UBSan, it checks what a
 * parsed URL may hold, that a refusal says why, and that the parts, written
 * back as a URL, parse to the same parts.
 */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wssignd/errors.h>

#include "addr.h"
#include "fuzz_check.h"
#include "url.h"

/* Longest input tried as a URL (a host and a path at their limits fit). */
#define TEXT_MAX 2048

static bool all_of(const char *s, const char *set)
{
    return strspn(s, set) == strlen(s);
}

/* A parsed URL holds only what url.h allows. */
static void check_parts(const struct url *u)
{
    unsigned char a[16];
    size_t n = strlen(u->host);

    CHECK(u->scheme[0] != '\0' && all_of(u->scheme, "abcdefghijklmnopqrstuvwxyz"));
    CHECK(n >= 1 && n <= CRYPTO_HOST_MAX);
    if (u->ipv6)
        CHECK(all_of(u->host, "0123456789abcdef:.") && inet_pton(AF_INET6, u->host, a) == 1);
    else
        CHECK(all_of(u->host, "abcdefghijklmnopqrstuvwxyz0123456789.-_"));
    CHECK(u->port >= 1 && u->port <= 65535);
    CHECK(u->path[0] == '\0' || u->path[0] == '/');
    CHECK(strlen(u->path) < URL_PATH_MAX && !strchr(u->path, '#'));
    for (const char *p = u->path; *p; p++)
        CHECK((unsigned char)*p > ' ' && (unsigned char)*p < 0x7f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char text[TEXT_MAX + 1], again[URL_PATH_MAX + CRYPTO_HOST_MAX + 64], err[TEXT_MAX + 128];
    struct url u, v;
    size_t n = size < TEXT_MAX ? size : TEXT_MAX;
    int rc;

    memcpy(text, data, n);
    text[n] = '\0';
    rc = url_parse(text, &u, err, sizeof err);
    if (rc != 0) {
        CHECK(rc == WSS_ERR_INVAL);
        CHECK(strncmp(err, "invalid URL '", 13) == 0 && strstr(err, "': ") != NULL);
        return 0;
    }
    check_parts(&u);
    (void)addr_host_is_loopback(u.host);

    /* The parts, written back with an explicit port, are the same URL. */
    snprintf(again, sizeof again, "%s://%s%s%s:%d%s", u.scheme, u.ipv6 ? "[" : "", u.host,
             u.ipv6 ? "]" : "", u.port, u.path);
    CHECK(url_parse(again, &v, err, sizeof err) == 0);
    CHECK(!strcmp(u.scheme, v.scheme) && !strcmp(u.host, v.host) && u.ipv6 == v.ipv6 &&
          u.port == v.port && !strcmp(u.path, v.path));
    return 0;
}
