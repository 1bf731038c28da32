/* The reconciler thread and the merge of CRM knowledge into records. Inbox
 * events are applied in batches, one transaction each; events that carry
 * only an id (creations, restores, merges, changes to deals we have never
 * seen) lead to a read of the deal, merged with per-field times. */
#include "services/reconciler.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "base/failpoint.h"
#include "base/log.h"
#include "services/app.h"
#include "services/deal_json.h"
#include "services/live_stream.h"
#include "services/metrics.h"
#include "services/territory.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Small, so the write lock is free again within milliseconds for the
 * webhook committer (acknowledgements wait on its commit). */
#define INBOX_BATCH 50
#define READ_BATCH 50

struct reconciler {
    struct app *app;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool woken;
    bool stopping;
};

struct id_list {
    char **ids;
    size_t len;
    size_t cap;
};

static void id_list_add(struct id_list *l, const char *id)
{
    for (size_t i = 0; i < l->len; i++) {
        if (strcmp(l->ids[i], id) == 0)
            return;
    }
    if (l->len == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->ids = xrealloc(l->ids, l->cap * sizeof(*l->ids));
    }
    l->ids[l->len++] = xstrdup(id);
}

static void id_list_clear(struct id_list *l)
{
    for (size_t i = 0; i < l->len; i++)
        free(l->ids[i]);
    free(l->ids);
    memset(l, 0, sizeof(*l));
}

/* Takes the saved record over for publishing after the commit. */
static void hold_for_publish(struct reconcile_effects *fx, struct record *r,
                             const char *type)
{
    if (!fx->live)
        return;
    if (fx->n_held == fx->cap_held) {
        fx->cap_held = fx->cap_held ? fx->cap_held * 2 : 16;
        fx->held = xrealloc(fx->held, fx->cap_held * sizeof(*fx->held));
        fx->held_types =
            xrealloc(fx->held_types, fx->cap_held * sizeof(*fx->held_types));
    }
    fx->held[fx->n_held] = *r;
    fx->held_types[fx->n_held++] = type;
    memset(r, 0, sizeof(*r));
}

void reconcile_effects_flush(struct reconcile_effects *fx, struct store *store,
                             bool committed)
{
    for (size_t i = 0; i < fx->n_held; i++) {
        if (committed)
            deal_publish(fx->live, fx->stages, store, &fx->held[i],
                         fx->held_types[i]);
        record_clear(&fx->held[i]);
    }
    free(fx->held);
    free(fx->held_types);
    fx->held = NULL;
    fx->held_types = NULL;
    fx->n_held = fx->cap_held = 0;
}

/* Ends the record's pending local edits, leaving a trace of each. */
/* Ends the pending local edits made before `before` (the CRM's time of
 * the delete or merge). One made after it was made on a deal the CRM had
 * already removed, by a rep who could not know yet: it is kept on the
 * tombstone and reported held, so a restore of the deal (which must come
 * later still) sends it, as the later write. */
static void drop_pending_edits(struct store *store, struct record *r,
                               int64_t before, const char *why)
{
    for (int f = 0; f < DEAL_FIELD_COUNT; f++) {
        struct field_state *field = &r->fields[f];
        if (!merge_field_pending(field))
            continue;
        if (field->time > before) {
            store_audit_add(store, r->org_id, "edit_held", r->id,
                            deal_fields[f].name, why);
            continue;
        }
        store_audit_add(store, r->org_id, "edit_dropped", r->id,
                        deal_fields[f].name, why);
        free(field->value);
        field->value = field->crm_value ? xstrdup(field->crm_value) : NULL;
        field->time = field->crm_time;
        field->origin = ORIGIN_CRM;
    }
}

static void new_record(const struct connection *conn, const char *crm_id,
                       struct record *r)
{
    memset(r, 0, sizeof(*r));
    r->org_id = conn->org_id;
    r->connection_id = conn->id;
    r->crm_id = xstrdup(crm_id);
    r->created_at = clock_now_ms();
}

static void count(struct reconcile_effects *fx, enum metric which,
                  int64_t connection_id)
{
    if (fx->metrics)
        metrics_add(fx->metrics, which, connection_id, 1);
}

/* Merges one CRM value into the field, counting conflicts and echoes. A
 * change timed CRM_TIME_UNKNOWN goes through merge_crm_untimed. */
