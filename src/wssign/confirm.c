/*
 * Confirmation commands: fork/exec of /bin/sh -c, a non-blocking pipe for
 * the message, and reaping by waitpid(WNOHANG) from the caller's timer.
 * Owns the child process and its pipe; never blocks except to reap a child
 * it has just killed with SIGKILL.
 */
#include "confirm.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "crypto.h"
#include "util.h"

extern char **environ;

/* Per request: the child and what is left to write to it. */
struct confirm {
    pid_t pid;
    int stdin_fd; /* write end of the child's stdin, -1 once closed */
    uint8_t *msg;
    size_t len, written;
    uint64_t deadline_ms;
    enum confirm_result result;
    int status;
};

static char *env_entry(const char *name, const char *value)
{
    size_t n = strlen(name) + strlen(value) + 2;
    char *e = xmalloc(n);

    snprintf(e, n, "%s=%s", name, value);
    return e;
}

/* The parent's environment without WSSIGN_* entries, plus ours. Built before
 * fork so the child only calls async-signal-safe functions. */
static char **build_env(const struct confirm_request *req)
{
    const uint8_t *msg = req->msg;
    size_t len = req->len;
    uint8_t digest[crypto_hash_sha256_BYTES];
    char hexdigest[2 * sizeof digest + 1], num[32];
    size_t n = 0, count = 0;
    char **env;

    for (char **e = environ; *e; e++)
        count++;
    env = xcalloc(count + 10, sizeof *env);
    for (char **e = environ; *e; e++)
        if (strncmp(*e, "WSSIGN_", 7) != 0)
            env[n++] = xstrdup(*e);
    crypto_hash_sha256(digest, msg, len);
    snprintf(num, sizeof num, "%zu", len);
    env[n++] = env_entry("WSSIGN_REQUEST_ID", req->request_id);
    env[n++] = env_entry("WSSIGN_PUBLIC_KEY", req->public_key_b64);
    env[n++] = env_entry("WSSIGN_MESSAGE_BYTES", num);
    env[n++] = env_entry("WSSIGN_MESSAGE_SHA256",
                         util_hex(hexdigest, sizeof hexdigest, digest, sizeof digest));
    if (len <= CONFIRM_ENV_MESSAGE_MAX) {
        char *hex = xmalloc(2 * len + 1), *b64 = xmalloc(crypto_b64_len(len));

        sodium_bin2hex(hex, 2 * len + 1, msg, len);
        crypto_b64_encode(b64, crypto_b64_len(len), msg, len);
        env[n++] = env_entry("WSSIGN_MESSAGE_HEX", hex);
        env[n++] = env_entry("WSSIGN_MESSAGE_B64", b64);
        free(hex);
        free(b64);
    }
    /* The daemon checked both: UTF-8 without control characters, a visible-ASCII name. */
    if (req->label && *req->label)
        env[n++] = env_entry("WSSIGN_LABEL", req->label);
    if (req->requester && *req->requester)
        env[n++] = env_entry("WSSIGN_REQUESTER", req->requester);
    env[n] = NULL;
    return env;
}

static void free_env(char **env)
{
    for (char **e = env; *e; e++)
        free(*e);
    free(env);
}

