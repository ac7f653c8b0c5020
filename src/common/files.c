/*
 * Reading small private files: credentials resolution, the open-and-check
 * rules, and whole-file reads with a size bound. Knows nothing of what the
 * files hold.
 */
#include "files.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include <wssignd/errors.h>

#include "util.h"

int files_resolve(const char *value, char *out, size_t outlen, char *err, size_t errlen)
{
    const size_t plen = strlen(FILES_CREDENTIAL_PREFIX);
    const char *dir, *name;
    int n;

    if (strncmp(value, FILES_CREDENTIAL_PREFIX, plen) != 0) {
        if ((size_t)snprintf(out, outlen, "%s", value) >= outlen) {
            snprintf(err, errlen, "path too long: %.64s...", value);
            return WSS_ERR_CONFIG;
        }
        return 0;
    }
    name = value + plen;
    if (!*name || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, "..")) {
        snprintf(err, errlen, "'%.80s': a credential name is a plain file name", value);
        return WSS_ERR_CONFIG;
    }
    dir = getenv("CREDENTIALS_DIRECTORY");
    if (!dir || !*dir) {
        snprintf(err, errlen,
                 "'%.80s' names a systemd credential, but CREDENTIALS_DIRECTORY is not set "
                 "(add LoadCredential=%.80s:/path/to/file to the unit)",
                 value, name);
        return WSS_ERR_CONFIG;
    }
    n = snprintf(out, outlen, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= outlen) {
        snprintf(err, errlen, "'%.80s': the credential path is too long", value);
        return WSS_ERR_CONFIG;
    }
    return 0;
}

int files_open(const char *path, bool secret, const char *what, char *err, size_t errlen)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);

    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s %s: %s", what, path, strerror(errno));
        return WSS_ERR_IO;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s %s is not a regular file", what, path);
        close(fd);
        return WSS_ERR_CONFIG;
    }
    /* Like sshd with a host key: a secret others can read may already be
     * compromised, and using it would hide that. */
    if (secret && (st.st_mode & (S_IRWXG | S_IRWXO))) {
        snprintf(err, errlen,
                 "%s %s has mode %04o: it must be readable by its owner only (chmod 600 %s)", what,
                 path, (unsigned)(st.st_mode & 07777), path);
        close(fd);
        return WSS_ERR_CONFIG;
    }
    return fd;
}

int files_read(const char *path, bool secret, const char *what, size_t max, char **out, size_t *len,
               char *err, size_t errlen)
{
    size_t cap = max < 4096 ? max + 1 : 4096, n = 0;
    char *buf;
    int fd = files_open(path, secret, what, err, errlen);

    *out = NULL;
    *len = 0;
    if (fd < 0)
        return fd;
    buf = xmalloc(cap + 1);
    for (;;) {
        ssize_t r;

        if (n == cap) {
            if (cap > max)
                break; /* read one byte past max: the file is too long */
            /* Grow by copying so a secret never lingers in a block realloc freed. */
            size_t ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
            char *nbuf = xmalloc(ncap + 1);

            memcpy(nbuf, buf, n);
            files_free_secret(buf, cap + 1);
            buf = nbuf;
            cap = ncap;
        }
        r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, errlen, "cannot read %s %s: %s", what, path, strerror(errno));
            close(fd);
            files_free_secret(buf, cap + 1);
            return WSS_ERR_IO;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    if (n > max) {
        snprintf(err, errlen, "%s %s is longer than %zu bytes", what, path, max);
        files_free_secret(buf, cap + 1);
        return WSS_ERR_CONFIG;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

void files_free_secret(char *buf, size_t len)
{
    if (!buf)
        return;
    sodium_memzero(buf, len);
    free(buf);
}
