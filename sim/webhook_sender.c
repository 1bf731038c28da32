/* Webhook delivery for the simulators: one thread gathers the front-end's
 * wire events into batches by its rule, worker threads POST them as the
 * front-end formats them, retrying on a schedule, with faults applied per
 * batch. */
#include "webhook_sender.h"

#include "sim_util.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "base/log.h"
#include "net/http_client.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const int64_t default_retry_delays_ms[] = {200, 500, 1000, 2000, 5000};

struct delivery {
    json_t *events; /* array */
    char *id;       /* shared by retries and duplicates */
    int attempt;
    int64_t due_ms; /* monotonic */
    struct delivery *next;
};

struct webhook_sender {
    char *url;
    struct webhook_format format;

    pthread_mutex_t mu;
    pthread_cond_t cond;
    json_t *queue;           /* events waiting to be batched */
    int64_t first_queued_ms; /* monotonic time the oldest queued arrived */
    struct delivery *deliveries;
    int in_flight;
    uint64_t rng;
    struct webhook_faults faults;
    struct webhook_stats stats;
    int first_failures;      /* toward the ban */
    int64_t banned_until_ms; /* monotonic; 0 when not banned */
    bool stopping;

    pthread_t batcher;
    pthread_t workers[WEBHOOK_IN_FLIGHT];
    int threads_started;
};

static void deadline_in(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

void webhook_post_add_header(struct webhook_post *post, const char *fmt, ...)
{
    va_list ap;
    char *header = NULL;

    if (post->header_count >= WEBHOOK_HEADERS_MAX)
        return;
    va_start(ap, fmt);
    if (vasprintf(&header, fmt, ap) < 0)
        abort();
    va_end(ap);
    post->headers[post->header_count++] = header;
    post->headers[post->header_count] = NULL;
}

static void post_clear(struct webhook_post *post)
{
    for (size_t i = 0; i < post->header_count; i++)
        free(post->headers[i]);
    free(post->body);
    memset(post, 0, sizeof(*post));
}

void webhook_sender_on_event(void *ctx, const struct sim_event *event)
{
    struct webhook_sender *ws = ctx;
    json_t *events = json_array();

    ws->format.on_event(ws->format.ctx, event, events);
    if (json_array_size(events) == 0) {
        json_decref(events);
        return;
    }
    pthread_mutex_lock(&ws->mu);
    if (json_array_size(ws->queue) == 0)
        ws->first_queued_ms = clock_mono_ms();
    json_array_extend(ws->queue, events);
    ws->stats.events_queued += (int64_t)json_array_size(events);
    pthread_cond_broadcast(&ws->cond);
    pthread_mutex_unlock(&ws->mu);
    json_decref(events);
}

static void shuffle(struct webhook_sender *ws, json_t *events)
{
    size_t n = json_array_size(events);
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(sim_rng_next(&ws->rng) % i);
        json_t *a = json_incref(json_array_get(events, i - 1));
        json_t *b = json_incref(json_array_get(events, j));
        json_array_set_new(events, i - 1, b);
        json_array_set_new(events, j, a);
    }
}

static void push_delivery(struct webhook_sender *ws, json_t *events,
                          const char *id, int64_t due_ms)
{
    struct delivery *d = xcalloc(1, sizeof(*d));
    struct delivery **tail = &ws->deliveries;

    d->events = events;
    d->id = xstrdup(id);
    d->due_ms = due_ms;
    while (*tail)
        tail = &(*tail)->next;
    *tail = d;
}

/* Turns up to a batch of queued events into deliveries, applying the
 * drop, duplicate, reorder and delay faults. Called with the lock held. */
static void make_batch(struct webhook_sender *ws)
{
    json_t *batch = json_array();
    size_t n = json_array_size(ws->queue);
    size_t max = ws->format.batch_max;
    size_t take = n < max ? n : max;
    int64_t due = clock_mono_ms() + ws->faults.delay_ms;

    for (size_t i = 0; i < take; i++)
        json_array_append(batch, json_array_get(ws->queue, i));
    for (size_t i = 0; i < take; i++)
        json_array_remove(ws->queue, 0);
    if (json_array_size(ws->queue) > 0)
        ws->first_queued_ms = clock_mono_ms();

    if (ws->faults.drop > 0 && sim_rng_unit(&ws->rng) < ws->faults.drop) {
        ws->stats.events_dropped += (int64_t)take;
        log_info("event=webhook_dropped events=%zu", take);
        json_decref(batch);
        return;
    }
    if (ws->faults.reorder)
        shuffle(ws, batch);
    char *id = sim_uuid_new();
    if (ws->faults.duplicate > 0 &&
        sim_rng_unit(&ws->rng) < ws->faults.duplicate) {
        ws->stats.events_duplicated += (int64_t)take;
        push_delivery(ws, json_deep_copy(batch), id, due);
    }
    push_delivery(ws, batch, id, due);
    free(id);
    pthread_cond_broadcast(&ws->cond);
}

