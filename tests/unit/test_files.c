/*
 * Private-file reading: credential names, the regular-file and mode checks
 * on the open descriptor, a FIFO that must not block, and the size bound.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <wssignd/errors.h>

#include "files.h"

static char dir[64];

static int setup(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/wssignd-files-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];

    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static void write_file(const char *name, const char *text, mode_t mode, char *path, size_t len)
{
    FILE *f;

    snprintf(path, len, "%s/%s", dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

static void test_resolve_plain_and_credential(void **state)
{
    char out[256], err[256];

    assert_int_equal(files_resolve("/etc/wssignd/tls.key", out, sizeof out, err, sizeof err), 0);
    assert_string_equal(out, "/etc/wssignd/tls.key");

    unsetenv("CREDENTIALS_DIRECTORY");
    assert_int_equal(files_resolve("credential:tls.key", out, sizeof out, err, sizeof err),
                     WSS_ERR_CONFIG);
    assert_non_null(strstr(err, "CREDENTIALS_DIRECTORY"));

    setenv("CREDENTIALS_DIRECTORY", "/run/credentials/wssignd.service", 1);
    assert_int_equal(files_resolve("credential:tls.key", out, sizeof out, err, sizeof err), 0);
    assert_string_equal(out, "/run/credentials/wssignd.service/tls.key");
    assert_int_equal(files_resolve("credential:../x", out, sizeof out, err, sizeof err),
                     WSS_ERR_CONFIG);
    assert_int_equal(files_resolve("credential:", out, sizeof out, err, sizeof err),
                     WSS_ERR_CONFIG);
    assert_int_equal(files_resolve("credential:..", out, sizeof out, err, sizeof err),
                     WSS_ERR_CONFIG);
    assert_int_equal(files_resolve("credential:tls.key", out, 10, err, sizeof err), WSS_ERR_CONFIG);
    unsetenv("CREDENTIALS_DIRECTORY");
}

static void test_read_secret_modes(void **state)
{
    char path[128], err[256], *buf;
    size_t len;

    write_file("secret", "s3cret\n", 0600, path, sizeof path);
    assert_int_equal(files_read(path, true, "token file", 1024, &buf, &len, err, sizeof err), 0);
    assert_int_equal(len, 7);
    assert_string_equal(buf, "s3cret\n");
    files_free_secret(buf, len);

    assert_int_equal(chmod(path, 0640), 0);
    assert_int_equal(files_read(path, true, "token file", 1024, &buf, &len, err, sizeof err),
                     WSS_ERR_CONFIG);
    assert_null(buf);
    assert_non_null(strstr(err, "0640"));
    /* Not a secret: the mode does not matter. */
    assert_int_equal(files_read(path, false, "certificate", 1024, &buf, &len, err, sizeof err), 0);
    free(buf);
}

static void test_missing_directory_and_fifo(void **state)
{
    char path[128], err[256], *buf;
    size_t len;

    snprintf(path, sizeof path, "%s/absent", dir);
    assert_int_equal(files_read(path, true, "key file", 64, &buf, &len, err, sizeof err),
                     WSS_ERR_IO);
    assert_non_null(strstr(err, "key file"));
    assert_int_equal(files_read(dir, false, "key file", 64, &buf, &len, err, sizeof err),
                     WSS_ERR_CONFIG);
    /* A FIFO with no writer would block a plain open(): refused at once. */
    snprintf(path, sizeof path, "%s/fifo", dir);
    assert_int_equal(mkfifo(path, 0600), 0);
    assert_int_equal(files_read(path, true, "key file", 64, &buf, &len, err, sizeof err),
                     WSS_ERR_CONFIG);
    assert_non_null(strstr(err, "not a regular file"));
}

static void test_size_bound(void **state)
{
    char path[128], err[256], *buf, big[10001];
    size_t len;

    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    write_file("big", big, 0600, path, sizeof path);
    assert_int_equal(files_read(path, true, "secret", 10000, &buf, &len, err, sizeof err), 0);
    assert_int_equal(len, 10000);
    files_free_secret(buf, len);
    assert_int_equal(files_read(path, true, "secret", 9999, &buf, &len, err, sizeof err),
                     WSS_ERR_CONFIG);
    assert_null(buf);
    assert_non_null(strstr(err, "longer than"));
    write_file("empty", "", 0600, path, sizeof path);
    assert_int_equal(files_read(path, true, "secret", 16, &buf, &len, err, sizeof err), 0);
    assert_int_equal(len, 0);
    files_free_secret(buf, len);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resolve_plain_and_credential),
        cmocka_unit_test(test_read_secret_modes),
        cmocka_unit_test(test_missing_directory_and_fifo),
        cmocka_unit_test(test_size_bound),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
