/* Webhook ingest with group commit. HTTP threads verify a delivery and
 * queue its events; one committer thread writes everything queued in one
 * transaction and then releases all the waiting deliveries, so the 2xx
 * goes out only after the events are durable. */
#include "services/ingest.h"

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/failpoint.h"
#include "base/json_text.h"
#include "base/log.h"
#include "providers/provider.h"
#include "services/app.h"
#include "services/metrics.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Deepest JSON nesting a delivery may have (CRMs send 3 to 5 levels);
 * checked before any parser sees the body. */
#define INGEST_MAX_DEPTH 32
/* How long a delivery waits for its commit before answering 503. */
#define INGEST_COMMIT_WAIT_MS 4000

struct queued_delivery {
    struct inbox_event *events;
    size_t count;
    fs_result result;
    size_t inserted;
    bool done;
    bool abandoned; /* the HTTP thread gave up waiting: committer frees */
    struct queued_delivery *next;
};

struct ingest {
    struct app *app;
    pthread_mutex_t lock;
    pthread_cond_t has_work;
    pthread_cond_t committed;
    struct queued_delivery *head;
    struct queued_delivery *tail;
    size_t queued_events;
    size_t max_queued; /* past it deliveries are shed with a retryable
                        * status, so memory stays bounded */
    bool stopping;
    pthread_t thread;
};

static void delivery_free(struct queued_delivery *d)
{
    store_inbox_events_free(d->events, d->count);
    free(d);
}

static fs_result commit_all(struct store *store, struct queued_delivery *list)
{
    fs_result result = store_begin(store);
    if (result != FS_OK)
        return result;
    for (struct queued_delivery *d = list; d; d = d->next) {
        result = store_inbox_add(store, d->events, d->count, &d->inserted);
        if (result != FS_OK) {
            store_rollback(store);
            return result;
        }
    }
    failpoint("ingest.before_commit");
    result = store_commit(store);
    if (result != FS_OK)
        store_rollback(store);
    else
        failpoint("ingest.committed");
    return result;
}

static void record_metrics(struct ingest *ingest,
                           const struct queued_delivery *d)
{
    if (d->result != FS_OK || d->count == 0)
        return;
    struct metrics *m = app_metrics(ingest->app);
    int64_t conn = d->events[0].connection_id;
    metrics_add(m, METRIC_EVENTS_RECEIVED, conn, (int64_t)d->inserted);
    metrics_add(m, METRIC_EVENTS_DUPLICATE, conn,
                (int64_t)(d->count - d->inserted));
}

static void *committer_main(void *arg)
{
    struct ingest *ingest = arg;
    struct store *store = app_store_acquire(ingest->app);

    pthread_mutex_lock(&ingest->lock);
    for (;;) {
        while (!ingest->head && !ingest->stopping)
            pthread_cond_wait(&ingest->has_work, &ingest->lock);
        if (!ingest->head)
            break;
        struct queued_delivery *list = ingest->head;
        ingest->head = ingest->tail = NULL;
        pthread_mutex_unlock(&ingest->lock);

        fs_result result = store ? commit_all(store, list) : FS_ERR_DB;
        if (result != FS_OK)
            log_error("event=inbox_commit_failed result=%s detail=\"%s\"",
                      fs_result_name(result), store_last_error(store));

        pthread_mutex_lock(&ingest->lock);
        while (list) {
            struct queued_delivery *d = list;
            list = d->next;
            d->result = result;
            d->done = true;
            ingest->queued_events -= d->count;
            record_metrics(ingest, d);
            if (d->abandoned)
                delivery_free(d);
        }
        pthread_cond_broadcast(&ingest->committed);
        pthread_mutex_unlock(&ingest->lock);
        if (result == FS_OK)
            app_wake_reconciler(ingest->app);
        pthread_mutex_lock(&ingest->lock);
    }
    pthread_mutex_unlock(&ingest->lock);
    app_store_release(ingest->app, store);
    return NULL;
}

