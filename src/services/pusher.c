/* The pusher thread. Pending fields are derived from the records, not
 * queued: each pass asks the store which records are due, writes them to
 * the CRM in batches inside the rate budget, and records the outcome. */
#include "services/pusher.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "base/crypto.h"
#include "base/failpoint.h"
#include "base/log.h"
#include "providers/provider.h"
#include "services/app.h"
#include "services/deal_json.h"
#include "services/live_stream.h"
#include "services/metrics.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Longest sleep between passes when nothing is due. */
#define PUSHER_IDLE_MS 1000
/* Edits signalled that make a full batch of the largest CRM batch write
 * (HubSpot's 100): gathering stops there. */
#define PUSHER_GATHER_EDITS 100
/* Longest an edit is held back while more keep arriving. */
#define PUSHER_MAX_HOLD_MS 500

struct pusher {
    struct app *app;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool woken;
    size_t wakes; /* edits signalled since the last pass */
    bool stopping;
};

/* The CLOCK_REALTIME time ms from now, for pthread_cond_timedwait. */
static struct timespec deadline_in(int64_t ms)
{
    struct timespec deadline;

    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += ms / 1000;
    deadline.tv_nsec += (ms % 1000) * 1000000;
    if (deadline.tv_nsec >= 1000000000) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000;
    }
    return deadline;
}

/* Exponential backoff with +-25% jitter. */
static int64_t backoff_ms(const struct app_config *cfg, int attempts)
{
    int64_t delay = cfg->backoff_base_ms;
    for (int i = 1; i < attempts && delay < cfg->backoff_max_ms; i++)
        delay *= 2;
    if (delay > cfg->backoff_max_ms)
        delay = cfg->backoff_max_ms;
    uint32_t noise;
    crypto_random(&noise, sizeof(noise));
    return delay * 3 / 4 + (int64_t)(noise % (uint32_t)(delay / 2 + 1));
}

/* What the rep and admin read next to "couldn't sync to CRM" when the CRM
 * gave no message of its own. */
static const char *push_error_text(fs_result r)
{
    switch (r) {
    case FS_ERR_UNAVAILABLE:
        return "the CRM did not answer, or answered with a server error";
    case FS_ERR_TIMEOUT:
        return "the CRM did not answer in time";
    case FS_ERR_AUTH:
        return "the CRM refused fieldsync's credentials";
    case FS_ERR_FORBIDDEN:
        return "the CRM does not let fieldsync's credentials write this deal";
    case FS_ERR_NOT_FOUND:
        return "the CRM no longer has this deal";
    case FS_ERR_INVALID:
        return "the CRM refused a value of this deal";
    case FS_ERR_REMOTE:
        return "the CRM refused the write";
    default:
        return fs_result_name(r);
    }
}

/* Notes a failed write of the record; after fail_after_ms of failures the
 * record is failed until retried. */
static void note_failure(struct app *app, struct store *store,
                         const struct record *r, const char *error, int64_t now)
{
    const struct app_config *cfg = app_config(app);
    struct sync_state st = {0};
    struct record current = {0};

    /* The org switched CRM while the write was on its way: the old CRM's
     * refusal does not hold up the first push to the new one. */
    bool moved = store_record_by_rowid(store, r->rowid, &current) == FS_OK &&
                 current.connection_id != r->connection_id;
    record_clear(&current);
    if (moved)
        return;
    store_sync_get(store, r->rowid, &st);
    st.attempts++;
    if (!st.first_failure_at)
        st.first_failure_at = now;
    st.next_try_at = now + backoff_ms(cfg, st.attempts);
    free(st.last_error);
    st.last_error = xstrdup(error);
    bool newly_failed =
        !st.failed && now - st.first_failure_at >= cfg->fail_after_ms;
    if (newly_failed) {
        st.failed = true;
        log_warn("event=push_failed record=%s attempts=%d error=\"%s\"", r->id,
                 st.attempts, error);
    }
    store_sync_put(store, r->rowid, &st);
    sync_state_clear(&st);
    if (newly_failed)
        deal_publish(app_live_stream(app), app_stage_cache(app), store, r,
                     "deal.sync_failed");
}

/* Records a successful write as the CRM change it is, through the merge
 * rules: a local edit made meanwhile stays pending, and a CRM change taken
 * meanwhile but older than the write gives way to what the CRM now holds,
 * so the record never keeps a value the CRM no longer has. */