static bool merge_one(struct store *store, struct record *r, int field,
                      const struct crm_change *change,
                      struct reconcile_effects *fx)
{
    struct field_state *f = &r->fields[field];
    bool was_pending = merge_field_pending(f);
    enum merge_outcome outcome =
        change->time == CRM_TIME_UNKNOWN
            ? merge_crm_untimed(f, change->value, change->actor,
                                change->read_at)
            : merge_crm_change(f, change);

    log_debug("event=merge record=%s crm_id=%s field=%s time=%lld actor=%d "
              "outcome=%d value=\"%.40s\" value_time=%lld crm_time=%lld",
              r->id ? r->id : "-", r->crm_id ? r->crm_id : "-",
              deal_fields[field].name, (long long)change->time,
              (int)change->actor, (int)outcome,
              change->value ? change->value : "", (long long)f->time,
              (long long)f->crm_time);
    switch (outcome) {
    case MERGE_STALE:
    case MERGE_SAME:
        return false;
    case MERGE_ECHO:
        fx->echoes++;
        count(fx, METRIC_ECHOES, r->connection_id);
        return true;
    case MERGE_LOCAL_KEPT:
        fx->conflicts++;
        count(fx, METRIC_CONFLICTS, r->connection_id);
        store_audit_add(store, r->org_id, "conflict_local_won", r->id,
                        deal_fields[field].name, change->value);
        return true;
    case MERGE_OVERWRITTEN:
        /* Our push overwrote this newer CRM edit: write it back. */
        fx->conflicts++;
        fx->repushes++;
        count(fx, METRIC_CONFLICTS, r->connection_id);
        store_audit_add(store, r->org_id, "conflict_crm_won_over_push", r->id,
                        deal_fields[field].name, change->value);
        return true;
    case MERGE_TAKEN:
        fx->applied++;
        if (was_pending) {
            fx->conflicts++;
            count(fx, METRIC_CONFLICTS, r->connection_id);
            store_audit_add(store, r->org_id, "conflict_crm_won", r->id,
                            deal_fields[field].name, change->value);
        }
        return true;
    }
    return false;
}

static fs_result find_record(struct store *store, const struct connection *conn,
                             const char *crm_id, const char *our_id,
                             struct record *r)
{
    fs_result result = store_record_by_crm_id(store, conn->id, crm_id, r);
    if (result != FS_ERR_NOT_FOUND || !our_id)
        return result;

    /* Our own create: the CRM answered, or its webhook arrived, before we
     * stored the id it was given. */
    result = store_record_get(store, conn->org_id, our_id, r);
    if (result == FS_OK && r->crm_id && strcmp(r->crm_id, crm_id) != 0) {
        record_clear(r);
        return FS_ERR_NOT_FOUND;
    }
    if (result == FS_OK && !r->crm_id)
        r->crm_id = xstrdup(crm_id);
    return result;
}

/* The time of a value someone else wrote that our push landed on.
 * Coarsely timed, against a CRM value we knew (a webhook timed to the ms,
 * earlier in that second) it is the newer, as the newest edit not ours:
 * at the latest it may have been made, so it is taken and written back.
 * Against a local edit, at its earliest: the edit, timed to the ms, may
 * be the later (a same-second tie the edit keeps, docs/LIMITATIONS.md). */
static int64_t past_time(const struct crm_past_value *past,
                         const struct field_state *field)
{
    return past->time_latest && field->origin == ORIGIN_CRM ? past->time_latest
                                                            : past->time;
}

