/* The backstop thread, and the import and incremental read it runs. Both
 * read deals with only the deal's modification time; existing records
 * whose CRM values differ are re-read with per-field times before merging,
 * so a read never undoes a newer local edit. */
#include "services/backstop.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "base/log.h"
#include "services/app.h"
#include "services/metrics.h"
#include "services/reconciler.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Re-read this far behind the watermark: the CRM's search index lags. */
#define BACKSTOP_OVERLAP_MS 5000
/* A rate-limited import call is made again up to this many times, after
 * the CRM's pause or this long when it named none. */
#define IMPORT_RATE_RETRIES 6
#define IMPORT_RATE_PAUSE_MS 1000
/* Pushes checked against the CRM's history per pass, at most. */
#define BACKSTOP_VERIFY_BATCH 500

struct backstop {
    struct app *app;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping;
};

/* Merges one page of deals; ids needing a per-field read are collected. */
static fs_result merge_page(struct store *store,
                            struct provider_session *session,
                            const struct crm_deal *deals, size_t n,
                            struct reconcile_effects *fx, int64_t *newest)
{
    const char **reread = xcalloc(n ? n : 1, sizeof(*reread));
    size_t n_reread = 0;

    fs_result result = store_begin(store);
    for (size_t i = 0; result == FS_OK && i < n; i++) {
        bool needs_read = false;
        result = reconcile_deal(store, session->conn, &deals[i], false,
                                &needs_read, fx);
        if (needs_read)
            reread[n_reread++] = deals[i].crm_id;
        if (deals[i].modified > *newest)
            *newest = deals[i].modified;
    }
    result = result == FS_OK ? store_commit(store) : result;
    if (result != FS_OK)
        store_rollback(store);
    reconcile_effects_flush(fx, store, result == FS_OK);
    if (result == FS_OK && n_reread > 0)
        result = reconcile_read(store, session, reread, n_reread, fx);
    free(reread);
    return result;
}

fs_result import_crm_meta(struct store *store, struct provider_session *session)
{
    const struct provider *provider = provider_by_name(session->conn->provider);
    if (!provider)
        return FS_ERR_INVALID;

    struct crm_owner *owners = NULL;
    struct crm_stage *stages = NULL;
    size_t n_owners = 0, n_stages = 0;
    int64_t conn_id = session->conn->id;

    fs_result result = provider->list_owners(session, &owners, &n_owners);
    if (result == FS_OK) {
        struct store_owner *rows = xcalloc(n_owners + 1, sizeof(*rows));
        for (size_t i = 0; i < n_owners; i++)
            rows[i] = (struct store_owner){owners[i].id, owners[i].email,
                                           owners[i].name};
        result = store_crm_owners_replace(store, conn_id, rows, n_owners);
        free(rows);
    }
    if (result == FS_OK)
        result = provider->list_stages(session, &stages, &n_stages);
    if (result == FS_OK) {
        struct store_stage *rows = xcalloc(n_stages + 1, sizeof(*rows));
        for (size_t i = 0; i < n_stages; i++)
            rows[i] = (struct store_stage){stages[i].pipeline_id, stages[i].id,
                                           stages[i].label};
        result = store_crm_stages_replace(store, conn_id, rows, n_stages);
        free(rows);
    }
    crm_owners_free(owners, n_owners);
    crm_stages_free(stages, n_stages);
    return result;
}

/* An import is a job someone waits for: a call refused for the CRM's
 * rate limit is made again once the pause the CRM asked for has passed,
 * a few times, rather than failing the whole import. */
static bool rate_limit_waited(struct provider_session *session,
                              fs_result result, int *tries)
{
    if (result != FS_ERR_RATE_LIMITED || ++*tries > IMPORT_RATE_RETRIES)
        return false;
    int64_t wait = rate_governor_wait(
        provider_session_governor(session, CALL_READ), 1, 1, clock_now_ms());
    log_notice("event=import_waits_for_rate_limit connection=%lld wait_ms=%lld",
               (long long)session->conn->id, (long long)wait);
    clock_sleep_ms(wait > 0 ? wait : IMPORT_RATE_PAUSE_MS);
    return true;
}

fs_result import_connection(struct store *store,
                            struct provider_session *session,
                            import_on_progress on_progress, void *ctx,
                            size_t *imported_out)
{
    const struct provider *provider = provider_by_name(session->conn->provider);
    struct reconcile_effects fx = {0};
    struct crm_cursor cursor = {0};
    int64_t newest = 0;
    size_t total = 0;

    if (!provider)
        return FS_ERR_INVALID;
    int tries = 0;
    fs_result result;
    do
        result = import_crm_meta(store, session);
    while (rate_limit_waited(session, result, &tries));
    while (result == FS_OK && !cursor.done) {
        struct crm_deal *deals = NULL;
        size_t n = 0;
        result = provider->list_deals(session, &cursor, &deals, &n);
        if (rate_limit_waited(session, result, &tries)) {
            result = FS_OK;
            continue;
        }
        if (result == FS_OK)
            result = merge_page(store, session, deals, n, &fx, &newest);
        crm_deals_free(deals, n);
        total += n;
        if (on_progress)
            on_progress(ctx, total);
    }
    crm_cursor_clear(&cursor);
    if (result == FS_OK && newest > 0)
        result =
            store_connection_set_watermark(store, session->conn->id, newest);
    if (imported_out)
        *imported_out = total;
    return result;
}

