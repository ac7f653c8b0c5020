/*
 * A controller's options: its section of the configuration file
 * ("controllers": {"<name>": {...}}), typed and checked against a table the
 * controller declares.
 *
 * A controller lists the keys it accepts in a struct wss_opt_spec table,
 * calls wss_opts_check() first in init (and in reload_prepare), and then
 * reads each value with the getter of its type, which gives the table's
 * default for an absent key. Compare nginx's ngx_command_t tables and
 * mosquitto's plugin options.
 */
#ifndef WSSIGND_OPTS_H
#define WSSIGND_OPTS_H

#include <stdbool.h>
#include <stddef.h>

/* A controller's config section; owned by the daemon, borrowed by the
 * controller for the duration of init or reload_prepare. */
struct wss_opts;

/* The JSON type an option's value must have. */
enum wss_opt_type {
    WSS_OPT_STRING = 1, /* a string */
    WSS_OPT_INTEGER,    /* an integer (a real number such as 1.5 is refused) */
    WSS_OPT_BOOLEAN,    /* true or false */
};

/*
 * Per option: one entry of the table of keys a controller accepts; the
 * table ends with an entry whose key is NULL ({0}).
 *
 * min and max bound the value of an integer and the length in bytes of a
 * string, both inclusive; with min == max == 0 any value is taken. def is
 * the value the getters return when the key is absent (def.s may be NULL).
 * A required key has no default: wss_opts_check() refuses a section
 * without it.
 */
struct wss_opt_spec {
    const char *key;
    enum wss_opt_type type;
    long long min, max;
    union {
        const char *s; /* WSS_OPT_STRING */
        long long i;   /* WSS_OPT_INTEGER */
        bool b;        /* WSS_OPT_BOOLEAN */
    } def;
    bool required;
};

/*
 * Checks the section against spec: every key present is listed, has the
 * listed type and lies in its range, and every required key is present.
 * Returns 0; WSS_ERR_CONFIG with a message naming the key in full
 * ("key 'controllers.example.interval_ms' must be between 10 and 86400000")
 * in err (err may be NULL when errlen is 0); or WSS_ERR_INVAL when spec
 * itself is broken (an unknown type, min above max), which is a bug in the
 * controller. opts NULL is an empty section.
 */
int wss_opts_check(const struct wss_opts *opts, const struct wss_opt_spec *spec, char *err,
                   size_t errlen);

/*
 * Read the value of key, which must be listed in spec with the getter's
 * type: the section's value if present and of that type, else the spec's
 * default (a key not listed, or listed with another type, gives NULL, 0 or
 * false: a bug in the controller). Call wss_opts_check() first: the getters
 * do not check ranges. A returned string is borrowed from opts (or is the
 * spec's default): valid until init or reload_prepare returns; copy it to
 * keep it. None of them fails.
 */
const char *wss_opts_string(const struct wss_opts *opts, const struct wss_opt_spec *spec,
                            const char *key);
long long wss_opts_int(const struct wss_opts *opts, const struct wss_opt_spec *spec,
                       const char *key);
bool wss_opts_bool(const struct wss_opts *opts, const struct wss_opt_spec *spec, const char *key);

/* True if the section names key (whatever its value), e.g. to tell an
 * option left out from one set to its default. */
bool wss_opts_has(const struct wss_opts *opts, const char *key);

#endif
