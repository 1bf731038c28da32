/* The service: starts the store, the worker threads and the listener, and
 * routes requests to the webhook receiver, the field API and metrics. */
#include "services/app.h"

#include "base/alloc.h"
#include "base/log.h"
#include "net/http_server.h"
#include "services/backstop.h"
#include "services/api_call.h"
#include "services/ingest.h"
#include "services/live_stream.h"
#include "services/metrics.h"
#include "services/pusher.h"
#include "services/reconciler.h"
#include "services/stage_cache.h"
#include "services/territory.h"
#include "services/tokens.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#define STORE_POOL_MAX 32
#define LIVE_STREAM_CAPACITY 4096

struct governor_entry {
    int64_t connection_id;
    enum call_class cls;
    struct rate_governor *governor;
    struct governor_entry *next;
};

struct app {
    struct app_config config;
    char *db_path;
    char *listen;
    char *public_scheme;

    pthread_mutex_t pool_lock;
    struct store *pool[STORE_POOL_MAX];
    size_t pool_len;

    pthread_mutex_t governor_lock;
    struct governor_entry *governors;

    struct oauth_keeper *tokens;
    struct live_stream *live;
    struct stage_cache *stages;
    struct metrics *metrics;
    struct ingest *ingest;
    struct reconciler *reconciler;
    struct pusher *pusher;
    struct backstop *backstop;
    struct http_server *http;
    int lock_fd; /* holds the database's serve lock */
};

void app_config_defaults(struct app_config *config)
{
    memset(config, 0, sizeof(*config));
    config->db_path = "fieldsync.db";
    config->listen = "127.0.0.1:8080";
    config->backstop_interval_ms = 60000;
    config->push_window_ms = 20;
    config->fail_after_ms = 5 * 60 * 1000;
    config->crm_timeout_ms = 10000;
    config->backoff_base_ms = 1000;
    config->backoff_max_ms = 60000;
    config->public_scheme = "http";
    config->ingest_max_queued = 200000;
}

const struct app_config *app_config(const struct app *app)
{
    return &app->config;
}

struct store *app_store_acquire(struct app *app)
{
    struct store *store = NULL;

    pthread_mutex_lock(&app->pool_lock);
    if (app->pool_len > 0)
        store = app->pool[--app->pool_len];
    pthread_mutex_unlock(&app->pool_lock);
    if (store)
        return store;

    fs_result result = store_open(app->db_path, &store);
    if (result == FS_OK && app->config.max_db_pages > 0)
        result = store_set_page_limit(store, app->config.max_db_pages);
    if (result != FS_OK) {
        log_error("event=store_open_failed path=%s result=%s", app->db_path,
                  fs_result_name(result));
        store_close(store);
        return NULL;
    }
    return store;
}

void app_store_release(struct app *app, struct store *store)
{
    if (!store)
        return;
    pthread_mutex_lock(&app->pool_lock);
    if (app->pool_len < STORE_POOL_MAX) {
        app->pool[app->pool_len++] = store;
        store = NULL;
    }
    pthread_mutex_unlock(&app->pool_lock);
    store_close(store);
}

struct live_stream *app_live_stream(struct app *app)
{
    return app->live;
}

struct stage_cache *app_stage_cache(struct app *app)
{
    return app->stages;
}

struct metrics *app_metrics(struct app *app)
{
    return app->metrics;
}

struct rate_governor *app_governor(struct app *app,
                                   const struct connection *conn,
                                   enum call_class cls)
{
    const struct provider *provider = provider_by_name(conn->provider);
    struct governor_entry *e;

    bool separate =
        provider && ((cls == CALL_WRITE && provider->separate_write_budget) ||
                     (cls == CALL_SEARCH && provider->separate_search_budget));
    if (!separate)
        cls = CALL_READ;
    pthread_mutex_lock(&app->governor_lock);
    for (e = app->governors; e; e = e->next) {
        if (e->connection_id == conn->id && e->cls == cls)
            break;
    }
    if (!e) {
        struct rate_budget budget;
        provider_budget(conn, cls, &budget);
        e = xcalloc(1, sizeof(*e));
        e->connection_id = conn->id;
        e->cls = cls;
        e->governor = rate_governor_new(&budget);
        e->next = app->governors;
        app->governors = e;
    }
    pthread_mutex_unlock(&app->governor_lock);
    return e->governor;
}

struct provider_session app_session(struct app *app,
                                    const struct connection *conn,
                                    struct http_client *http)
{
    const struct provider *provider = provider_by_name(conn->provider);
    struct provider_session s = {
        .conn = conn,
        .http = http,
        .governor = app_governor(app, conn, CALL_READ),
        .tokens = app->tokens,
        .timeout_ms = app->config.crm_timeout_ms,
    };

    if (provider && provider->separate_write_budget)
        s.write_governor = app_governor(app, conn, CALL_WRITE);
    if (provider && provider->separate_search_budget)
        s.search_governor = app_governor(app, conn, CALL_SEARCH);
    return s;
}

/* Both may be called while the service is still starting, before the
 * workers exist: they look at the store when they start anyway. */
void app_wake_pusher(struct app *app)
{
    if (app->pusher)
        pusher_wake(app->pusher);
}

void app_wake_reconciler(struct app *app)
{
    if (app->reconciler)
        reconciler_wake(app->reconciler);
}