fs_result reconcile_deal(struct store *store, const struct connection *conn,
                         const struct crm_deal *deal, bool field_times,
                         bool *needs_read, struct reconcile_effects *fx)
{
    struct record r = {0};
    bool changed = false;
    const char *type = "deal.updated";
    unsigned synced = provider_synced_fields(conn);

    fs_result result = find_record(store, conn, deal->crm_id, deal->our_id, &r);
    if (result == FS_ERR_NOT_FOUND) {
        if (deal->archived)
            return FS_OK;
        new_record(conn, deal->crm_id, &r);
        field_times = true;
        changed = true;
        type = "deal.created";
    } else if (result != FS_OK) {
        return result;
    }
    if (deal->archived && r.crm_id && strcmp(r.crm_id, deal->crm_id) != 0) {
        /* The id is gone because a merge folded it into the record found
         * through its alias; that record lives on. */
        record_clear(&r);
        return FS_OK;
    }
    if (!r.crm_id || strcmp(r.crm_id, deal->crm_id) != 0) {
        free(r.crm_id);
        r.crm_id = xstrdup(deal->crm_id);
        changed = true;
    }

    if (deal->archived) {
        if (!r.deleted_at) {
            r.deleted_at = deal->modified ? deal->modified : clock_now_ms();
            drop_pending_edits(store, &r, r.deleted_at, "deleted in the CRM");
            free(r.deleted_reason);
            r.deleted_reason = xstrdup("crm_delete");
            changed = true;
            type = "deal.deleted";
        }
    } else if (!field_times) {
        for (int f = 0; f < DEAL_FIELD_COUNT; f++) {
            if (!(synced & (1u << f)))
                continue;
            if (!merge_value_equal(deal->values[f], r.fields[f].crm_value)) {
                *needs_read = true;
                break;
            }
        }
    } else {
        /* This read saw the CRM's history after our last push. */
        if (r.unverified_push_at && deal->read_at > r.unverified_push_at) {
            r.unverified_push_at = 0;
            changed = true;
        }
        for (int f = 0; f < DEAL_FIELD_COUNT; f++) {
            if (!(synced & (1u << f)))
                continue;
            struct crm_change change = {
                .value = deal->values[f],
                .time = deal->times[f] ? deal->times[f] : deal->modified,
                .actor = deal->actors[f],
                .read_at = deal->read_at,
            };
            changed |= merge_one(store, &r, f, &change, fx);
            if (deal->others[f].present) {
                struct crm_change past = {
                    .value = deal->others[f].value,
                    .time = past_time(&deal->others[f], &r.fields[f]),
                    .actor = ACTOR_OTHER};
                changed |= merge_one(store, &r, f, &past, fx);
            }
        }
    }

    if (changed) {
        result = territory_save_deal(store, &r, clock_now_ms(), NULL);
        if (result == FS_OK)
            hold_for_publish(fx, &r, type);
    }
    record_clear(&r);
    return result;
}

/* Our id of the deal a CRM merge keeps (caller frees), or NULL while we
 * do not hold it yet. */
static char *merge_survivor(struct store *store, const struct connection *conn,
                            const struct crm_event *ev)
{
    struct record r = {0};
    char *id = NULL;

    if (store_record_by_crm_id(store, conn->id, ev->new_id, &r) == FS_OK ||
        store_record_by_crm_id(store, conn->id, ev->crm_id, &r) == FS_OK)
        id = xstrdup(r.id);
    record_clear(&r);
    return id;
}

/* Gives the record of crm_id the merge's new id (keeping the old one as
 * an alias). FS_ERR_NOT_FOUND when we hold no record under crm_id. */
static fs_result take_new_id(struct store *store, const struct connection *conn,
                             const char *crm_id, const char *new_id)
{
    struct record r = {0};
    fs_result result = store_record_by_crm_id(store, conn->id, crm_id, &r);

    if (result == FS_OK && (strcmp(r.crm_id, crm_id) != 0 || r.deleted_at))
        result = FS_ERR_NOT_FOUND;
    if (result == FS_OK) {
        free(r.crm_id);
        r.crm_id = xstrdup(new_id);
        result = store_record_save(store, &r);
        if (result == FS_OK)
            result = store_crm_alias_add(store, conn->id, crm_id, new_id);
    }
    record_clear(&r);
    return result;
}

static bool holds_id(struct store *store, const struct connection *conn,
                     const char *crm_id)
{
    struct record r = {0};
    bool held = store_record_by_crm_id(store, conn->id, crm_id, &r) == FS_OK &&
                strcmp(r.crm_id, crm_id) == 0;
    record_clear(&r);
    return held;
}

/* A CRM merge: the losers are tombstoned as merged into the survivor and
 * their ids become its aliases; the survivor is read again. When the
 * merge minted a new id, the record of the event's primary takes it, or,
 * when we hold none under the new id yet, the first original we hold
 * (Attio names each original in an event of its own, none as primary). */
