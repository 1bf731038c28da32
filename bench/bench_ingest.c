/* Webhook ingest: signed HubSpot v3 batches posted by several clients to a
 * fieldsync of its own, counted when answered 2xx (durable), and the raw
 * SQLite baseline: as many inbox rows committed directly through the store,
 * 100 to a transaction, on the same file system. */
#include "bench.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "providers/hubspot.h"
#include "store/store.h"

#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ingest_run {
    const struct bench_env *env;
    char *url;        /* where the batches go */
    char *signed_uri; /* the URL as the v3 signature hashes it */
    int64_t limit;    /* events to post */
    int64_t deadline_us;
    atomic_int_least64_t next;     /* first event id not yet claimed */
    atomic_int_least64_t acked;    /* events in 2xx deliveries */
    atomic_int_least64_t refused;  /* events in other deliveries */
    atomic_int_least64_t failures; /* deliveries not answered 2xx */
};

/* A HubSpot v3 delivery of count property changes, event ids first_id on,
 * spread over the imported deals as the CRM's users would change them. */
static char *batch_json(const struct bench_env *env, int64_t first_id,
                        int64_t count)
{
    json_t *events = json_array();
    int64_t now = clock_now_ms();

    for (int64_t i = 0; i < count; i++) {
        int64_t id = first_id + i;
        const char *crm_id = env->deals[id % (int64_t)env->n_deals].crm_id;
        char value[48];

        snprintf(value, sizeof(value), "ingest %" PRId64, id);
        json_array_append_new(
            events,
            json_pack("{s:I, s:i, s:I, s:I, s:I, s:s, s:i, s:I, s:s, s:s, "
                      "s:s, s:s}",
                      "eventId", (json_int_t)id, "subscriptionId", 1,
                      "portalId",
                      (json_int_t)strtoll(BENCH_PORTAL_ID, NULL, 10), "appId",
                      (json_int_t)strtoll(BENCH_APP_ID, NULL, 10), "occurredAt",
                      (json_int_t)now, "subscriptionType",
                      "deal.propertyChange", "attemptNumber", 0, "objectId",
                      (json_int_t)strtoll(crm_id, NULL, 10), "propertyName",
                      "dealname", "propertyValue", value, "changeSource",
                      "CRM_UI", "sourceId", "userId:1"));
    }
    char *text = json_dumps(events, JSON_COMPACT);
    json_decref(events);
    return text;
}

/* One signed POST; true when answered 2xx. */
static bool post_batch(struct ingest_run *run, struct http_client *client,
                       const char *body)
{
    char ts[32];
    size_t len = strlen(body);

    snprintf(ts, sizeof(ts), "%" PRId64, clock_now_ms());
    char *sig = hubspot_signature_v3(BENCH_CLIENT_SECRET, "POST",
                                     run->signed_uri, body, len, ts);
    char *h_sig = xasprintf("X-HubSpot-Signature-v3: %s", sig);
    char *h_ts = xasprintf("X-HubSpot-Request-Timestamp: %s", ts);
    const char *headers[] = {"Content-Type: application/json", h_sig, h_ts,
                             NULL};
    long status = 0;

    bench_http(client, "POST", run->url, headers, body, &status, NULL);
    free(h_ts);
    free(h_sig);
    free(sig);
    return status >= 200 && status < 300;
}

static void *client_main(void *arg)
{
    struct ingest_run *run = arg;
    struct http_client *client = http_client_new();

    while (bench_now_us() < run->deadline_us) {
        int64_t first = atomic_fetch_add(&run->next, HUBSPOT_MAX_EVENTS);
        if (first >= run->limit)
            break;
        int64_t count = run->limit - first < HUBSPOT_MAX_EVENTS
                            ? run->limit - first
                            : HUBSPOT_MAX_EVENTS;
        char *body = batch_json(run->env, first, count);
        if (post_batch(run, client, body)) {
            atomic_fetch_add(&run->acked, count);
        } else {
            atomic_fetch_add(&run->refused, count);
            atomic_fetch_add(&run->failures, 1);
        }
        free(body);
    }
    http_client_free(client);
    return NULL;
}

/* Rows in the inbox, read straight from the file after fieldsync stopped:
 * every acknowledged event must be there. */
static fs_result count_inbox(const char *path, int64_t *rows)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    fs_result result = FS_ERR_DB;

    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "SELECT count(*) FROM inbox", -1, &st, NULL) ==
            SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        *rows = sqlite3_column_int64(st, 0);
        result = FS_OK;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return result;
}