static void *batcher_main(void *arg)
{
    struct webhook_sender *ws = arg;
    struct timespec ts;

    pthread_mutex_lock(&ws->mu);
    while (!ws->stopping) {
        size_t n = json_array_size(ws->queue);
        if (n == 0) {
            pthread_cond_wait(&ws->cond, &ws->mu);
            continue;
        }
        int64_t wait =
            ws->first_queued_ms + ws->format.collect_ms - clock_mono_ms();
        if (n < ws->format.batch_max && wait > 0) {
            deadline_in(&ts, wait);
            pthread_cond_timedwait(&ws->cond, &ws->mu, &ts);
            continue;
        }
        make_batch(ws);
    }
    pthread_mutex_unlock(&ws->mu);
    return NULL;
}

/* Takes the next delivery that is due (a random one under reorder), or
 * returns NULL and the ms until one may be. Called with the lock held. */
static struct delivery *take_due(struct webhook_sender *ws, int64_t *wait_ms)
{
    int64_t now = clock_mono_ms();
    size_t due_count = 0;
    int64_t soonest = 1000;

    *wait_ms = 1000;
    if (ws->faults.paused)
        return NULL;
    for (struct delivery *d = ws->deliveries; d; d = d->next) {
        if (d->due_ms <= now)
            due_count++;
        else if (d->due_ms - now < soonest)
            soonest = d->due_ms - now;
    }
    *wait_ms = soonest;
    if (due_count == 0)
        return NULL;

    size_t pick =
        ws->faults.reorder ? (size_t)(sim_rng_next(&ws->rng) % due_count) : 0;
    for (struct delivery **p = &ws->deliveries; *p; p = &(*p)->next) {
        if ((*p)->due_ms > now)
            continue;
        if (pick-- == 0) {
            struct delivery *d = *p;
            *p = d->next;
            d->next = NULL;
            return d;
        }
    }
    return NULL;
}

/* One POST of the batch as the front-end formats it; true when answered
 * 2xx. */
static bool post_batch(struct webhook_sender *ws, struct http_client *client,
                       struct delivery *d, const char *url)
{
    struct webhook_post post = {0};
    struct http_client_response resp;
    const char *fallback[] = {NULL};

    ws->format.on_format(ws->format.ctx, d->events, d->attempt, d->id, url,
                         &post);
    fs_result r = http_client_request(
        client, "POST", url,
        post.header_count ? (const char *const *)post.headers : fallback,
        post.body ? post.body : "", post.body_len, ws->format.timeout_ms,
        &resp);
    bool ok = r == FS_OK && resp.status >= 200 && resp.status < 300;
    if (!ok)
        log_info("event=webhook_failed status=%ld result=%s attempt=%d "
                 "events=%zu",
                 resp.status, fs_result_name(r), d->attempt,
                 json_array_size(d->events));
    http_client_response_free(&resp);
    post_clear(&post);
    return ok;
}

static void delivery_free(struct delivery *d)
{
    json_decref(d->events);
    free(d->id);
    free(d);
}

static void finish_delivery(struct webhook_sender *ws, struct delivery *d,
                            bool ok)
{
    ws->in_flight--;
    if (ok) {
        ws->stats.webhooks_sent++;
        ws->stats.events_sent += (int64_t)json_array_size(d->events);
        goto done;
    }
    ws->stats.webhooks_failed++;
    if (d->attempt == 0 && ws->format.ban_after_failures > 0 &&
        ++ws->first_failures >= ws->format.ban_after_failures) {
        ws->first_failures = 0;
        ws->banned_until_ms = clock_mono_ms() + ws->format.ban_ms;
        ws->stats.bans++;
        log_warn("event=webhook_banned ban_ms=%" PRId64, ws->format.ban_ms);
    }
    d->attempt++;
    if (d->attempt >= ws->format.max_attempts) {
        ws->stats.webhooks_given_up++;
        log_warn("event=webhook_given_up events=%zu attempts=%d",
                 json_array_size(d->events), d->attempt);
        goto done;
    }
    size_t last = ws->format.retry_delay_count - 1;
    size_t idx =
        (size_t)(d->attempt - 1) < last ? (size_t)(d->attempt - 1) : last;
    d->due_ms = clock_mono_ms() + ws->format.retry_delays_ms[idx];
    d->next = ws->deliveries;
    ws->deliveries = d;
    pthread_cond_broadcast(&ws->cond);
    return;
done:
    delivery_free(d);
    pthread_cond_broadcast(&ws->cond);
}

static void *worker_main(void *arg)
{
    struct webhook_sender *ws = arg;
    struct http_client *client = http_client_new();
    struct timespec ts;
    int64_t wait_ms;

    pthread_mutex_lock(&ws->mu);
    while (!ws->stopping) {
        struct delivery *d = take_due(ws, &wait_ms);
        if (!d) {
            deadline_in(&ts, wait_ms > 0 ? wait_ms : 1);
            pthread_cond_timedwait(&ws->cond, &ws->mu, &ts);
            continue;
        }
        if (ws->banned_until_ms > clock_mono_ms()) {
            ws->stats.events_lost_banned += (int64_t)json_array_size(d->events);
            log_info("event=webhook_lost_banned events=%zu",
                     json_array_size(d->events));
            delivery_free(d);
            pthread_cond_broadcast(&ws->cond);
            continue;
        }
        if (!ws->url) {
            /* No webhook registered: nobody to tell. */
            ws->stats.events_dropped += (int64_t)json_array_size(d->events);
            delivery_free(d);
            pthread_cond_broadcast(&ws->cond);
            continue;
        }
        char *url = xstrdup(ws->url);
        ws->in_flight++;
        pthread_mutex_unlock(&ws->mu);
        bool ok = post_batch(ws, client, d, url);
        free(url);
        pthread_mutex_lock(&ws->mu);
        finish_delivery(ws, d, ok);
    }
    pthread_mutex_unlock(&ws->mu);
    http_client_free(client);
    return NULL;
}