static fs_result apply_merge(struct store *store, const struct connection *conn,
                             const struct crm_event *ev,
                             struct id_list *to_read,
                             struct reconcile_effects *fx)
{
    struct record r = {0};
    char *survivor = NULL;
    fs_result result = FS_OK;

    if (strcmp(ev->crm_id, ev->new_id) != 0 &&
        !holds_id(store, conn, ev->new_id)) {
        result = take_new_id(store, conn, ev->crm_id, ev->new_id);
        if (result != FS_OK && result != FS_ERR_NOT_FOUND)
            goto out;
    }
    for (size_t i = 0; i < ev->merged_count; i++) {
        const char *loser = ev->merged_ids[i];
        if (strcmp(loser, ev->new_id) == 0 || holds_id(store, conn, ev->new_id))
            continue;
        result = take_new_id(store, conn, loser, ev->new_id);
        if (result != FS_OK && result != FS_ERR_NOT_FOUND)
            goto out;
    }
    survivor = merge_survivor(store, conn, ev);

    for (size_t i = 0; i < ev->merged_count; i++) {
        const char *loser = ev->merged_ids[i];
        if (strcmp(loser, ev->new_id) == 0)
            continue;
        /* Only the loser's own record: its id may already lead to the
         * survivor through an alias. */
        if (store_record_by_crm_id(store, conn->id, loser, &r) == FS_OK &&
            strcmp(r.crm_id, loser) == 0 && !r.deleted_at) {
            drop_pending_edits(store, &r, INT64_MAX, "merged in the CRM");
            r.deleted_at = ev->time;
            free(r.deleted_reason);
            r.deleted_reason = xstrdup("merged");
            free(r.merged_into);
            r.merged_into = survivor ? xstrdup(survivor) : NULL;
            result = store_record_save(store, &r);
            if (result != FS_OK)
                goto out;
            hold_for_publish(fx, &r, "deal.deleted");
        }
        record_clear(&r);
        result = store_crm_alias_add(store, conn->id, loser, ev->new_id);
        if (result != FS_OK)
            goto out;
    }
    id_list_add(to_read, ev->new_id);
    result = FS_OK;
out:
    record_clear(&r);
    free(survivor);
    return result;
}

/* An event about a merged-away id (r was found through its alias) made
 * no later than the merge: the survivor was re-read at the merge and holds
 * what the CRM kept, so a late change, delete or restore of the loser must
 * not land on it. A change the CRM reports under the old id after the
 * merge (HubSpot resolves old ids to the survivor) still does. Events
 * without a time, and re-reads, are not judged. */
static bool predates_merge(struct store *store, const struct connection *conn,
                           const struct crm_event *ev, const struct record *r)
{
    int64_t merged_at = 0;

    if (ev->time <= 0 || !r->crm_id || strcmp(r->crm_id, ev->crm_id) == 0)
        return false;
    if (ev->kind != CRM_EVENT_CHANGE && ev->kind != CRM_EVENT_DELETE &&
        ev->kind != CRM_EVENT_RESTORE)
        return false;
    return store_merged_at(store, conn->id, ev->crm_id, &merged_at) == FS_OK &&
           ev->time <= merged_at;
}

/* Applies one normalised event inside the open transaction. Deals to read
 * afterwards are added to to_read. */
static fs_result apply_event(struct store *store, const struct connection *conn,
                             const struct crm_event *ev,
                             struct id_list *to_read,
                             struct reconcile_effects *fx)
{
    struct record r = {0};
    bool changed = false;
    const char *type = "deal.updated";
    fs_result result;

    if (ev->kind == CRM_EVENT_IGNORED)
        return FS_OK;
    if (ev->kind == CRM_EVENT_MERGE)
        return apply_merge(store, conn, ev, to_read, fx);

    result = store_record_by_crm_id(store, conn->id, ev->crm_id, &r);
    if (result == FS_ERR_NOT_FOUND) {
        /* Unknown deal: a tombstone for a delete (so a late change cannot
         * bring it back), else read it whole. A change is not applied on
         * its own: the read carries our id when the deal is our own create
         * whose CRM id is not stored yet, and must find that record rather
         * than a second one made from the change. */
        new_record(conn, ev->crm_id, &r);
        if (ev->kind != CRM_EVENT_DELETE) {
            id_list_add(to_read, ev->crm_id);
            result = FS_OK;
            goto out;
        }
        changed = true;
        type = "deal.created";
    } else if (result != FS_OK) {
        goto out;
    } else if (predates_merge(store, conn, ev, &r)) {
        log_info("event=crm_event_before_merge connection=%lld crm_id=%s "
                 "survivor=%s",
                 (long long)conn->id, ev->crm_id, r.crm_id);
        goto out;
    }