static fs_result post_all(struct bench_env *env, const char *fs_url,
                          struct bench_results *res)
{
    const struct bench_options *opt = env->opt;
    struct ingest_run run = {
        .env = env,
        .url = xasprintf("%s/webhooks/hubspot", fs_url),
        .limit = opt->ingest_events,
    };
    pthread_t *threads = xcalloc((size_t)opt->threads, sizeof(*threads));

    run.signed_uri = hubspot_uri_for_signature(run.url);
    int64_t started = bench_now_us();
    run.deadline_us = started + opt->ingest_ms * 1000;
    for (int i = 0; i < opt->threads; i++)
        pthread_create(&threads[i], NULL, client_main, &run);
    for (int i = 0; i < opt->threads; i++)
        pthread_join(threads[i], NULL);

    res->ingest_seconds = (double)(bench_now_us() - started) / 1e6;
    res->ingest_events = atomic_load(&run.acked);
    res->ingest_refused = atomic_load(&run.refused);
    res->ingest_rate = (double)res->ingest_events / res->ingest_seconds;
    if (atomic_load(&run.failures) > 0)
        fprintf(stderr, "fsbench: %lld deliveries not acknowledged\n",
                (long long)atomic_load(&run.failures));
    free(threads);
    free(run.signed_uri);
    free(run.url);
    return res->ingest_events > 0 ? FS_OK : FS_ERR_UNAVAILABLE;
}

/* The same events as inbox rows, 100 to a transaction, through the store
 * (so with its pragmas) into a fresh copy of the imported database. Only
 * the transactions are timed, not making the rows. */
static fs_result baseline(struct bench_env *env, struct bench_results *res)
{
    char *path = xasprintf("%s/baseline.db", env->work_dir);
    struct store *store = NULL;
    struct connection conn = {0};
    int64_t rows = res->ingest_events;
    int64_t spent_us = 0;

    fs_result result = bench_copy_db(env->db_path, path);
    if (result == FS_OK)
        result = store_open(path, &store);
    if (result == FS_OK)
        result = store_connection_find_route(store, "hubspot", BENCH_PORTAL_ID,
                                             BENCH_APP_ID, &conn);
    for (int64_t first = 0; result == FS_OK && first < rows;
         first += HUBSPOT_MAX_EVENTS) {
        int64_t count = rows - first < HUBSPOT_MAX_EVENTS ? rows - first
                                                          : HUBSPOT_MAX_EVENTS;
        char *body = batch_json(env, first, count);
        struct webhook_item *items = NULL;
        struct inbox_event events[HUBSPOT_MAX_EVENTS] = {{0}};
        size_t n = 0;

        struct webhook_request req = {
            .method = "POST", .body = body, .body_len = strlen(body)};
        result = hubspot_provider.split_webhook(&req, &items, &n);
        for (size_t i = 0; result == FS_OK && i < n; i++) {
            events[i].connection_id = conn.id;
            events[i].dedup_key = items[i].dedup_key;
            events[i].body = items[i].body;
        }
        int64_t t0 = bench_now_us();
        if (result == FS_OK)
            result = store_begin(store);
        if (result == FS_OK)
            result = store_inbox_add(store, events, n, NULL);
        if (result == FS_OK)
            result = store_commit(store);
        spent_us += bench_now_us() - t0;
        webhook_items_free(items, n);
        free(body);
    }
    if (result == FS_OK) {
        res->baseline_rows = rows;
        res->baseline_seconds = (double)spent_us / 1e6;
        res->baseline_rate = (double)rows / res->baseline_seconds;
        res->baseline_ok = true;
    } else {
        fprintf(stderr, "fsbench: SQLite baseline failed: %s (%s)\n",
                fs_result_name(result), store_last_error(store));
    }
    connection_clear(&conn);
    store_close(store);
    free(path);
    return result;
}

fs_result bench_ingest(struct bench_env *env, struct bench_results *res)
{
    pid_t pid = 0;
    char *url = NULL;

    fprintf(stderr, "fsbench: webhook ingest, %d clients\n", env->opt->threads);
    fs_result result = bench_fieldsync_start(env, env->ingest_db_path, 0,
                                             "fieldsync-ingest", &pid, &url);
    if (result == FS_OK)
        result = post_all(env, url, res);
    bench_fieldsync_stop(pid);
    free(url);
    if (result != FS_OK)
        return result;

    result = count_inbox(env->ingest_db_path, &res->inbox_rows);
    if (result == FS_OK && res->inbox_rows < res->ingest_events)
        fprintf(stderr,
                "fsbench: only %lld of %lld acknowledged events are "
                "in the inbox\n",
                (long long)res->inbox_rows, (long long)res->ingest_events);
    res->ingest_ok = result == FS_OK;

    fprintf(stderr, "fsbench: SQLite baseline\n");
    return baseline(env, res);
}
