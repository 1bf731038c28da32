/* The running fieldsync service: one HTTP listener (webhooks, field API,
 * metrics) and the worker threads (committer, reconciler, pusher,
 * backstop), sharing one database file. */
#ifndef FIELDSYNC_SERVICES_APP_H
#define FIELDSYNC_SERVICES_APP_H

#include "base/result.h"
#include "net/rate_governor.h"
#include "providers/provider.h"
#include "store/store.h"

#include <stdbool.h>
#include <stdint.h>

struct app_config {
    const char *db_path;
    const char *listen;           /* "127.0.0.1:8080"; port 0 picks one */
    int64_t backstop_interval_ms; /* incremental read period; 60000 */
    int64_t push_window_ms;       /* wait for more edits to batch; 20 */
    int64_t fail_after_ms;        /* failing this long marks failed; 300000 */
    long crm_timeout_ms;          /* one CRM call; 10000 */
    int64_t backoff_base_ms;      /* first retry delay; 1000 */
    int64_t backoff_max_ms;       /* retry delay cap; 60000 */
    const char *public_scheme;    /* scheme the CRMs call us with; "http",
                                   * "https" when serving TLS */
    /* Listener limits (net/http_server.h); 0 takes the server's default. */
    unsigned max_connections;    /* open at once; 256 */
    unsigned max_per_ip;         /* from one address; 0: no limit */
    unsigned request_timeout_ms; /* a request arrives whole within; 30000 */
    const char *tls_cert;        /* PEM text: serve HTTPS with tls_key */
    const char *tls_key;
    size_t ingest_max_queued; /* webhook events waiting for a commit at
                               * most, past it shed with 503; 200000 */
    /* Test hook: caps every database connection at this many pages
     * (SQLite max_page_count), so a test sees a full disk; 0: none. */
    int64_t max_db_pages;
};

/* Fills the defaults above. */
void app_config_defaults(struct app_config *config);

struct app;
struct live_stream;
struct metrics;

/* FS_ERR_CONFLICT when another serve runs on the same database file
 * (by whatever path). */
fs_result app_start(const struct app_config *config, struct app **out);
/* Stops the listener and joins every thread; accepts NULL. */
void app_stop(struct app *app);
uint16_t app_port(const struct app *app);
const struct app_config *app_config(const struct app *app);

/* A database connection for the calling thread, from a pool; give it back
 * with app_store_release. NULL when the database cannot be opened. */
struct store *app_store_acquire(struct app *app);
void app_store_release(struct app *app, struct store *store);

struct live_stream *app_live_stream(struct app *app);
struct stage_cache *app_stage_cache(struct app *app);
struct metrics *app_metrics(struct app *app);
/* The connection's rate governor for a class of call, made on first use
 * from its provider's budget; shared by every thread. */
struct rate_governor *app_governor(struct app *app,
                                   const struct connection *conn,
                                   enum call_class cls);
/* A session for calls on the connection with this thread's client. */
struct provider_session app_session(struct app *app,
                                    const struct connection *conn,
                                    struct http_client *http);

/* Tells the pusher there is something to push (after a local edit or a
 * retry), and the reconciler there are inbox events. */
void app_wake_pusher(struct app *app);
void app_wake_reconciler(struct app *app);

#endif