    switch (ev->kind) {
    case CRM_EVENT_CHANGE:
        for (int f = 0; f < DEAL_FIELD_COUNT; f++) {
            if (!ev->present[f])
                continue;
            struct crm_change change = {
                .value = ev->values[f], .time = ev->time, .actor = ev->actor};
            changed |= merge_one(store, &r, f, &change, fx);
        }
        break;
    case CRM_EVENT_READ:
        id_list_add(to_read, ev->crm_id);
        break;
    case CRM_EVENT_DELETE:
        if (r.deleted_at == 0 || r.deleted_at < ev->time) {
            if (!r.deleted_at) {
                drop_pending_edits(store, &r, ev->time ? ev->time : INT64_MAX,
                                   "deleted in the CRM");
                type = "deal.deleted";
            }
            r.deleted_at = ev->time;
            free(r.deleted_reason);
            r.deleted_reason = xstrdup("crm_delete");
            changed = true;
        }
        break;
    case CRM_EVENT_RESTORE:
        if (r.deleted_at && r.deleted_at <= ev->time) {
            r.deleted_at = 0;
            free(r.deleted_reason);
            r.deleted_reason = NULL;
            changed = true;
        }
        id_list_add(to_read, ev->crm_id);
        break;
    case CRM_EVENT_CREATE:
    case CRM_EVENT_MERGE:
    case CRM_EVENT_IGNORED:
        break;
    }

    result = FS_OK;
    if (changed) {
        result = territory_save_deal(store, &r, clock_now_ms(), NULL);
        if (result == FS_OK)
            hold_for_publish(fx, &r, type);
    }
out:
    record_clear(&r);
    return result;
}

/* Whether the connection is still active, read inside the caller's
 * transaction: the org may have switched CRM since the event was taken or
 * the read began, and its old CRM no longer speaks for the org's deals
 * (they are linked to the new CRM's, often under the same ids). */
static bool still_active(struct store *store, int64_t id)
{
    struct connection c = {0};
    bool active = store_connection_get(store, id, &c) == FS_OK && c.active;

    connection_clear(&c);
    return active;
}

fs_result reconcile_read(struct store *store, struct provider_session *session,
                         const char *const *crm_ids, size_t count,
                         struct reconcile_effects *fx)
{
    const struct provider *provider = provider_by_name(session->conn->provider);

    for (size_t start = 0; start < count; start += READ_BATCH) {
        size_t n = count - start < READ_BATCH ? count - start : READ_BATCH;
        struct crm_deal *deals = NULL;
        size_t got = 0;
        int64_t read_at = clock_now_ms();
        fs_result result =
            provider->read_deals(session, crm_ids + start, n, &deals, &got);
        for (size_t i = 0; i < got; i++)
            deals[i].read_at = read_at;
        if (fx->metrics)
            metrics_add(fx->metrics, METRIC_READ_CALLS, session->conn->id, 1);
        if (result != FS_OK)
            return result;

        result = store_begin(store);
        if (result == FS_OK && !still_active(store, session->conn->id)) {
            store_rollback(store);
            log_info("event=crm_read_dropped reason=connection_inactive "
                     "connection=%lld deals=%zu",
                     (long long)session->conn->id, got);
            crm_deals_free(deals, got);
            return FS_OK;
        }
        for (size_t i = 0; result == FS_OK && i < got; i++) {
            bool needs_read = false;
            result = reconcile_deal(store, session->conn, &deals[i], true,
                                    &needs_read, fx);
        }
        if (result == FS_OK)
            failpoint("reconcile.before_commit");
        result = result == FS_OK ? store_commit(store) : result;
        if (result != FS_OK)
            store_rollback(store);
        reconcile_effects_flush(fx, store, result == FS_OK);
        crm_deals_free(deals, got);
        if (result != FS_OK)
            return result;
    }
    return FS_OK;
}

