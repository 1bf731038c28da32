/* The live stream: a ring of the latest events under one mutex, and
 * subscribers that each remember the sequence number they read up to. A
 * subscriber that fell behind the ring is told so ("overflow") and skips
 * to the oldest event still kept. */
#include "services/live_stream.h"

#include "base/alloc.h"
#include "base/buf.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LIVE_KEEPALIVE_MS 15000

struct live_event {
    uint64_t seq;
    int64_t org_id;
    char *type;
    char *data;
};

/* Freed when the last of its owner and its subscribers lets go, so a
 * stream closed late by the HTTP server never touches freed memory. */
struct live_stream {
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    struct live_event *ring;
    size_t capacity;
    size_t count;      /* events kept: seqs next_seq - count .. next_seq-1 */
    uint64_t next_seq; /* seq the next published event gets */
    int64_t keepalive_ms;
    size_t waiters;
    unsigned refs;
    bool shut;
};

struct live_subscriber {
    struct live_stream *ls;
    int64_t org_id;
    uint64_t next_seq;
    struct buf out; /* formatted bytes not yet handed to the server */
    size_t out_pos;
};

static void live_event_clear(struct live_event *e)
{
    free(e->type);
    free(e->data);
    e->type = NULL;
    e->data = NULL;
}

static void live_stream_destroy(struct live_stream *ls)
{
    for (size_t i = 0; i < ls->capacity; i++)
        live_event_clear(&ls->ring[i]);
    free(ls->ring);
    pthread_cond_destroy(&ls->cond);
    pthread_mutex_destroy(&ls->mutex);
    free(ls);
}

struct live_stream *live_stream_new(size_t capacity)
{
    struct live_stream *ls = xcalloc(1, sizeof(*ls));
    pthread_condattr_t attr;

    ls->capacity = capacity ? capacity : 1;
    ls->ring = xcalloc(ls->capacity, sizeof(*ls->ring));
    ls->keepalive_ms = LIVE_KEEPALIVE_MS;
    ls->next_seq = 1;
    ls->refs = 1;
    pthread_mutex_init(&ls->mutex, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&ls->cond, &attr);
    pthread_condattr_destroy(&attr);
    return ls;
}

void live_stream_shutdown(struct live_stream *ls)
{
    if (!ls)
        return;
    pthread_mutex_lock(&ls->mutex);
    ls->shut = true;
    pthread_cond_broadcast(&ls->cond);
    pthread_mutex_unlock(&ls->mutex);
}

void live_stream_free(struct live_stream *ls)
{
    bool freed;

    if (!ls)
        return;
    live_stream_shutdown(ls);
    pthread_mutex_lock(&ls->mutex);
    freed = --ls->refs == 0;
    pthread_mutex_unlock(&ls->mutex);
    if (freed)
        live_stream_destroy(ls);
}

void live_stream_set_keepalive_ms(struct live_stream *ls, int64_t ms)
{
    pthread_mutex_lock(&ls->mutex);
    ls->keepalive_ms = ms > 0 ? ms : LIVE_KEEPALIVE_MS;
    pthread_mutex_unlock(&ls->mutex);
}

size_t live_stream_waiters(struct live_stream *ls)
{
    pthread_mutex_lock(&ls->mutex);
    size_t n = ls->waiters;
    pthread_mutex_unlock(&ls->mutex);
    return n;
}

/* The type stops at the first line break so it cannot forge SSE fields. */
static char *event_type_copy(const char *type)
{
    return xstrndup(type, strcspn(type, "\r\n"));
}

void live_stream_publish(struct live_stream *ls, int64_t org_id,
                         const char *type, const char *data)
{
    char *type_copy = event_type_copy(type);
    char *data_copy = xstrdup(data ? data : "{}");

    pthread_mutex_lock(&ls->mutex);
    if (ls->shut) {
        pthread_mutex_unlock(&ls->mutex);
        free(type_copy);
        free(data_copy);
        return;
    }

    struct live_event *slot = &ls->ring[ls->next_seq % ls->capacity];
    live_event_clear(slot);
    slot->seq = ls->next_seq++;
    slot->org_id = org_id;
    slot->type = type_copy;
    slot->data = data_copy;
    if (ls->count < ls->capacity)
        ls->count++;
    pthread_cond_broadcast(&ls->cond);
    pthread_mutex_unlock(&ls->mutex);
}

