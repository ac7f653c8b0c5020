/*
 * Session tickets of a server context set up by tls_tune_context: the
 * settings it makes, and that a ticket resumes on any context holding the
 * same keys (a listener keeps them for the process's lifetime, whatever
 * happens to its SSL_CTX) and on no context with other keys (a restart).
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tls.h"

static EVP_PKEY *pkey;
static X509 *cert;

/* A self-signed P-256 certificate for "localhost", made once. */
static int setup(void **state)
{
    X509_NAME *name;

    pkey = EVP_EC_gen("P-256");
    cert = X509_new();
    assert_non_null(pkey);
    assert_non_null(cert);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_set_pubkey(cert, pkey);
    name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1,
                               0);
    X509_set_issuer_name(cert, name);
    assert_true(X509_sign(cert, pkey, EVP_sha256()) > 0);
    return 0;
}

static int teardown(void **state)
{
    X509_free(cert);
    EVP_PKEY_free(pkey);
    return 0;
}

static SSL_CTX *server_ctx(const unsigned char keys[TLS_TICKET_KEYS_BYTES])
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    assert_non_null(ctx);
    assert_int_equal(SSL_CTX_use_certificate(ctx, cert), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(ctx, pkey), 1);
    tls_tune_context(ctx, keys);
    return ctx;
}

/*
 * One TLS 1.3 handshake over a socketpair, the client offering session (NULL:
 * none), then one record from the server so the ticket reaches the client.
 * Returns a copy of the client's session afterwards (caller frees), and sets
 * *resumed to what the server says.
 */
static SSL_SESSION *handshake(SSL_CTX *sctx, SSL_SESSION *session, bool *resumed)
{
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    SSL *srv, *cli;
    SSL_SESSION *out;
    char buf[8];
    int sv[2], k, got = 0;

    assert_non_null(cctx);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    srv = SSL_new(sctx);
    cli = SSL_new(cctx);
    SSL_set_fd(srv, sv[0]);
    SSL_set_fd(cli, sv[1]);
    SSL_set_accept_state(srv);
    SSL_set_connect_state(cli);
    if (session)
        assert_int_equal(SSL_set_session(cli, session), 1);
    for (k = 0; k < 200 && !got; k++) {
        if (!SSL_is_init_finished(cli))
            SSL_do_handshake(cli);
        if (!SSL_is_init_finished(srv))
            SSL_do_handshake(srv);
        else if (k % 2 == 0)
            SSL_write(srv, "y", 1);
        if (SSL_is_init_finished(cli))
            got = SSL_read(cli, buf, sizeof buf) > 0;
    }
    assert_true(got);
    assert_string_equal(SSL_get_version(srv), "TLSv1.3");
    *resumed = tls_session_reused(srv);
    assert_int_equal(SSL_session_reused(cli) == 1, *resumed);
    out = SSL_SESSION_dup(SSL_get0_session(cli));
    assert_non_null(out);
    SSL_free(cli);
    SSL_free(srv);
    SSL_CTX_free(cctx);
    close(sv[0]);
    close(sv[1]);
    return out;
}

static void test_new_ticket_keys_differ(void **state)
{
    unsigned char a[TLS_TICKET_KEYS_BYTES], b[TLS_TICKET_KEYS_BYTES], zero[TLS_TICKET_KEYS_BYTES];

    memset(zero, 0, sizeof zero);
    assert_int_equal(tls_new_ticket_keys(a), 0);
    assert_int_equal(tls_new_ticket_keys(b), 0);
    assert_memory_not_equal(a, b, sizeof a);
    tls_forget_ticket_keys(a);
    assert_memory_equal(a, zero, sizeof a);
}

static void test_tune_context_settings(void **state)
{
    unsigned char keys[TLS_TICKET_KEYS_BYTES];
    SSL_CTX *ctx;

    assert_int_equal(tls_new_ticket_keys(keys), 0);
    ctx = server_ctx(keys);
    assert_int_equal(SSL_CTX_get_num_tickets(ctx), 1);
    assert_int_equal(SSL_CTX_get_timeout(ctx), TLS_TICKET_LIFETIME_S);
    assert_int_equal(SSL_CTX_get_session_cache_mode(ctx), SSL_SESS_CACHE_OFF);
    assert_true(SSL_CTX_get_mode(ctx) & SSL_MODE_RELEASE_BUFFERS);
    assert_false(SSL_CTX_get_options(ctx) & SSL_OP_NO_TICKET);
    SSL_CTX_free(ctx);
    assert_false(tls_session_reused(NULL));
}

static void test_ticket_resumes_on_any_context_with_the_same_keys(void **state)
{
    unsigned char keys[TLS_TICKET_KEYS_BYTES], other[TLS_TICKET_KEYS_BYTES];
    SSL_CTX *first, *second, *restarted;
    SSL_SESSION *s1, *s2, *s3, *s4;
    bool resumed;

    assert_int_equal(tls_new_ticket_keys(keys), 0);
    assert_int_equal(tls_new_ticket_keys(other), 0);
    first = server_ctx(keys);
    s1 = handshake(first, NULL, &resumed);
    assert_false(resumed);
    assert_int_equal(SSL_SESSION_is_resumable(s1), 1);
    assert_int_equal(SSL_SESSION_get_ticket_lifetime_hint(s1), TLS_TICKET_LIFETIME_S);

    /* The same context resumes it. */
    s2 = handshake(first, s1, &resumed);
    assert_true(resumed);

    /* A new context with the same keys does too. */
    second = server_ctx(keys);
    s3 = handshake(second, s1, &resumed);
    assert_true(resumed);

    /* Other keys (a restarted daemon): a full handshake, which succeeds. */
    restarted = server_ctx(other);
    s4 = handshake(restarted, s1, &resumed);
    assert_false(resumed);

    SSL_SESSION_free(s1);
    SSL_SESSION_free(s2);
    SSL_SESSION_free(s3);
    SSL_SESSION_free(s4);
    SSL_CTX_free(first);
    SSL_CTX_free(second);
    SSL_CTX_free(restarted);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_ticket_keys_differ),
        cmocka_unit_test(test_tune_context_settings),
        cmocka_unit_test(test_ticket_resumes_on_any_context_with_the_same_keys),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