uint16_t app_port(const struct app *app)
{
    return http_server_port(app->http);
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void on_request(void *ctx, const struct http_request *req,
                       struct http_response *resp)
{
    struct app *app = ctx;

    if (starts_with(req->path, "/webhooks/")) {
        if (strcmp(req->method, "POST") != 0) {
            http_response_error(resp, 405, "method_not_allowed", NULL,
                                "webhooks are delivered with POST");
            return;
        }
        ingest_handle_webhook(app, app->ingest, req->path + 10, req, resp);
    } else if (starts_with(req->path, "/api/v1/") ||
               strcmp(req->path, "/api/v1") == 0) {
        api_handle(app, req, resp);
    } else if (strcmp(req->path, "/metrics") == 0) {
        metrics_handle(app, req, resp);
    } else if (strcmp(req->path, "/healthz") == 0) {
        http_response_set_body(resp, 200, xstrdup("{\"ok\":true}"));
    } else {
        http_response_error(resp, 404, "not_found", NULL, "no such path");
    }
}

/* One service per database: two would push the same records twice.
 * The lock is a file beside the database (never the database itself,
 * whose locks SQLite owns), released by the kernel however we end. */
static fs_result take_serve_lock(struct app *app)
{
    char *path = xasprintf("%s.serve-lock", app->db_path);

    app->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (app->lock_fd < 0) {
        log_error("event=serve_lock_failed path=%s errno=%d", path, errno);
        free(path);
        return FS_ERR_IO;
    }
    if (flock(app->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        log_error("event=serve_lock_held path=%s reason=\"another fieldsync "
                  "serve runs on this database\"",
                  path);
        free(path);
        return FS_ERR_BUSY;
    }
    free(path);
    return FS_OK;
}

fs_result app_start(const struct app_config *config, struct app **out)
{
    struct app *app = xcalloc(1, sizeof(*app));
    struct store *store = NULL;

    app->config = *config;
    app->db_path = xstrdup(config->db_path);
    app->listen = xstrdup(config->listen);
    app->public_scheme = xstrdup(
        config->tls_cert && config->tls_key ? "https" : config->public_scheme);
    app->config.db_path = app->db_path;
    app->config.listen = app->listen;
    app->config.public_scheme = app->public_scheme;
    pthread_mutex_init(&app->pool_lock, NULL);
    pthread_mutex_init(&app->governor_lock, NULL);
    app->lock_fd = -1;

    fs_result result = take_serve_lock(app);
    if (result != FS_OK)
        goto fail;
    /* Opening once here applies migrations before any thread starts. */
    result = store_open(app->db_path, &store);
    if (result == FS_OK && config->max_db_pages > 0)
        result = store_set_page_limit(store, config->max_db_pages);
    if (result != FS_OK) {
        log_error("event=store_open_failed path=%s result=%s", app->db_path,
                  fs_result_name(result));
        store_close(store);
        goto fail;
    }
    app_store_release(app, store);

    app->tokens = tokens_keeper_new(app->db_path);
    app->live = live_stream_new(LIVE_STREAM_CAPACITY);
    app->stages = stage_cache_new();
    app->metrics = metrics_new();
    /* The listener before the workers that call CRMs: a service that
     * cannot listen makes no CRM call on its way out. */
    app->ingest = ingest_new(app);

    struct http_server_config http = {
        .listen = app->listen,
        .max_body = 1 << 20,
        /* GeoJSON imports and centroid tables are files, not edits. */
        .large_body_prefix = "/api/v1/territories/",
        .large_max_body = TERRITORY_MAX_IMPORT_BYTES,
        .max_connections = config->max_connections,
        .max_per_ip = config->max_per_ip,
        .request_timeout_ms = config->request_timeout_ms,
        .tls_cert = config->tls_cert,
        .tls_key = config->tls_key,
        .on_request = on_request,
        .ctx = app,
    };
    result = http_server_start(&http, &app->http);
    if (result != FS_OK) {
        log_error("event=listen_failed listen=%s result=%s", app->listen,
                  fs_result_name(result));
        goto fail;
    }
    app->reconciler = reconciler_new(app);
    app->pusher = pusher_new(app);
    app->backstop = backstop_new(app);
    log_notice("event=started listen=%s port=%u scheme=%s db=%s", app->listen,
               (unsigned)app_port(app), app->public_scheme, app->db_path);
    *out = app;
    return FS_OK;

fail:
    app_stop(app);
    return result;
}

void app_stop(struct app *app)
{
    if (!app)
        return;
    live_stream_shutdown(app->live);
    http_server_stop(app->http);
    backstop_free(app->backstop);
    ingest_free(app->ingest);
    pusher_free(app->pusher);
    reconciler_free(app->reconciler);
    live_stream_free(app->live);
    stage_cache_free(app->stages);
    metrics_free(app->metrics);
    territory_cache_clear();
    oauth_keeper_free(app->tokens);
    while (app->governors) {
        struct governor_entry *e = app->governors;
        app->governors = e->next;
        rate_governor_free(e->governor);
        free(e);
    }
    for (size_t i = 0; i < app->pool_len; i++)
        store_close(app->pool[i]);
    pthread_mutex_destroy(&app->pool_lock);
    pthread_mutex_destroy(&app->governor_lock);
    if (app->lock_fd >= 0)
        close(app->lock_fd);
    free(app->db_path);
    free(app->listen);
    free(app->public_scheme);
    free(app);
}