static fs_result note_success(struct store *store, const struct record *sent,
                              const struct crm_write *w,
                              const struct crm_write_result *res, int64_t now)
{
    struct record r = {0};
    fs_result result = store_record_by_rowid(store, sent->rowid, &r);
    if (result != FS_OK)
        return result;
    /* The org switched CRM while the write was on its way: what the old
     * CRM took says nothing of what the new one holds. */
    if (r.connection_id != sent->connection_id) {
        record_clear(&r);
        return FS_OK;
    }

    int64_t crm_time = res->time ? res->time : now;
    if (!r.crm_id && res->crm_id)
        r.crm_id = xstrdup(res->crm_id);
    /* Checked against the CRM's history by a later read (see the
     * backstop): the push may have overwritten a newer CRM edit. */
    r.unverified_push_at = crm_time > now ? crm_time : now;
    for (int f = 0; f < DEAL_FIELD_COUNT; f++) {
        if (!w->present[f] && res->defaults[f]) {
            /* The CRM filled a field the create left empty. */
            struct crm_change given = {.value = res->defaults[f],
                                       .time = crm_time,
                                       .actor = ACTOR_OTHER};
            merge_crm_change(&r.fields[f], &given);
        }
        if (!w->present[f])
            continue;
        struct field_state *field = &r.fields[f];
        struct crm_change change = {
            .value = w->values[f], .time = crm_time, .actor = ACTOR_US};
        merge_mark_pushed(field, w->values[f]);
        merge_crm_change(field, &change);
        log_debug("event=pushed record=%s crm_id=%s field=%s "
                  "value=\"%.40s\" time=%lld",
                  r.id, r.crm_id ? r.crm_id : "-", deal_fields[f].name,
                  w->values[f] ? w->values[f] : "", (long long)crm_time);
    }
    result = store_record_save(store, &r);
    if (result == FS_OK)
        result = store_sync_clear(store, r.rowid);
    record_clear(&r);
    return result;
}

/* A create tried before that failed: its outcome may be unknown (a
 * timeout after the CRM made the deal), so the CRM may hold it already. */
static bool earlier_try_failed(struct store *store, const struct record *r)
{
    struct sync_state st = {0};
    bool failed =
        store_sync_get(store, r->rowid, &st) == FS_OK && st.attempts > 0;

    sync_state_clear(&st);
    return failed;
}

/* The CRM named our credentials on a write (Attio's token actor id):
 * keep it, so later changes by that actor are known as our echoes. */
static void learn_writer(struct store *store, const struct connection *conn,
                         const char *writer_id)
{
    if (!writer_id || (conn->app_id && strcmp(conn->app_id, writer_id) == 0))
        return;
    /* The next pass reads the connection again with it. */
    if (store_connection_set_app_id(store, conn->id, writer_id) == FS_OK)
        log_info("event=writer_learnt connection=%lld app_id=%s",
                 (long long)conn->id, writer_id);
}

static void build_write(const struct record *r, unsigned synced,
                        struct crm_write *w)
{
    memset(w, 0, sizeof(*w));
    w->our_id = r->id;
    w->crm_id = r->crm_id;
    for (int f = 0; f < DEAL_FIELD_COUNT; f++) {
        const struct field_state *field = &r->fields[f];
        w->values[f] = field->value;
        if (!(synced & (1u << f)))
            continue;
        w->present[f] =
            r->crm_id ? merge_field_pending(field) : field->value != NULL;
    }
}

/* One batch for the connection. Returns how many records it wrote (0 when
 * none were due) and lowers *next_due_ms when it had to wait. Fewer than
 * min_batch due records are left for the next gathering, counted in
 * *left. */
static size_t push_batch(struct app *app, struct store *store,
                         struct provider_session *session,
                         const struct provider *provider, size_t min_batch,
                         int64_t *next_due_ms, size_t *left)
{
    const struct connection *conn = session->conn;
    int64_t now = clock_now_ms();
    struct record *records = NULL;
    size_t n = 0;

    if (store_records_pending(store, conn->id, now, provider->max_write_batch,
                              &records, &n) != FS_OK ||
        n == 0)
        return 0;
    if (n < min_batch) {
        *left += n;
        store_records_free(records, n);
        return 0;
    }

    /* The write call takes its budget itself; this only keeps the pusher
     * from blocking on a budget known to be spent. */
    int64_t wait = rate_governor_wait(
        provider_session_governor(session, CALL_WRITE), 1, 1, now);
    if (wait > 0) {
        if (now + wait < *next_due_ms)
            *next_due_ms = now + wait;
        store_records_free(records, n);
        return 0;
    }

    struct crm_write *writes = xcalloc(n, sizeof(*writes));
    struct crm_write_result *results = xcalloc(n, sizeof(*results));
    unsigned synced = provider_synced_fields(conn);
    for (size_t i = 0; i < n; i++) {
        build_write(&records[i], synced, &writes[i]);
        writes[i].may_exist =
            !writes[i].crm_id && earlier_try_failed(store, &records[i]);
    }

    fs_result call = provider->write_deals(session, writes, n, results);
    failpoint("push.answered");
    metrics_add(app_metrics(app), METRIC_PUSH_CALLS, conn->id, 1);
    now = clock_now_ms();

    size_t written = 0;
    size_t failed = 0;
    if (store_begin(store) != FS_OK)
        goto out;
    for (size_t i = 0; i < n; i++) {
        /* Writes done before a whole-call failure (say creates before the
         * rate limit hit) are kept, so they are not made again. */
        fs_result r =
            call == FS_OK || results[i].done ? results[i].result : call;
        if (r == FS_ERR_RATE_LIMITED)
            continue; /* the governor holds the next try; not a failure */
        if (r == FS_OK) {
            note_success(store, &records[i], &writes[i], &results[i], now);
            learn_writer(store, conn, results[i].writer_id);
            written++;
        } else {
            const char *msg =
                results[i].error ? results[i].error : push_error_text(r);
            note_failure(app, store, &records[i], msg, now);
            failed++;
        }
    }
    if (store_commit(store) != FS_OK) {
        store_rollback(store);
        log_error("event=push_outcome_not_saved connection=%lld",
                  (long long)conn->id);
    }
    metrics_add(app_metrics(app), METRIC_PUSH_RECORDS, conn->id,
                (int64_t)written);
    metrics_add(app_metrics(app), METRIC_PUSH_FAILURES, conn->id,
                (int64_t)failed);
    log_info("event=push connection=%lld records=%zu written=%zu result=%s",
             (long long)conn->id, n, written, fs_result_name(call));

out:
    crm_write_results_clear(results, n);
    free(results);
    free(writes);
    store_records_free(records, n);
    return call == FS_ERR_RATE_LIMITED ? 0 : n;
}

