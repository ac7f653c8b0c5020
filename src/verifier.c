/*
 * The verification worker pool. Jobs go in through a mutex-protected FIFO,
 * verdicts come back through another, and a uv_async_t wakes the loop to
 * deliver them. Workers touch only the jobs they take.
 */
#include "verifier.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "crypto.h"
#include "util.h"

/* Per job: from verifier_submit until its verdict is delivered. */
struct job {
    struct job *next;
    char request_id[WSS_REQUEST_ID_BYTES];
    uint8_t key[WSS_PUBLIC_KEY_BYTES];
    uint8_t signature[WSS_SIGNATURE_BYTES];
    int verdict;
    size_t message_len;
    uint8_t message[]; /* copied */
};

/* Per FIFO of jobs. */
struct fifo {
    struct job *head, *tail;
};

/* Per daemon. */
struct verifier {
    pthread_mutex_t lock;
    pthread_cond_t work;
    struct fifo todo, done; /* both under lock */
    bool stopping;          /* under lock */
    pthread_t *threads;
    unsigned n_threads;
    uv_async_t wake; /* loop thread side */
    verifier_done_cb cb;
    void *arg;
    size_t in_flight; /* loop thread only */
};

static void push(struct fifo *f, struct job *j)
{
    j->next = NULL;
    if (f->tail)
        f->tail->next = j;
    else
        f->head = j;
    f->tail = j;
}

static struct job *pop(struct fifo *f)
{
    struct job *j = f->head;

    if (j) {
        f->head = j->next;
        if (!f->head)
            f->tail = NULL;
    }
    return j;
}

static void *worker(void *arg)
{
    struct verifier *v = arg;
    struct job *j;

    pthread_mutex_lock(&v->lock);
    for (;;) {
        while (!v->stopping && !v->todo.head)
            pthread_cond_wait(&v->work, &v->lock);
        if (v->stopping)
            break;
        j = pop(&v->todo);
        pthread_mutex_unlock(&v->lock);

        j->verdict = crypto_verify_sig(j->key, j->message, j->message_len, j->signature,
                                       sizeof j->signature) == 0
                         ? 0
                         : WSS_ERR_BAD_SIG;

        pthread_mutex_lock(&v->lock);
        push(&v->done, j);
        uv_async_send(&v->wake);
    }
    pthread_mutex_unlock(&v->lock);
    return NULL;
}

/* On the loop thread: hand every finished verdict to the callback. */
static void on_wake(uv_async_t *h)
{
    struct verifier *v = h->data;
    struct fifo batch;
    struct job *j;

    pthread_mutex_lock(&v->lock);
    batch = v->done;
    v->done.head = v->done.tail = NULL;
    pthread_mutex_unlock(&v->lock);
    while ((j = pop(&batch))) {
        v->in_flight--;
        v->cb(j->request_id, j->verdict, v->arg);
        free(j);
    }
}

struct verifier *verifier_new(void *uv_loop, unsigned threads, verifier_done_cb done, void *arg)
{
    struct verifier *v;

    if (!threads)
        return NULL;
    v = xcalloc(1, sizeof *v);
    v->cb = done;
    v->arg = arg;
    pthread_mutex_init(&v->lock, NULL);
    pthread_cond_init(&v->work, NULL);
    if (uv_async_init(uv_loop, &v->wake, on_wake) != 0) {
        pthread_cond_destroy(&v->work);
        pthread_mutex_destroy(&v->lock);
        free(v);
        return NULL;
    }
    v->wake.data = v;
    v->threads = xcalloc(threads, sizeof *v->threads);
    for (; v->n_threads < threads; v->n_threads++)
        if (pthread_create(&v->threads[v->n_threads], NULL, worker, v) != 0)
            break;
    if (!v->n_threads) {
        verifier_free(v);
        return NULL;
    }
    return v;
}

void verifier_submit(struct verifier *v, const char *request_id,
                     const uint8_t key[WSS_PUBLIC_KEY_BYTES], const uint8_t *message,
                     size_t message_len, const uint8_t signature[WSS_SIGNATURE_BYTES])
{
    struct job *j = xmalloc(sizeof *j + message_len);

    memcpy(j->request_id, request_id, sizeof j->request_id);
    j->request_id[sizeof j->request_id - 1] = '\0';
    memcpy(j->key, key, sizeof j->key);
    memcpy(j->signature, signature, sizeof j->signature);
    memcpy(j->message, message, message_len);
    j->message_len = message_len;
    v->in_flight++;
    pthread_mutex_lock(&v->lock);
    push(&v->todo, j);
    pthread_cond_signal(&v->work);
    pthread_mutex_unlock(&v->lock);
}

size_t verifier_in_flight(const struct verifier *v)
{
    return v ? v->in_flight : 0;
}

static void free_all(struct fifo *f)
{
    struct job *j;

    while ((j = pop(f)))
        free(j);
}

static void on_closed(uv_handle_t *h)
{
    free(h->data);
}

void verifier_free(struct verifier *v)
{
    if (!v)
        return;
    pthread_mutex_lock(&v->lock);
    v->stopping = true;
    pthread_cond_broadcast(&v->work);
    pthread_mutex_unlock(&v->lock);
    for (unsigned i = 0; i < v->n_threads; i++)
        pthread_join(v->threads[i], NULL);
    free(v->threads);
    free_all(&v->todo);
    free_all(&v->done);
    pthread_cond_destroy(&v->work);
    pthread_mutex_destroy(&v->lock);
    /* The handle's memory is v itself: freed once libuv has closed it. */
    uv_close((uv_handle_t *)&v->wake, on_closed);
}