struct conn_cache {
    struct connection *conns;
    size_t len;
};

static const struct connection *
cached_connection(struct store *store, struct conn_cache *cache, int64_t id)
{
    for (size_t i = 0; i < cache->len; i++) {
        if (cache->conns[i].id == id)
            return &cache->conns[i];
    }
    struct connection c = {0};
    if (store_connection_get(store, id, &c) != FS_OK)
        return NULL;
    cache->conns =
        xrealloc(cache->conns, (cache->len + 1) * sizeof(*cache->conns));
    cache->conns[cache->len] = c;
    return &cache->conns[cache->len++];
}

static void conn_cache_clear(struct conn_cache *cache)
{
    for (size_t i = 0; i < cache->len; i++)
        connection_clear(&cache->conns[i]);
    free(cache->conns);
    memset(cache, 0, sizeof(*cache));
}

/* Applies one batch of inbox events of possibly several connections.
 * Returns how many events it took. */
static size_t reconcile_batch(struct reconciler *rc, struct store *store,
                              struct http_client *http,
                              struct conn_cache *cache)
{
    struct inbox_event *events = NULL;
    size_t n = 0;
    struct reconcile_effects fx = {.live = app_live_stream(rc->app),
                                   .stages = app_stage_cache(rc->app),
                                   .metrics = app_metrics(rc->app)};

    if (store_inbox_next(store, INBOX_BATCH, &events, &n) != FS_OK || n == 0)
        return 0;

    /* Reads are grouped per connection; most batches have one. */
    struct id_list *to_read = xcalloc(n, sizeof(*to_read));
    const struct connection **read_conn = xcalloc(n, sizeof(*read_conn));
    const struct connection **conns = xcalloc(n, sizeof(*conns));
    struct crm_event *evs = xcalloc(n, sizeof(*evs));
    fs_result *parsed = xcalloc(n, sizeof(*parsed));
    bool *active = xcalloc(n, sizeof(*active));
    size_t n_read = 0;

    /* Parsing needs no lock: it is done before the write transaction, so
     * the webhook committer waits only for the merges themselves. */
    for (size_t i = 0; i < n; i++) {
        conns[i] = cached_connection(store, cache, events[i].connection_id);
        const struct provider *provider =
            conns[i] ? provider_by_name(conns[i]->provider) : NULL;
        parsed[i] =
            provider ? provider->parse_event(conns[i], events[i].body, &evs[i])
                     : FS_ERR_NOT_FOUND;
    }

    fs_result result = store_begin(store);
    size_t dropped = 0;
    for (size_t i = 0; result == FS_OK && i < n; i++) {
        const struct connection *conn = conns[i];
        if (parsed[i] != FS_OK) {
            log_warn("event=inbox_event_unparsed id=%lld result=%s",
                     (long long)events[i].id, fs_result_name(parsed[i]));
            result = store_inbox_mark(store, events[i].id, INBOX_FAILED,
                                      fs_result_name(parsed[i]));
            continue;
        }
        /* Taken before the org switched CRM: dropped, as ingest now drops
         * that connection's webhooks. Checked once per connection. */
        size_t seen = 0;
        while (seen < i && conns[seen] != conn)
            seen++;
        if (seen == i)
            active[i] = still_active(store, conn->id);
        else
            active[i] = active[seen];
        if (!active[i]) {
            dropped++;
            result = store_inbox_mark(store, events[i].id, INBOX_DONE, NULL);
            continue;
        }
        size_t slot = 0;
        while (slot < n_read && read_conn[slot] != conn)
            slot++;
        if (slot == n_read)
            read_conn[n_read++] = conn;
        if (evs[i].kind == CRM_EVENT_IGNORED) {
            log_info("event=crm_event_ignored type=%s",
                     evs[i].ignored_type ? evs[i].ignored_type : "-");
            metrics_add(fx.metrics, METRIC_EVENTS_IGNORED, conn->id, 1);
        }
        result = apply_event(store, conn, &evs[i], &to_read[slot], &fx);
        if (result == FS_OK)
            result = store_inbox_mark(store, events[i].id, INBOX_DONE, NULL);
        if (result == FS_OK)
            metrics_add(fx.metrics, METRIC_EVENTS_APPLIED, conn->id, 1);
    }
    if (result == FS_OK) {
        failpoint("apply.before_commit");
        result = store_commit(store);
    }
    if (result != FS_OK) {
        store_rollback(store);
        log_error("event=reconcile_failed result=%s", fs_result_name(result));
    } else if (dropped > 0) {
        log_info("event=crm_events_dropped reason=connection_inactive "
                 "count=%zu",
                 dropped);
    }
    reconcile_effects_flush(&fx, store, result == FS_OK);
    for (size_t i = 0; i < n; i++)
        crm_event_clear(&evs[i]);
    free(evs);
    free(parsed);
    free(active);
    free(conns);

