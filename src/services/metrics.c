/* Per-connection counters behind one mutex, and the GET /metrics page in
 * Prometheus text format with gauges read from the store at scrape time. */
#include "services/metrics.h"

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "services/app.h"
#include "store/store.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct metric_def {
    const char *name;
    const char *help;
};

static const struct metric_def metric_defs[METRIC_COUNT] = {
    [METRIC_EVENTS_RECEIVED] = {"fieldsync_events_received_total",
                                "Webhook events durably accepted."},
    [METRIC_EVENTS_DUPLICATE] = {"fieldsync_events_duplicate_total",
                                 "Webhook events already in the inbox."},
    [METRIC_EVENTS_APPLIED] = {"fieldsync_events_applied_total",
                               "Inbox events merged into records."},
    [METRIC_EVENTS_IGNORED] = {"fieldsync_events_ignored_total",
                               "Events about nothing fieldsync syncs."},
    [METRIC_WEBHOOKS_REJECTED] = {"fieldsync_webhooks_rejected_total",
                                  "Webhook deliveries refused."},
    [METRIC_CONFLICTS] = {"fieldsync_conflicts_total",
                          "CRM changes that met a local edit not yet "
                          "confirmed (the later of the two wins)."},
    [METRIC_ECHOES] = {"fieldsync_echoes_total",
                       "Our own CRM writes coming back as events."},
    [METRIC_PUSH_CALLS] = {"fieldsync_push_calls_total",
                           "CRM write calls made."},
    [METRIC_PUSH_RECORDS] = {"fieldsync_push_records_total",
                             "Records written to the CRM."},
    [METRIC_PUSH_FAILURES] = {"fieldsync_push_failures_total",
                              "Records whose CRM write failed."},
    [METRIC_READ_CALLS] = {"fieldsync_read_calls_total",
                           "CRM read calls made."},
    [METRIC_BACKSTOP_PASSES] = {"fieldsync_backstop_passes_total",
                                "Backstop passes completed."},
};

struct metrics_conn {
    int64_t connection_id;
    int64_t values[METRIC_COUNT];
};

/* A handful of connections per process: a sorted array is enough, and it
 * only grows when a connection is first seen. */
struct metrics {
    pthread_mutex_t mutex;
    struct metrics_conn *conns;
    size_t count;
    size_t cap;
};

struct metrics *metrics_new(void)
{
    struct metrics *m = xcalloc(1, sizeof(*m));
    pthread_mutex_init(&m->mutex, NULL);
    return m;
}

void metrics_free(struct metrics *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->mutex);
    free(m->conns);
    free(m);
}