/* Reads the deals of recent pushes again with their history. A push can
 * land just after a newer CRM edit and overwrite it; the edit's webhook
 * tells us, but if it is lost the CRM's history is the only trace, and
 * the merge of it writes the newer edit back. */
static fs_result verify_pushes(struct store *store,
                               struct provider_session *session,
                               struct reconcile_effects *fx)
{
    char **ids = NULL;
    size_t n = 0;

    fs_result result =
        store_records_unverified(store, session->conn->id, clock_now_ms(),
                                 BACKSTOP_VERIFY_BATCH, &ids, &n);
    if (result == FS_OK && n > 0)
        result =
            reconcile_read(store, session, (const char *const *)ids, n, fx);
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
    return result;
}

fs_result backstop_pass(struct store *store, struct provider_session *session,
                        struct reconcile_effects *fx, size_t *changed_out)
{
    const struct provider *provider = provider_by_name(session->conn->provider);
    struct crm_cursor cursor = {0};
    int64_t newest = session->conn->watermark;
    size_t total = 0;
    fs_result result = FS_OK;

    if (!provider)
        return FS_ERR_INVALID;
    cursor.watermark = session->conn->watermark - BACKSTOP_OVERLAP_MS;
    while (result == FS_OK && !cursor.done) {
        struct crm_deal *deals = NULL;
        size_t n = 0;
        result = provider->changed_since(session, &cursor, &deals, &n);
        if (fx->metrics)
            metrics_add(fx->metrics, METRIC_READ_CALLS, session->conn->id, 1);
        if (result == FS_OK)
            result = merge_page(store, session, deals, n, fx, &newest);
        crm_deals_free(deals, n);
        total += n;
    }
    crm_cursor_clear(&cursor);
    if (result == FS_OK && newest > session->conn->watermark)
        result =
            store_connection_set_watermark(store, session->conn->id, newest);
    if (result == FS_OK)
        result = verify_pushes(store, session, fx);
    if (changed_out)
        *changed_out = total;
    return result;
}

static void run_pass(struct backstop *b, struct store *store,
                     struct http_client *http)
{
    struct connection *conns = NULL;
    size_t n = 0;
    struct reconcile_effects fx = {.live = app_live_stream(b->app),
                                   .stages = app_stage_cache(b->app),
                                   .metrics = app_metrics(b->app)};

    if (store_connections_active(store, &conns, &n) != FS_OK)
        return;
    for (size_t i = 0; i < n; i++) {
        struct provider_session session = app_session(b->app, &conns[i], http);
        size_t count = 0;
        fs_result result;
        if (conns[i].watermark == 0)
            result = import_connection(store, &session, NULL, NULL, &count);
        else
            result = backstop_pass(store, &session, &fx, &count);
        if (result != FS_OK) {
            log_warn("event=backstop_failed connection=%lld result=%s",
                     (long long)conns[i].id, fs_result_name(result));
            continue;
        }
        metrics_add(fx.metrics, METRIC_BACKSTOP_PASSES, conns[i].id, 1);
        log_info("event=backstop connection=%lld deals=%zu",
                 (long long)conns[i].id, count);
    }
    store_connections_free(conns, n);
    /* A read may have left local values pending again. */
    app_wake_pusher(b->app);
}

static void *backstop_main(void *arg)
{
    struct backstop *b = arg;
    struct store *store = NULL;
    struct http_client *http = http_client_new();
    int64_t interval = app_config(b->app)->backstop_interval_ms;

    pthread_mutex_lock(&b->lock);
    while (!b->stopping) {
        pthread_mutex_unlock(&b->lock);
        if (!store)
            store = app_store_acquire(b->app);
        if (store)
            run_pass(b, store, http);

        pthread_mutex_lock(&b->lock);
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += interval / 1000;
        deadline.tv_nsec += (interval % 1000) * 1000000;
        if (deadline.tv_nsec >= 1000000000) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000;
        }
        if (!b->stopping)
            pthread_cond_timedwait(&b->wake, &b->lock, &deadline);
    }
    pthread_mutex_unlock(&b->lock);
    http_client_free(http);
    app_store_release(b->app, store);
    return NULL;
}

struct backstop *backstop_new(struct app *app)
{
    struct backstop *b = xcalloc(1, sizeof(*b));
    b->app = app;
    pthread_mutex_init(&b->lock, NULL);
    pthread_cond_init(&b->wake, NULL);
    pthread_create(&b->thread, NULL, backstop_main, b);
    return b;
}

void backstop_free(struct backstop *b)
{
    if (!b)
        return;
    pthread_mutex_lock(&b->lock);
    b->stopping = true;
    pthread_cond_signal(&b->wake);
    pthread_mutex_unlock(&b->lock);
    pthread_join(b->thread, NULL);
    pthread_cond_destroy(&b->wake);
    pthread_mutex_destroy(&b->lock);
    free(b);
}