struct ingest *ingest_new(struct app *app)
{
    struct ingest *ingest = xcalloc(1, sizeof(*ingest));
    ingest->app = app;
    ingest->max_queued = app_config(app)->ingest_max_queued;
    if (ingest->max_queued == 0)
        ingest->max_queued = 200000;
    pthread_mutex_init(&ingest->lock, NULL);
    pthread_cond_init(&ingest->has_work, NULL);
    pthread_cond_init(&ingest->committed, NULL);
    pthread_create(&ingest->thread, NULL, committer_main, ingest);
    return ingest;
}

void ingest_free(struct ingest *ingest)
{
    if (!ingest)
        return;
    pthread_mutex_lock(&ingest->lock);
    ingest->stopping = true;
    pthread_cond_signal(&ingest->has_work);
    pthread_mutex_unlock(&ingest->lock);
    pthread_join(ingest->thread, NULL);
    pthread_cond_destroy(&ingest->has_work);
    pthread_cond_destroy(&ingest->committed);
    pthread_mutex_destroy(&ingest->lock);
    free(ingest);
}

/* Queues the events and waits for their commit. Takes the events. */
static fs_result commit_events(struct ingest *ingest,
                               struct inbox_event *events, size_t count,
                               size_t *inserted)
{
    struct queued_delivery *d = xcalloc(1, sizeof(*d));
    struct timespec deadline;
    fs_result result;

    d->events = events;
    d->count = count;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += INGEST_COMMIT_WAIT_MS / 1000;

    pthread_mutex_lock(&ingest->lock);
    if (ingest->stopping ||
        ingest->queued_events + count > ingest->max_queued) {
        pthread_mutex_unlock(&ingest->lock);
        delivery_free(d);
        return FS_ERR_BUSY;
    }
    ingest->queued_events += count;
    if (ingest->tail)
        ingest->tail->next = d;
    else
        ingest->head = d;
    ingest->tail = d;
    pthread_cond_signal(&ingest->has_work);

    int rc = 0;
    while (!d->done && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&ingest->committed, &ingest->lock,
                                    &deadline);
    if (!d->done) {
        /* The committer still owns it and frees it when done. */
        d->abandoned = true;
        pthread_mutex_unlock(&ingest->lock);
        return FS_ERR_TIMEOUT;
    }
    pthread_mutex_unlock(&ingest->lock);
    result = d->result;
    *inserted = d->inserted;
    delivery_free(d);
    return result;
}

static const char *header_lookup(const void *ctx, const char *name)
{
    return http_request_header(ctx, name);
}

/* The URL the CRM called, rebuilt as it signed it. */
static char *called_url(struct app *app, const struct http_request *req)
{
    const char *proto = http_request_header(req, "X-Forwarded-Proto");
    const char *host = http_request_header(req, "X-Forwarded-Host");
    return xasprintf("%s://%s%s",
                     proto ? proto : app_config(app)->public_scheme,
                     host ? host : req->host, req->raw_url);
}

struct route {
    const char *account_id;
    const char *app_id;
    struct connection conn;
    fs_result found;
};

/* Looks up each distinct (account, app) once per delivery. */
static struct route *route_for(struct store *store, const char *provider,
                               struct route *routes, size_t *n_routes,
                               const struct webhook_item *item)
{
    for (size_t i = 0; i < *n_routes; i++) {
        if (strcmp(routes[i].account_id, item->account_id) == 0 &&
            strcmp(routes[i].app_id, item->app_id) == 0)
            return &routes[i];
    }
    struct route *r = &routes[(*n_routes)++];
    r->account_id = item->account_id;
    r->app_id = item->app_id;
    r->found = store_connection_find_route(
        store, provider, item->account_id,
        item->app_id[0] ? item->app_id : NULL, &r->conn);
    return r;
}

static void answer_rejected(struct app *app, struct http_response *resp,
                            int status, const char *code, const char *msg,
                            const char *provider)
{
    metrics_add(app_metrics(app), METRIC_WEBHOOKS_REJECTED, 0, 1);
    log_warn("event=webhook_rejected provider=%s status=%d reason=%s", provider,
             status, code);
    http_response_error(resp, status, code, NULL, msg);
}

/* The connection named by a per-connection webhook URL, when it is one of
 * that provider. */