/* In the child, between fork and exec: async-signal-safe calls only. */
static void run_child(int stdin_fd, const char *cmd, char **env, pid_t parent)
{
    char *argv[] = {"sh", "-c", (char *)cmd, NULL};
    sigset_t none;

    /* Its own process group, so a timeout can kill what the shell started too. */
    setpgid(0, 0);
    /* If the agent dies without cleaning up (SIGKILL), the shell goes too;
     * the getppid check covers an agent that died before prctl ran. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
    if (dup2(stdin_fd, STDIN_FILENO) < 0 || dup2(STDERR_FILENO, STDOUT_FILENO) < 0)
        _exit(127);
    /* Nothing else of ours (the WebSocket, the key file) leaks into the command. */
    if (close_range(3, ~0U, 0) != 0)
        for (int fd = 3; fd < 1024; fd++)
            close(fd);
    /* The agent ignores SIGPIPE and blocks nothing, but the command must not
     * inherit an ignored SIGPIPE: shell pipelines rely on it. */
    signal(SIGPIPE, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execve("/bin/sh", argv, env);
    _exit(127);
}

struct confirm *confirm_start(const char *cmd, const struct confirm_request *req,
                              uint64_t deadline_ms, char *err, size_t errlen)
{
    struct confirm *c;
    char **env;
    int fds[2];
    pid_t pid, parent;

    if (pipe2(fds, O_CLOEXEC) != 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        return NULL;
    }
    env = build_env(req);
    parent = getpid();
    pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        free_env(env);
        return NULL;
    }
    if (pid == 0)
        run_child(fds[0], cmd, env, parent);

    /* Also from the parent: whichever runs first, the group exists before
     * anyone signals it. */
    setpgid(pid, pid);
    free_env(env);
    close(fds[0]);
    fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) | O_NONBLOCK);

    c = xcalloc(1, sizeof *c);
    c->pid = pid;
    c->stdin_fd = fds[1];
    c->msg = xmemdup(req->msg, req->len);
    c->len = req->len;
    c->deadline_ms = deadline_ms;
    c->result = CONFIRM_RUNNING;
    return c;
}

static void close_stdin(struct confirm *c)
{
    if (c->stdin_fd >= 0) {
        close(c->stdin_fd);
        c->stdin_fd = -1;
    }
}

/* Writes what the pipe takes now. A reader that went away (EPIPE) simply
 * does not get the rest; its exit status still decides. */
static void feed(struct confirm *c)
{
    while (c->stdin_fd >= 0 && c->written < c->len) {
        ssize_t n = write(c->stdin_fd, c->msg + c->written, c->len - c->written);

        if (n > 0) {
            c->written += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        } else {
            close_stdin(c);
            return;
        }
    }
    /* All written: EOF tells the command the message is complete. */
    close_stdin(c);
}

static int status_code(int wstatus)
{
    if (WIFEXITED(wstatus))
        return WEXITSTATUS(wstatus);
    if (WIFSIGNALED(wstatus))
        return 128 + WTERMSIG(wstatus);
    return 255;
}

/* SIGKILL to the whole group, then reap (prompt: SIGKILL cannot be caught). */
static void kill_and_reap(struct confirm *c)
{
    int wstatus = 0;

    kill(-c->pid, SIGKILL);
    kill(c->pid, SIGKILL);
    while (waitpid(c->pid, &wstatus, 0) < 0 && errno == EINTR)
        ;
    c->status = 128 + SIGKILL;
}

enum confirm_result confirm_poll(struct confirm *c, uint64_t now_ms, int *status)
{
    int wstatus = 0;
    pid_t r;

    if (c->result == CONFIRM_RUNNING) {
        feed(c);
        r = waitpid(c->pid, &wstatus, WNOHANG);
        if (r == c->pid) {
            close_stdin(c);
            c->status = status_code(wstatus);
            c->result = c->status == 0 ? CONFIRM_APPROVED : CONFIRM_DECLINED;
        } else if (r < 0 && errno != EINTR) {
            /* The child is gone without a status we can read: decline. */
            close_stdin(c);
            c->status = 255;
            c->result = CONFIRM_DECLINED;
        } else if (now_ms >= c->deadline_ms) {
            close_stdin(c);
            kill_and_reap(c);
            c->result = CONFIRM_TIMED_OUT;
        }
    }
    if (status)
        *status = c->status;
    return c->result;
}

int confirm_pid(const struct confirm *c)
{
    return (int)c->pid;
}

void confirm_free(struct confirm *c)
{
    if (!c)
        return;
    close_stdin(c);
    if (c->result == CONFIRM_RUNNING)
        kill_and_reap(c);
    sodium_memzero(c->msg, c->len);
    free(c->msg);
    free(c);
}