    for (size_t i = 0; i < n_read; i++) {
        if (result == FS_OK && to_read[i].len > 0) {
            struct provider_session session =
                app_session(rc->app, read_conn[i], http);
            fs_result r = reconcile_read(store, &session,
                                         (const char *const *)to_read[i].ids,
                                         to_read[i].len, &fx);
            if (r != FS_OK)
                log_warn("event=crm_read_failed connection=%lld result=%s "
                         "deals=%zu",
                         (long long)read_conn[i]->id, fs_result_name(r),
                         to_read[i].len);
        }
        id_list_clear(&to_read[i]);
    }
    free(to_read);
    free(read_conn);
    store_inbox_events_free(events, n);
    if (fx.repushes > 0)
        app_wake_pusher(rc->app);
    /* After a failed commit the events stay new and are retried on the
     * next wake-up rather than in a tight loop. */
    return result == FS_OK ? n : 0;
}

/* The reconciler's connection does not wait for the disk at each commit:
 * everything it writes is derived from inbox events, which stay 'new'
 * until its commit lands, and from CRM reads it can make again. */
static struct store *acquire_store(struct reconciler *rc)
{
    struct store *store = app_store_acquire(rc->app);

    if (store && store_set_flush(store, false) != FS_OK) {
        app_store_release(rc->app, store);
        store = NULL;
    }
    return store;
}

static void release_store(struct reconciler *rc, struct store *store)
{
    if (store && store_set_flush(store, true) != FS_OK) {
        store_close(store);
        store = NULL;
    }
    app_store_release(rc->app, store);
}

static void *reconciler_main(void *arg)
{
    struct reconciler *rc = arg;
    struct store *store = acquire_store(rc);
    struct http_client *http = http_client_new();
    struct conn_cache cache = {0};

    for (;;) {
        pthread_mutex_lock(&rc->lock);
        if (!rc->woken && !rc->stopping) {
            struct timespec deadline;
            clock_gettime(CLOCK_REALTIME, &deadline);
            deadline.tv_sec += 1;
            pthread_cond_timedwait(&rc->wake, &rc->lock, &deadline);
        }
        bool stopping = rc->stopping;
        rc->woken = false;
        pthread_mutex_unlock(&rc->lock);
        if (stopping)
            break;
        if (!store)
            store = acquire_store(rc);
        while (store && reconcile_batch(rc, store, http, &cache) > 0)
            ;
        /* Connections may change settings; reload them each idle pass. */
        conn_cache_clear(&cache);
    }
    conn_cache_clear(&cache);
    http_client_free(http);
    release_store(rc, store);
    return NULL;
}

struct reconciler *reconciler_new(struct app *app)
{
    struct reconciler *rc = xcalloc(1, sizeof(*rc));
    rc->app = app;
    pthread_mutex_init(&rc->lock, NULL);
    pthread_cond_init(&rc->wake, NULL);
    pthread_create(&rc->thread, NULL, reconciler_main, rc);
    return rc;
}

void reconciler_wake(struct reconciler *rc)
{
    pthread_mutex_lock(&rc->lock);
    rc->woken = true;
    pthread_cond_signal(&rc->wake);
    pthread_mutex_unlock(&rc->lock);
}

void reconciler_free(struct reconciler *rc)
{
    if (!rc)
        return;
    pthread_mutex_lock(&rc->lock);
    rc->stopping = true;
    pthread_cond_signal(&rc->wake);
    pthread_mutex_unlock(&rc->lock);
    pthread_join(rc->thread, NULL);
    pthread_cond_destroy(&rc->wake);
    pthread_mutex_destroy(&rc->lock);
    free(rc);
}