/* One SSE event; every line of data becomes its own "data:" line. */
static void format_event(struct buf *out, const char *type, const char *data)
{
    buf_appendf(out, "event: %s\n", type);
    for (;;) {
        size_t len = strcspn(data, "\n");
        buf_append_str(out, "data: ");
        buf_append(out, data, len);
        buf_append_str(out, "\n");
        if (data[len] == '\0')
            break;
        data += len + 1;
    }
    buf_append_str(out, "\n");
}

/* Moves what the subscriber may see from the ring to its buffer. Called
 * with the mutex held. */
static void collect_locked(struct live_subscriber *sub)
{
    struct live_stream *ls = sub->ls;
    uint64_t oldest = ls->next_seq - ls->count;

    if (sub->next_seq < oldest) {
        buf_appendf(&sub->out, "event: overflow\ndata: {\"skipped\":%llu}\n\n",
                    (unsigned long long)(oldest - sub->next_seq));
        sub->next_seq = oldest;
    }
    for (; sub->next_seq < ls->next_seq; sub->next_seq++) {
        const struct live_event *e = &ls->ring[sub->next_seq % ls->capacity];
        if (e->org_id == sub->org_id)
            format_event(&sub->out, e->type, e->data);
    }
}

static struct timespec deadline_after(int64_t ms)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

/* Fills the subscriber's buffer: events, or a keep-alive comment after the
 * wait. Returns false once the stream is shut down. */
static bool wait_for_output(struct live_subscriber *sub)
{
    struct live_stream *ls = sub->ls;
    bool alive = true;

    pthread_mutex_lock(&ls->mutex);
    struct timespec deadline = deadline_after(ls->keepalive_ms);
    for (;;) {
        if (ls->shut) {
            alive = false;
            break;
        }
        collect_locked(sub);
        if (sub->out.len > 0)
            break;

        ls->waiters++;
        int rc = pthread_cond_timedwait(&ls->cond, &ls->mutex, &deadline);
        ls->waiters--;
        if (rc == ETIMEDOUT && !ls->shut) {
            collect_locked(sub);
            if (sub->out.len == 0)
                buf_append_str(&sub->out, ": keepalive\n\n");
            break;
        }
    }
    pthread_mutex_unlock(&ls->mutex);
    return alive;
}

static ssize_t on_stream_read(void *ctx, char *out, size_t max)
{
    struct live_subscriber *sub = ctx;

    if (sub->out_pos >= sub->out.len) {
        buf_reset(&sub->out);
        sub->out_pos = 0;
        if (!wait_for_output(sub))
            return -1;
    }

    size_t n = sub->out.len - sub->out_pos;
    if (n > max)
        n = max;
    memcpy(out, sub->out.data + sub->out_pos, n);
    sub->out_pos += n;
    return (ssize_t)n;
}

static void on_stream_close(void *ctx)
{
    struct live_subscriber *sub = ctx;
    struct live_stream *ls = sub->ls;
    bool freed;

    pthread_mutex_lock(&ls->mutex);
    freed = --ls->refs == 0;
    pthread_mutex_unlock(&ls->mutex);
    if (freed)
        live_stream_destroy(ls);
    buf_free(&sub->out);
    free(sub);
}

void live_stream_subscribe(struct live_stream *ls, int64_t org_id,
                           struct http_response *resp)
{
    pthread_mutex_lock(&ls->mutex);
    if (ls->shut) {
        pthread_mutex_unlock(&ls->mutex);
        http_response_error(resp, 503, "unavailable", NULL,
                            "the service is shutting down");
        return;
    }

    struct live_subscriber *sub = xcalloc(1, sizeof(*sub));
    sub->ls = ls;
    sub->org_id = org_id;
    sub->next_seq = ls->next_seq;
    ls->refs++;
    pthread_mutex_unlock(&ls->mutex);

    /* A first comment opens the stream at once for the client. */
    buf_append_str(&sub->out, "retry: 3000\n: connected\n\n");
    resp->status = 200;
    resp->content_type = "text/event-stream";
    http_response_add_header(resp, "Cache-Control", "no-cache");
    http_response_add_header(resp, "X-Accel-Buffering", "no");
    resp->stream_read = on_stream_read;
    resp->stream_close = on_stream_close;
    resp->stream_ctx = sub;
}
