/* HubSpot webhook delivery for the simulator: one thread gathers events
 * into batches (at most 100, at most 5 ms), worker threads POST them signed
 * v1 and v3, retrying on a fixed schedule, with faults applied per batch. */
#include "webhook_sender.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "base/crypto.h"
#include "base/log.h"
#include "net/http_client.h"

#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Fixed subscription ids, one per event type. */
enum {
    SUB_CREATION = 3001,
    SUB_PROPERTY_CHANGE = 3002,
    SUB_DELETION = 3003,
    SUB_RESTORE = 3004,
    SUB_MERGE = 3005,
};

/* Wait after failed attempt n before the next (the last entry repeats). */
static const int64_t retry_delays_ms[] = {200, 500, 1000, 2000, 5000};

struct delivery {
    json_t *events; /* array */
    int attempt;
    int64_t due_ms; /* monotonic */
    struct delivery *next;
};

struct webhook_sender {
    char *url;
    char *secret;
    int64_t app_id;
    int64_t portal_id;

    pthread_mutex_t mu;
    pthread_cond_t cond;
    json_t *queue;           /* events waiting to be batched */
    int64_t first_queued_ms; /* monotonic time the oldest queued arrived */
    struct delivery *deliveries;
    int in_flight;
    int64_t next_event_id;
    uint64_t rng;
    struct webhook_faults faults;
    struct webhook_stats stats;
    bool stopping;

    pthread_t batcher;
    pthread_t workers[WEBHOOK_IN_FLIGHT];
    int threads_started;
};

static uint64_t rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static double rng_unit(uint64_t *state)
{
    return (double)(rng_next(state) >> 11) * (1.0 / 9007199254740992.0);
}

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

char *webhook_sign_v3(const char *secret, const char *method, const char *url,
                      const char *body, size_t body_len, const char *timestamp)
{
    uint8_t mac[CRYPTO_SHA256_LEN];
    struct buf msg = {0};

    buf_append_str(&msg, method);
    buf_append_str(&msg, url);
    buf_append(&msg, body, body_len);
    buf_append_str(&msg, timestamp);
    crypto_hmac_sha256(secret, strlen(secret), msg.data, msg.len, mac);
    buf_free(&msg);
    return crypto_base64(mac, sizeof(mac));
}

static char *sign_v1(const char *secret, const char *body, size_t body_len)
{
    uint8_t digest[CRYPTO_SHA256_LEN];
    struct buf msg = {0};

    buf_append_str(&msg, secret);
    buf_append(&msg, body, body_len);
    crypto_sha256(msg.data, msg.len, digest);
    buf_free(&msg);
    return crypto_hex(digest, sizeof(digest));
}

static const char *subscription_type(enum sim_event_kind kind, int *sub_id)
{
    switch (kind) {
    case SIM_EV_CREATION:
        *sub_id = SUB_CREATION;
        return "deal.creation";
    case SIM_EV_PROPERTY_CHANGE:
        *sub_id = SUB_PROPERTY_CHANGE;
        return "deal.propertyChange";
    case SIM_EV_DELETION:
        *sub_id = SUB_DELETION;
        return "deal.deletion";
    case SIM_EV_RESTORE:
        *sub_id = SUB_RESTORE;
        return "deal.restore";
    case SIM_EV_MERGE:
        *sub_id = SUB_MERGE;
        return "deal.merge";
    }
    *sub_id = 0;
    return "deal.unknown";
}

static json_t *event_json(struct webhook_sender *ws, const struct sim_event *ev,
                          int64_t event_id)
{
    int sub_id;
    const char *type = subscription_type(ev->kind, &sub_id);
    json_t *obj = json_object();

    json_object_set_new(obj, "eventId", json_integer(event_id));
    json_object_set_new(obj, "subscriptionId", json_integer(sub_id));
    json_object_set_new(obj, "portalId", json_integer(ws->portal_id));
    json_object_set_new(obj, "appId", json_integer(ws->app_id));
    json_object_set_new(obj, "occurredAt", json_integer(ev->occurred_at));
    json_object_set_new(obj, "subscriptionType", json_string(type));
    json_object_set_new(obj, "attemptNumber", json_integer(0));
    json_object_set_new(obj, "objectId",
                        json_integer((json_int_t)ev->object_id));
    if (ev->kind == SIM_EV_PROPERTY_CHANGE) {
        json_object_set_new(obj, "propertyName",
                            json_string(ev->property_name));
        json_object_set_new(obj, "propertyValue",
                            json_string(ev->property_value));
    }
    if (ev->kind == SIM_EV_CREATION)
        json_object_set_new(obj, "changeFlag", json_string("CREATED"));
    if (ev->kind == SIM_EV_MERGE) {
        json_object_set_new(obj, "primaryObjectId",
                            json_integer((json_int_t)ev->object_id));
        json_object_set_new(obj, "mergedObjectIds",
                            json_pack("[I]", (json_int_t)ev->merged_id));
        json_object_set_new(obj, "newObjectId",
                            json_integer((json_int_t)ev->object_id));
        json_object_set_new(obj, "numberOfPropertiesMoved",
                            json_integer(ev->properties_moved));
    }
    json_object_set_new(obj, "changeSource",
                        json_string(sim_source_name(ev->source)));
    json_object_set_new(obj, "sourceId", json_string(ev->source_id));
    return obj;
}

void webhook_sender_on_event(void *ctx, const struct sim_event *event)
{
    struct webhook_sender *ws = ctx;

    pthread_mutex_lock(&ws->mu);
    json_t *obj = event_json(ws, event, ws->next_event_id++);
    if (json_array_size(ws->queue) == 0)
        ws->first_queued_ms = clock_mono_ms();
    json_array_append_new(ws->queue, obj);
    ws->stats.events_queued++;
    pthread_cond_broadcast(&ws->cond);
    pthread_mutex_unlock(&ws->mu);
}