static fs_result connection_by_url(struct store *store, const char *provider,
                                   const char *id_text, struct connection *out)
{
    char *end = NULL;
    long long id = strtoll(id_text, &end, 10);

    memset(out, 0, sizeof(*out));
    if (!*id_text || *end || id <= 0)
        return FS_ERR_NOT_FOUND;
    fs_result result = store_connection_get(store, id, out);
    if (result == FS_OK && strcmp(out->provider, provider) != 0) {
        connection_clear(out);
        result = FS_ERR_NOT_FOUND;
    }
    return result;
}

/* Hands each event to its connection: the one in the URL, or the one its
 * account and app ids route to. Events of a connection that is no longer
 * active (the org switched CRM) are counted in *ignored and dropped.
 * Returns the connection whose secret verifies the delivery (the first
 * routed), or NULL when none. */
static const struct connection *
route_events(struct store *store, const struct provider *provider,
             const char *url_id, struct webhook_item *items, size_t count,
             struct route *routes, size_t *n_routes, struct inbox_event *events,
             size_t *accepted, size_t *ignored)
{
    const struct connection *signer = NULL;

    for (size_t i = 0; i < count; i++) {
        struct route *r = NULL;
        if (url_id) {
            r = &routes[0];
            if (*n_routes == 0) {
                r->found =
                    connection_by_url(store, provider->name, url_id, &r->conn);
                *n_routes = 1;
            }
        } else {
            r = route_for(store, provider->name, routes, n_routes, &items[i]);
        }
        if (r->found != FS_OK)
            continue;
        if (!signer)
            signer = &r->conn;
        if (!r->conn.active) {
            (*ignored)++;
            continue;
        }
        events[*accepted].connection_id = r->conn.id;
        events[*accepted].dedup_key = items[i].dedup_key;
        events[*accepted].body = items[i].body;
        items[i].dedup_key = items[i].body = NULL;
        (*accepted)++;
    }
    return signer;
}

/* A delivery the CRM must not see fail (it bans failing webhooks): taken
 * with a 2xx and a log line, nothing stored. */
static void answer_ignored(struct app *app, struct http_response *resp,
                           const char *reason, const char *provider)
{
    metrics_add(app_metrics(app), METRIC_WEBHOOKS_REJECTED, 0, 1);
    log_warn("event=webhook_ignored provider=%s reason=%s", provider, reason);
    http_response_set_body(
        resp, 200, xasprintf("{\"accepted\":0,\"ignored\":\"%s\"}", reason));
}

/* Answers a delivery that could not be taken: with the error status, or
 * for a CRM that bans failing webhooks with a 2xx unless the status says
 * the credentials are wrong. */
static void answer_refused(struct app *app, struct http_response *resp,
                           const struct provider *provider, int status,
                           const char *code, const char *msg)
{
    if (provider->bans_failing_hooks && status != 401)
        answer_ignored(app, resp, code, provider->name);
    else
        answer_rejected(app, resp, status, code, msg, provider->name);
}

/* Checks a delivery to a per-connection URL against that connection's
 * credentials, answering it when that fails. */
static fs_result verify_by_url(struct app *app, const struct provider *provider,
                               const char *url_id,
                               const struct webhook_request *wreq,
                               struct http_response *resp)
{
    struct connection conn = {0};
    struct store *store = app_store_acquire(app);
    fs_result result = FS_ERR_DB;

    if (store)
        result = connection_by_url(store, provider->name, url_id, &conn);
    app_store_release(app, store);
    if (result == FS_ERR_NOT_FOUND) {
        answer_refused(app, resp, provider, 404, "unknown_account",
                       "no connection for this webhook");
    } else if (result != FS_OK) {
        http_response_error(resp, 503, "unavailable", NULL,
                            "store unavailable, retry later");
    } else if (provider->verify_webhook(&conn, wreq, clock_now_ms()) != FS_OK) {
        answer_rejected(app, resp, 401, "bad_signature",
                        "credentials do not match", provider->name);
        result = FS_ERR_AUTH;
    }
    connection_clear(&conn);
    return result;
}