fs_result webhook_sender_start(const struct webhook_sender_config *config,
                               struct webhook_sender **out)
{
    struct webhook_sender *ws = xcalloc(1, sizeof(*ws));
    pthread_condattr_t attr;

    ws->url = config->url ? xstrdup(config->url) : NULL;
    ws->format = *config->format;
    if (ws->format.batch_max == 0)
        ws->format.batch_max = 1;
    if (ws->format.max_attempts <= 0)
        ws->format.max_attempts = WEBHOOK_MAX_ATTEMPTS;
    if (ws->format.timeout_ms <= 0)
        ws->format.timeout_ms = WEBHOOK_TIMEOUT_MS;
    if (!ws->format.retry_delays_ms || ws->format.retry_delay_count == 0) {
        ws->format.retry_delays_ms = default_retry_delays_ms;
        ws->format.retry_delay_count = sizeof(default_retry_delays_ms) /
                                       sizeof(default_retry_delays_ms[0]);
    }
    ws->rng = config->seed;
    ws->queue = json_array();
    pthread_mutex_init(&ws->mu, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&ws->cond, &attr);
    pthread_condattr_destroy(&attr);

    if (pthread_create(&ws->batcher, NULL, batcher_main, ws) != 0)
        goto fail;
    ws->threads_started = 1;
    for (int i = 0; i < WEBHOOK_IN_FLIGHT; i++) {
        if (pthread_create(&ws->workers[i], NULL, worker_main, ws) != 0)
            goto fail;
        ws->threads_started++;
    }
    *out = ws;
    return FS_OK;
fail:
    webhook_sender_stop(ws);
    return FS_ERR_IO;
}

void webhook_sender_stop(struct webhook_sender *ws)
{
    if (!ws)
        return;
    pthread_mutex_lock(&ws->mu);
    ws->stopping = true;
    pthread_cond_broadcast(&ws->cond);
    pthread_mutex_unlock(&ws->mu);
    if (ws->threads_started > 0)
        pthread_join(ws->batcher, NULL);
    for (int i = 0; i + 1 < ws->threads_started; i++)
        pthread_join(ws->workers[i], NULL);

    while (ws->deliveries) {
        struct delivery *d = ws->deliveries;
        ws->deliveries = d->next;
        delivery_free(d);
    }
    json_decref(ws->queue);
    pthread_cond_destroy(&ws->cond);
    pthread_mutex_destroy(&ws->mu);
    free(ws->url);
    free(ws);
}

void webhook_sender_set_url(struct webhook_sender *ws, const char *url)
{
    pthread_mutex_lock(&ws->mu);
    free(ws->url);
    ws->url = url ? xstrdup(url) : NULL;
    pthread_cond_broadcast(&ws->cond);
    pthread_mutex_unlock(&ws->mu);
}

void webhook_sender_get_faults(struct webhook_sender *ws,
                               struct webhook_faults *out)
{
    pthread_mutex_lock(&ws->mu);
    *out = ws->faults;
    pthread_mutex_unlock(&ws->mu);
}

void webhook_sender_set_faults(struct webhook_sender *ws,
                               const struct webhook_faults *faults)
{
    pthread_mutex_lock(&ws->mu);
    ws->faults = *faults;
    pthread_cond_broadcast(&ws->cond);
    pthread_mutex_unlock(&ws->mu);
}

static int64_t pending_locked(const struct webhook_sender *ws)
{
    int64_t n = ws->in_flight;
    for (const struct delivery *d = ws->deliveries; d; d = d->next)
        n++;
    return n;
}

void webhook_sender_get_stats(struct webhook_sender *ws,
                              struct webhook_stats *out)
{
    pthread_mutex_lock(&ws->mu);
    *out = ws->stats;
    out->pending_deliveries = pending_locked(ws);
    pthread_mutex_unlock(&ws->mu);
}

void webhook_sender_reset_stats(struct webhook_sender *ws)
{
    pthread_mutex_lock(&ws->mu);
    memset(&ws->stats, 0, sizeof(ws->stats));
    pthread_mutex_unlock(&ws->mu);
}

bool webhook_sender_idle(struct webhook_sender *ws)
{
    pthread_mutex_lock(&ws->mu);
    bool idle = json_array_size(ws->queue) == 0 && pending_locked(ws) == 0;
    pthread_mutex_unlock(&ws->mu);
    return idle;
}