static void shuffle(struct webhook_sender *ws, json_t *events)
{
    size_t n = json_array_size(events);
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(rng_next(&ws->rng) % i);
        json_t *a = json_incref(json_array_get(events, i - 1));
        json_t *b = json_incref(json_array_get(events, j));
        json_array_set_new(events, i - 1, b);
        json_array_set_new(events, j, a);
    }
}

static void push_delivery(struct webhook_sender *ws, json_t *events,
                          int attempt, int64_t due_ms)
{
    struct delivery *d = xcalloc(1, sizeof(*d));
    struct delivery **tail = &ws->deliveries;

    d->events = events;
    d->attempt = attempt;
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
    size_t take = n < WEBHOOK_BATCH_MAX ? n : WEBHOOK_BATCH_MAX;
    int64_t due = clock_mono_ms() + ws->faults.delay_ms;

    for (size_t i = 0; i < take; i++)
        json_array_append(batch, json_array_get(ws->queue, i));
    for (size_t i = 0; i < take; i++)
        json_array_remove(ws->queue, 0);
    if (json_array_size(ws->queue) > 0)
        ws->first_queued_ms = clock_mono_ms();

    if (ws->faults.drop > 0 && rng_unit(&ws->rng) < ws->faults.drop) {
        ws->stats.events_dropped += (int64_t)take;
        log_info("event=webhook_dropped events=%zu", take);
        json_decref(batch);
        return;
    }
    if (ws->faults.reorder)
        shuffle(ws, batch);
    if (ws->faults.duplicate > 0 && rng_unit(&ws->rng) < ws->faults.duplicate) {
        ws->stats.events_duplicated += (int64_t)take;
        push_delivery(ws, json_deep_copy(batch), 0, due);
    }
    push_delivery(ws, batch, 0, due);
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
            ws->first_queued_ms + WEBHOOK_COLLECT_MS - clock_mono_ms();
        if (n < WEBHOOK_BATCH_MAX && wait > 0) {
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
        ws->faults.reorder ? (size_t)(rng_next(&ws->rng) % due_count) : 0;
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

/* One POST of the batch; true when answered 2xx. */
static bool post_batch(struct webhook_sender *ws, struct http_client *client,
                       struct delivery *d)
{
    size_t i;
    json_t *ev;
    char ts_text[32];
    bool ok = false;
    struct http_client_response resp;

    json_array_foreach(d->events, i, ev)
        json_object_set_new(ev, "attemptNumber", json_integer(d->attempt));
    char *body = json_dumps(d->events, JSON_COMPACT | JSON_PRESERVE_ORDER);
    size_t body_len = strlen(body);
    snprintf(ts_text, sizeof(ts_text), "%" PRId64, clock_now_ms());
    char *v3 =
        webhook_sign_v3(ws->secret, "POST", ws->url, body, body_len, ts_text);
    char *v1 = sign_v1(ws->secret, body, body_len);
    char *h_v3 = xasprintf("X-HubSpot-Signature-v3: %s", v3);
    char *h_ts = xasprintf("X-HubSpot-Request-Timestamp: %s", ts_text);
    char *h_v1 = xasprintf("X-HubSpot-Signature: %s", v1);
    const char *headers[] = {"Content-Type: application/json",
                             h_v3,
                             h_ts,
                             "X-HubSpot-Signature-Version: v1",
                             h_v1,
                             "User-Agent: HubSpot Connect 2.0 (crmsim)",
                             NULL};

    fs_result r = http_client_request(client, "POST", ws->url, headers, body,
                                      body_len, WEBHOOK_TIMEOUT_MS, &resp);
    ok = r == FS_OK && resp.status >= 200 && resp.status < 300;
    if (!ok)
        log_info("event=webhook_failed status=%ld result=%s attempt=%d "
                 "events=%zu",
                 resp.status, fs_result_name(r), d->attempt,
                 json_array_size(d->events));
    http_client_response_free(&resp);
    free(h_v1);
    free(h_ts);
    free(h_v3);
    free(v1);
    free(v3);
    free(body);
    return ok;
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
    d->attempt++;
    if (d->attempt >= WEBHOOK_MAX_ATTEMPTS) {
        ws->stats.webhooks_given_up++;
        log_warn("event=webhook_given_up events=%zu attempts=%d",
                 json_array_size(d->events), d->attempt);
        goto done;
    }
    size_t last = sizeof(retry_delays_ms) / sizeof(retry_delays_ms[0]) - 1;
    size_t idx =
        (size_t)(d->attempt - 1) < last ? (size_t)(d->attempt - 1) : last;
    d->due_ms = clock_mono_ms() + retry_delays_ms[idx];
    d->next = ws->deliveries;
    ws->deliveries = d;
    pthread_cond_broadcast(&ws->cond);
    return;
done:
    json_decref(d->events);
    free(d);
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
        ws->in_flight++;
        pthread_mutex_unlock(&ws->mu);
        bool ok = post_batch(ws, client, d);
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

    ws->url = xstrdup(config->url);
    ws->secret = xstrdup(config->client_secret);
    ws->app_id = config->app_id;
    ws->portal_id = config->portal_id;
    ws->rng = config->seed;
    ws->queue = json_array();
    ws->next_event_id = 1000001;
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
        json_decref(d->events);
        free(d);
    }
    json_decref(ws->queue);
    pthread_cond_destroy(&ws->cond);
    pthread_mutex_destroy(&ws->mu);
    free(ws->url);
    free(ws->secret);
    free(ws);
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