/* Pushes what is due: the first batch of each connection whatever its
 * size, then only full ones; *left counts the records held back. */
static int64_t push_all(struct app *app, struct store *store,
                        struct http_client *http, size_t *left)
{
    struct connection *conns = NULL;
    size_t n = 0;
    int64_t next_due = clock_now_ms() + PUSHER_IDLE_MS;

    if (store_connections_active(store, &conns, &n) != FS_OK)
        return next_due;
    for (size_t i = 0; i < n; i++) {
        const struct provider *provider = provider_by_name(conns[i].provider);
        if (!provider)
            continue;
        struct provider_session session = app_session(app, &conns[i], http);
        size_t min_batch = 1;
        while (push_batch(app, store, &session, provider, min_batch, &next_due,
                          left) == provider->max_write_batch)
            min_batch = provider->max_write_batch;
        int64_t due = 0;
        if (store_pending_next_due(store, conns[i].id, &due) == FS_OK &&
            due > 0 && due < next_due)
            next_due = due;
    }
    store_connections_free(conns, n);
    return next_due;
}

/* Lets edits arriving together join one batch: waits until push_window_ms
 * pass with no further edit, a full batch has been signalled, or the
 * first edit has waited PUSHER_MAX_HOLD_MS. A lone edit waits one window;
 * a burst goes out in full batches instead of one call per window.
 * Called with the lock held. */
static void gather_locked(struct pusher *p)
{
    int64_t window = app_config(p->app)->push_window_ms;
    int64_t held_until = clock_mono_ms() + PUSHER_MAX_HOLD_MS;

    while (!p->stopping && p->wakes < PUSHER_GATHER_EDITS) {
        int64_t wait = held_until - clock_mono_ms();
        if (wait <= 0)
            break;
        size_t seen = p->wakes;
        struct timespec deadline = deadline_in(wait < window ? wait : window);
        int rc = 0;
        while (p->wakes == seen && !p->stopping && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&p->wake, &p->lock, &deadline);
        if (p->wakes == seen)
            break;
    }
}

static void *pusher_main(void *arg)
{
    struct pusher *p = arg;
    struct store *store = NULL;
    struct http_client *http = http_client_new();
    int64_t next_due = 0;

    for (;;) {
        pthread_mutex_lock(&p->lock);
        int64_t now = clock_now_ms();
        if (!p->woken && !p->stopping && next_due > now) {
            struct timespec deadline = deadline_in(next_due - now);
            pthread_cond_timedwait(&p->wake, &p->lock, &deadline);
        }
        if (p->woken)
            gather_locked(p);
        bool stopping = p->stopping;
        p->woken = false;
        p->wakes = 0;
        pthread_mutex_unlock(&p->lock);
        if (stopping)
            break;
        if (!store)
            store = app_store_acquire(p->app);
        size_t left = 0;
        next_due = store ? push_all(p->app, store, http, &left)
                         : clock_now_ms() + PUSHER_IDLE_MS;
        /* Records that arrived during the pass gather like new edits. */
        if (left > 0) {
            pthread_mutex_lock(&p->lock);
            p->woken = true;
            p->wakes += left;
            pthread_mutex_unlock(&p->lock);
        }
    }
    http_client_free(http);
    app_store_release(p->app, store);
    return NULL;
}

struct pusher *pusher_new(struct app *app)
{
    struct pusher *p = xcalloc(1, sizeof(*p));
    p->app = app;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_create(&p->thread, NULL, pusher_main, p);
    return p;
}

void pusher_wake(struct pusher *p)
{
    pthread_mutex_lock(&p->lock);
    p->woken = true;
    p->wakes++;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
}

void pusher_free(struct pusher *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->thread, NULL);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    free(p);
}