void ingest_handle_webhook(struct app *app, struct ingest *ingest,
                           const char *route, const struct http_request *req,
                           struct http_response *resp)
{
    struct webhook_item *items = NULL;
    size_t count = 0, n_routes = 0, accepted = 0, inserted = 0, ignored = 0;
    struct route *routes = NULL;
    struct inbox_event *events = NULL;
    struct store *store = NULL;
    char *url = NULL;
    char *provider_name = NULL;
    const char *url_id = NULL;

    /* "<provider>" or "<provider>/<connection id>". */
    const char *slash = strchr(route, '/');
    provider_name =
        slash ? xstrndup(route, (size_t)(slash - route)) : xstrdup(route);
    const struct provider *provider = provider_by_name(provider_name);
    if (slash)
        url_id = slash + 1;
    if (!provider || (provider->webhooks_by_url != (url_id != NULL))) {
        http_response_error(resp, 404, "not_found", NULL,
                            "no such webhook receiver");
        goto out;
    }

    if (json_text_depth(req->body, req->body_len) > INGEST_MAX_DEPTH) {
        answer_rejected(app, resp, 400, "too_deep",
                        "delivery is nested too deep", provider_name);
        goto out;
    }
    url = called_url(app, req);
    struct webhook_request wreq = {
        .method = req->method,
        .url = url,
        .body = req->body,
        .body_len = req->body_len,
        .header = header_lookup,
        .header_ctx = req,
    };
    /* A connection named by the URL checks the credentials before the
     * body is looked at. */
    if (url_id) {
        fs_result result = verify_by_url(app, provider, url_id, &wreq, resp);
        if (result != FS_OK)
            goto out;
    }
    fs_result result = provider->split_webhook(&wreq, &items, &count);
    if (result != FS_OK) {
        answer_refused(
            app, resp, provider, result == FS_ERR_TOO_LARGE ? 413 : 400,
            fs_result_name(result), "delivery is not a valid event batch");
        goto out;
    }
    store = app_store_acquire(app);
    if (!store) {
        http_response_error(resp, 503, "unavailable", NULL,
                            "store unavailable, retry later");
        goto out;
    }

    routes = xcalloc(count, sizeof(*routes));
    events = xcalloc(count, sizeof(*events));
    const struct connection *signer =
        route_events(store, provider, url_id, items, count, routes, &n_routes,
                     events, &accepted, &ignored);
    app_store_release(app, store);
    store = NULL;
    if (!signer) {
        answer_refused(app, resp, provider, 404, "unknown_account",
                       "no connection for this account");
        goto out;
    }

    result = provider->verify_webhook(signer, &wreq, clock_now_ms());
    if (result != FS_OK) {
        answer_rejected(app, resp, 401, "bad_signature",
                        "signature does not match", provider_name);
        goto out;
    }
    if (ignored > 0)
        log_info("event=webhook_events_ignored provider=%s "
                 "reason=connection_inactive count=%zu",
                 provider_name, ignored);
    if (accepted + ignored < count)
        log_warn("event=webhook_events_unrouted provider=%s count=%zu",
                 provider_name, count - accepted - ignored);

    if (accepted > 0) {
        result = commit_events(ingest, events, accepted, &inserted);
        events = NULL;
    }
    if (result != FS_OK) {
        log_warn("event=webhook_shed provider=%s result=%s events=%zu",
                 provider_name, fs_result_name(result), accepted);
        http_response_error(resp, 503, "busy", NULL, "not stored, retry later");
        http_response_add_header(resp, "Retry-After", "1");
        goto out;
    }
    log_info("event=webhook_accepted provider=%s events=%zu new=%zu",
             provider_name, accepted, inserted);
    http_response_set_body(
        resp, 200,
        xasprintf("{\"accepted\":%zu,\"new\":%zu,\"ignored\":%zu}", accepted,
                  inserted, ignored));

out:
    if (events)
        store_inbox_events_free(events, accepted);
    for (size_t i = 0; i < n_routes; i++)
        connection_clear(&routes[i].conn);
    free(routes);
    free(url);
    free(provider_name);
    webhook_items_free(items, count);
    app_store_release(app, store);
}