/* Index of the connection, or where it would be inserted. */
static size_t find_slot(const struct metrics *m, int64_t connection_id)
{
    size_t lo = 0;
    size_t hi = m->count;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->conns[mid].connection_id < connection_id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

void metrics_add(struct metrics *m, enum metric which, int64_t connection_id,
                 int64_t delta)
{
    if (!m || (unsigned)which >= METRIC_COUNT)
        return;

    pthread_mutex_lock(&m->mutex);
    size_t i = find_slot(m, connection_id);
    if (i == m->count || m->conns[i].connection_id != connection_id) {
        if (m->count == m->cap) {
            m->cap = m->cap ? m->cap * 2 : 8;
            m->conns = xrealloc(m->conns, m->cap * sizeof(*m->conns));
        }
        memmove(&m->conns[i + 1], &m->conns[i],
                (m->count - i) * sizeof(*m->conns));
        memset(&m->conns[i], 0, sizeof(*m->conns));
        m->conns[i].connection_id = connection_id;
        m->count++;
    }
    m->conns[i].values[which] += delta;
    pthread_mutex_unlock(&m->mutex);
}

int64_t metrics_get(struct metrics *m, enum metric which, int64_t connection_id)
{
    int64_t value = 0;

    if (!m || (unsigned)which >= METRIC_COUNT)
        return 0;
    pthread_mutex_lock(&m->mutex);
    size_t i = find_slot(m, connection_id);
    if (i < m->count && m->conns[i].connection_id == connection_id)
        value = m->conns[i].values[which];
    pthread_mutex_unlock(&m->mutex);
    return value;
}

/* The counters of every connection seen so far, plus zero rows for the
 * active connections not seen yet, in one consistent copy. */
static struct metrics_conn *snapshot(struct metrics *m,
                                     const struct connection *active,
                                     size_t n_active, size_t *n_out)
{
    size_t n = 0;
    struct metrics_conn *rows;

    if (m)
        pthread_mutex_lock(&m->mutex);
    n = m ? m->count : 0;
    rows = xcalloc(n + n_active + 1, sizeof(*rows));
    if (n)
        memcpy(rows, m->conns, n * sizeof(*rows));
    if (m)
        pthread_mutex_unlock(&m->mutex);

    for (size_t a = 0; a < n_active; a++) {
        bool seen = false;
        for (size_t i = 0; i < n && !seen; i++)
            seen = rows[i].connection_id == active[a].id;
        if (!seen)
            rows[n++].connection_id = active[a].id;
    }
    *n_out = n;
    return rows;
}

static void write_header(struct buf *out, const char *name, const char *help,
                         const char *type)
{
    buf_appendf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Counters per connection. What no connection owns (a webhook rejected
 * before its connection is known is counted under id 0) is one series
 * without a connection label, written only once it counted something:
 * there is no connection 0. */
static void write_counters(struct buf *out, const struct metrics_conn *rows,
                           size_t n)
{
    for (int w = 0; w < METRIC_COUNT; w++) {
        write_header(out, metric_defs[w].name, metric_defs[w].help, "counter");
        for (size_t i = 0; i < n; i++) {
            if (rows[i].connection_id > 0)
                buf_appendf(out, "%s{connection=\"%lld\"} %lld\n",
                            metric_defs[w].name,
                            (long long)rows[i].connection_id,
                            (long long)rows[i].values[w]);
            else if (rows[i].values[w])
                buf_appendf(out, "%s %lld\n", metric_defs[w].name,
                            (long long)rows[i].values[w]);
        }
    }
}

enum gauge {
    GAUGE_PUSH_PENDING,
    GAUGE_PUSH_FAILED,
    GAUGE_WINDOW_LEFT,
    GAUGE_DAILY_LEFT,
    GAUGE_COUNT
};

static const struct metric_def gauge_defs[GAUGE_COUNT] = {
    [GAUGE_PUSH_PENDING] = {"fieldsync_push_pending",
                            "Live records with changes not yet in the CRM."},
    [GAUGE_PUSH_FAILED] = {"fieldsync_push_failed",
                           "Records marked failed, waiting for a retry."},
    [GAUGE_WINDOW_LEFT] = {"fieldsync_rate_window_left",
                           "CRM calls still allowed in the rate window."},
    [GAUGE_DAILY_LEFT] = {"fieldsync_rate_daily_left",
                          "CRM calls still allowed today."},
};

/* Gauges per active connection; a store failure leaves a gauge out rather
 * than reporting a wrong zero. */
static void write_gauges(struct app *app, struct store *store,
                         const struct connection *active, size_t n_active,
                         struct buf *out)
{
    int64_t now = clock_now_ms();
    int64_t values[GAUGE_COUNT];
    bool have[GAUGE_COUNT];
    struct buf lines[GAUGE_COUNT] = {{0}};

    for (size_t i = 0; i < n_active; i++) {
        const struct connection *c = &active[i];
        struct rate_governor *gov = app_governor(app, c, CALL_READ);

        have[GAUGE_PUSH_PENDING] = have[GAUGE_PUSH_FAILED] =
            store_sync_counts(store, c->id, &values[GAUGE_PUSH_PENDING],
                              &values[GAUGE_PUSH_FAILED]) == FS_OK;
        have[GAUGE_WINDOW_LEFT] = have[GAUGE_DAILY_LEFT] = gov != NULL;
        if (gov) {
            values[GAUGE_WINDOW_LEFT] = rate_governor_window_left(gov, now);
            values[GAUGE_DAILY_LEFT] = rate_governor_daily_left(gov, now);
        }
        for (int g = 0; g < GAUGE_COUNT; g++) {
            if (have[g])
                buf_appendf(&lines[g], "%s{connection=\"%lld\"} %lld\n",
                            gauge_defs[g].name, (long long)c->id,
                            (long long)values[g]);
        }
    }
    for (int g = 0; g < GAUGE_COUNT; g++) {
        write_header(out, gauge_defs[g].name, gauge_defs[g].help, "gauge");
        if (lines[g].len)
            buf_append(out, lines[g].data, lines[g].len);
        buf_free(&lines[g]);
    }
}

void metrics_handle(struct app *app, const struct http_request *req,
                    struct http_response *resp)
{
    struct store *store = NULL;
    struct connection *active = NULL;
    size_t n_active = 0;
    struct buf out = {0};

    if (strcmp(req->method, "GET") != 0) {
        http_response_add_header(resp, "Allow", "GET");
        http_response_error(resp, 405, "method_not_allowed", NULL,
                            "only GET is allowed here");
        return;
    }
    store = app_store_acquire(app);
    if (!store) {
        http_response_error(resp, 503, "unavailable", NULL,
                            "the database is unavailable");
        return;
    }

    int64_t depth = 0;
    if (store_inbox_depth(store, &depth) == FS_OK) {
        write_header(&out, "fieldsync_inbox_depth",
                     "Webhook events waiting to be reconciled.", "gauge");
        buf_appendf(&out, "fieldsync_inbox_depth %lld\n", (long long)depth);
    }
    if (store_connections_active(store, &active, &n_active) != FS_OK) {
        active = NULL;
        n_active = 0;
    }

    size_t n_rows = 0;
    struct metrics_conn *rows =
        snapshot(app_metrics(app), active, n_active, &n_rows);
    write_counters(&out, rows, n_rows);
    free(rows);
    write_gauges(app, store, active, n_active, &out);

    store_connections_free(active, n_active);
    app_store_release(app, store);
    http_response_set_body(resp, 200, buf_steal(&out));
    resp->content_type = "text/plain; version=0.0.4";
}
