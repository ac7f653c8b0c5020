/*
 * The listeners' TLS (the signer listener's "tls", the control listener's
 * "control.tls"): one policy for both (TLS 1.2+ with AEAD suites, no
 * renegotiation), the checks of a certificate and key before they are used,
 * and their reload into a live context. OpenSSL only; no lws.
 */
#ifndef WSSIGND_TLS_H
#define WSSIGND_TLS_H

#include <stdbool.h>
#include <stddef.h>

/* TLS 1.2 suites: ECDHE with AEAD only (TLS 1.3 suites keep OpenSSL's
 * defaults). bench/tls_floor uses the same list. */
#define TLS12_CIPHERS                                            \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

/* SSL_OP_* options every server context gets: no TLS 1.0/1.1, no renegotiation. */
unsigned long tls_server_options(void);

/* Size of a listener's session ticket keys: 16 bytes of key name, 32 of
 * HMAC key and 32 of AES key (SSL_CTX_set_tlsext_ticket_keys). */
#define TLS_TICKET_KEYS_BYTES 80

/* How long a session ticket stays valid: 7 days, the most TLS 1.3 allows. */
#define TLS_TICKET_LIFETIME_S (7 * 24 * 3600)

/* Fills keys with fresh random ticket keys. Returns 0, or WSS_ERR_IO if the
 * random generator fails. */
int tls_new_ticket_keys(unsigned char keys[TLS_TICKET_KEYS_BYTES]);

/* Wipes keys (at shutdown). */
void tls_forget_ticket_keys(unsigned char keys[TLS_TICKET_KEYS_BYTES]);

/* True if the TLS connection ssl (an SSL *) resumed a session from a ticket. */
bool tls_session_reused(void *ssl);

/*
 * What a live server context is set up with beyond lws's defaults: idle
 * connections give their buffers back, resumption is by session tickets only
 * (no server-side session cache), one TLS 1.3 ticket per handshake, and the
 * tickets are sealed with keys (copied into the context): a client that
 * offers a ticket from any earlier connection to a context with the same keys
 * resumes without a full handshake. ctx is an SSL_CTX *.
 */
void tls_tune_context(void *ctx, const unsigned char keys[TLS_TICKET_KEYS_BYTES]);

/*
 * Checks a certificate chain and key without installing them: regular files
 * (opened without blocking), the key readable by its owner only, both load,
 * and the key matches the certificate. section ("tls", "control.tls") names
 * the settings in error text. Returns 0, or WSS_ERR_CONFIG with the reason in
 * err.
 */
int tls_check_files(const char *cert, const char *key, const char *section, char *err,
                    size_t errlen);

/* The unix time at which the certificate (the first of the chain in cert)
 * expires, or 0 if it cannot be read. */
double tls_cert_expiry(const char *cert);

/*
 * Loads a new certificate chain and key into the live context ctx (an
 * SSL_CTX *): both files are checked first and only then installed, so new
 * handshakes present the new certificate while open connections keep
 * theirs. Returns 0, or WSS_ERR_CONFIG with the reason in err (the old
 * certificate stays). section as for tls_check_files.
 */
int tls_reload(void *ctx, const char *cert, const char *key, const char *section, char *err,
               size_t errlen);

#endif
