/*
 * TLS files and the live contexts (the signer listener's and the control
 * listener's): OpenSSL on scratch contexts for the checks, then on the live
 * one for a reload.
 */
#include "tls.h"

#include <stdio.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <time.h>

#include <wssignd/errors.h>

#include "files.h"

double tls_cert_expiry(const char *cert)
{
    const ASN1_TIME *not_after;
    struct tm tm;
    double t = 0;
    X509 *x = NULL;
    FILE *f = fopen(cert, "r");

    if (!f)
        return 0;
    x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (x && (not_after = X509_get0_notAfter(x)) && ASN1_TIME_to_tm(not_after, &tm) == 1)
        t = (double)timegm(&tm);
    X509_free(x);
    ERR_clear_error();
    return t;
}

unsigned long tls_server_options(void)
{
    return SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1 | SSL_OP_NO_RENEGOTIATION;
}

int tls_new_ticket_keys(unsigned char keys[TLS_TICKET_KEYS_BYTES])
{
    if (RAND_bytes(keys, TLS_TICKET_KEYS_BYTES) != 1) {
        ERR_clear_error();
        return WSS_ERR_IO;
    }
    return 0;
}

void tls_forget_ticket_keys(unsigned char keys[TLS_TICKET_KEYS_BYTES])
{
    OPENSSL_cleanse(keys, TLS_TICKET_KEYS_BYTES);
}

bool tls_session_reused(void *ssl)
{
    return ssl && SSL_session_reused((SSL *)ssl) == 1;
}

void tls_tune_context(void *ctx, const unsigned char keys[TLS_TICKET_KEYS_BYTES])
{
    SSL_CTX *c = ctx;

    /* Idle TLS connections give their read and write buffers back (about 34 KiB each). */
    SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
    /* Tickets only: the session state travels with the client, so resumption costs the
     * daemon no memory per session, and the 20480-entry cache OpenSSL would otherwise
     * fill with TLS 1.2 sessions stays empty. */
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
    /* A client keeps one session and offers it on its next connection: one ticket is
     * enough (OpenSSL sends two by default). */
    SSL_CTX_set_num_tickets(c, 1);
    /* Signers stay connected for days: OpenSSL's 2 hours would expire most tickets
     * before the connection they came with ends. */
    SSL_CTX_set_timeout(c, TLS_TICKET_LIFETIME_S);
    /* Keys kept by the daemon for its lifetime, not the context's own random ones, so
     * tickets stay valid whatever happens to the context; a restart makes new keys. */
    SSL_CTX_set_tlsext_ticket_keys(c, (void *)keys, TLS_TICKET_KEYS_BYTES);
}

/*
 * The TLS files at the paths the configuration resolved (a "credential:NAME"
 * setting is already $CREDENTIALS_DIRECTORY/NAME): regular files, checked
 * without blocking on a FIFO, and a private key readable by group or others
 * is refused, as sshd refuses one.
 */
static int check_tls_paths(const char *cert, const char *key, const char *section, char *err,
                           size_t errlen)
{
    char what[32];
    int fd;

    snprintf(what, sizeof what, "%s.cert", section);
    if ((fd = files_open(cert, false, what, err, errlen)) < 0)
        return WSS_ERR_CONFIG;
    close(fd);
    snprintf(what, sizeof what, "%s.key", section);
    if ((fd = files_open(key, true, what, err, errlen)) < 0)
        return WSS_ERR_CONFIG;
    close(fd);
    return 0;
}

/* Loads cert and key into a scratch SSL_CTX: readable, private, and a matching pair. */
int tls_check_files(const char *cert, const char *key, const char *section, char *err,
                    size_t errlen)
{
    SSL_CTX *probe;
    int rc = 0;

    if (check_tls_paths(cert, key, section, err, errlen) != 0)
        return WSS_ERR_CONFIG;
    probe = SSL_CTX_new(TLS_server_method());
    if (!probe) {
        snprintf(err, errlen, "cannot create a TLS context");
        return WSS_ERR_CONFIG;
    }
    /* The key first: loaded after the certificate, a key of another pair fails to load,
     * where the other order reports it as the mismatch it is. */
    if (SSL_CTX_use_PrivateKey_file(probe, key, SSL_FILETYPE_PEM) != 1) {
        snprintf(err, errlen, "cannot load the private key %s", key);
        rc = WSS_ERR_CONFIG;
    } else if (SSL_CTX_use_certificate_chain_file(probe, cert) != 1) {
        snprintf(err, errlen, "cannot load the certificate chain %s", cert);
        rc = WSS_ERR_CONFIG;
    } else if (SSL_CTX_check_private_key(probe) != 1) {
        snprintf(err, errlen, "the private key %s does not match the certificate %s", key, cert);
        rc = WSS_ERR_CONFIG;
    }
    SSL_CTX_free(probe);
    ERR_clear_error();
    return rc;
}

int tls_reload(void *ctx, const char *cert, const char *key, const char *section, char *err,
               size_t errlen)
{
    SSL_CTX *live = ctx;

    if (!live) {
        snprintf(err, errlen, "the listener of %s has no TLS context", section);
        return WSS_ERR_CONFIG;
    }
    if (tls_check_files(cert, key, section, err, errlen) != 0)
        return WSS_ERR_CONFIG;
    /* Checked on a scratch context above, so these only fail on a race with the files. */
    if (SSL_CTX_use_certificate_chain_file(live, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(live, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(live) != 1) {
        ERR_clear_error();
        snprintf(err, errlen, "the certificate or key changed while being loaded");
        return WSS_ERR_CONFIG;
    }
    return 0;
}
