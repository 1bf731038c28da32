/* The demo's end: faults off, a wait until the sync has settled and the
 * backstop has read the CRM since, a comparison of every deal field by
 * field on both sides, the check of each conflict's winner, and the
 * report. */
#include "demo_internal.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "model/deal.h"
#include "model/merge.h"
#include "services/app.h"
#include "services/metrics.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest wait for the sync to settle once faults are off. */
#define SETTLE_MS 60000
#define SETTLE_POLL_MS 100
/* Differences printed in full; the rest are only counted. */
#define SHOW_DIFFERENCES 10
#define PAGE 1000

struct check {
    struct demo *d;
    struct http_client *http;
    size_t differences;
};

static int64_t backstop_passes(struct demo *d)
{
    return metrics_get(app_metrics(d->app), METRIC_BACKSTOP_PASSES, d->conn_id);
}

static json_t *get_json(struct http_client *http, const char *base,
                        const char *path, const char *token)
{
    char *url = xasprintf("%s%s", base, path);
    json_t *reply = NULL;
    long status = 0;

    if (demo_http_json(http, "GET", url, token, NULL, &status, &reply) !=
            FS_OK ||
        status != 200) {
        json_decref(reply);
        reply = NULL;
    }
    free(url);
    return reply;
}

static bool inbox_empty(struct demo *d)
{
    struct store *store = app_store_acquire(d->app);
    int64_t depth = -1;

    if (store)
        store_inbox_depth(store, &depth);
    app_store_release(d->app, store);
    return depth == 0;
}

/* Nothing queued in the simulator's webhooks, nothing waiting in the
 * inbox, nothing pending or failed in the sync status. */
static bool quiet(struct demo *d, struct http_client *http)
{
    json_t *idle = get_json(http, d->sim_base, "/_sim/idle", NULL);
    bool sim_idle = json_is_true(json_object_get(idle, "idle"));
    json_decref(idle);
    if (!sim_idle || !inbox_empty(d))
        return false;

    json_t *status =
        get_json(http, d->api_base, "/api/v1/sync/status", d->admin_token);
    bool done = status &&
                json_integer_value(json_object_get(status, "pending")) == 0 &&
                json_integer_value(json_object_get(status, "failed")) == 0;
    json_decref(status);
    return done;
}

/* Waits until two backstop passes have ended since the faults stopped
 * (the second began after them) and the sync is quiet twice in a row. */
static bool settle(struct demo *d, struct http_client *http)
{
    int64_t needed = backstop_passes(d) + 2;
    int64_t deadline = clock_mono_ms() + SETTLE_MS;
    int quiet_polls = 0;

    while (clock_mono_ms() < deadline) {
        if (backstop_passes(d) >= needed && quiet(d, http))
            quiet_polls++;
        else
            quiet_polls = 0;
        if (quiet_polls >= 2)
            return true;
        if (!demo_sleep(d, SETTLE_POLL_MS))
            return false;
    }
    return false;
}

static void difference(struct check *c, const char *id, const char *crm_id,
                       const char *field, const char *ours, const char *theirs)
{
    if (c->differences++ < SHOW_DIFFERENCES)
        printf("  difference: deal %s (CRM %s) %s: fieldsync \"%s\", "
               "CRM \"%s\"\n",
               id ? id : "-", crm_id ? crm_id : "-", field,
               ours ? ours : "(empty)", theirs ? theirs : "(empty)");
}

/* Compares one deal of the field API with the CRM's deal of its id and
 * takes the CRM's out of the index. */
static void compare_deal(struct check *c, const json_t *deal, json_t *index)
{
    const char *id = json_string_value(json_object_get(deal, "id"));
    const char *crm_id = json_string_value(json_object_get(deal, "crm_id"));
    json_t *crm = crm_id ? json_object_get(index, crm_id) : NULL;

    c->d->deals_compared++;
    if (!crm) {
        difference(c, id, crm_id, "deal", "present",
                   crm_id ? "missing" : "never created");
        return;
    }
    for (int f = 0; f < DEAL_FIELD_COUNT; f++) {
        /* A field the connection does not sync may differ. */
        if (!(c->d->synced & (1u << f)))
            continue;
        const char *ours = demo_field_value(deal, f);
        char *theirs = NULL;
        if (demo_crm_value(crm, f, &theirs) != FS_OK ||
            !merge_value_equal(ours, theirs)) {
            const char *raw = json_string_value(json_object_get(
                json_object_get(crm, "fields"), deal_fields[f].name));
            difference(c, id, crm_id, deal_fields[f].name, ours,
                       theirs ? theirs : raw);
        }
        free(theirs);
    }
    json_object_del(index, crm_id);
}

/* The simulator's live deals by id, read a page at a time. */
static json_t *crm_index(struct demo *d, struct http_client *http)
{
    json_t *index = json_object();
    json_int_t offset = 0;

    while (offset >= 0) {
        char *path = xasprintf(
            "/_sim/deals?limit=%d&offset=%" JSON_INTEGER_FORMAT, PAGE, offset);
        json_t *page = get_json(http, d->sim_base, path, NULL);
        free(path);
        if (!page) {
            json_decref(index);
            return NULL;
        }
        size_t i;
        json_t *deal;
        json_array_foreach(json_object_get(page, "deals"), i, deal)
        {
            const char *id = json_string_value(json_object_get(deal, "id"));
            if (id && !json_is_true(json_object_get(deal, "archived")))
                json_object_set(index, id, deal);
        }
        json_t *next = json_object_get(page, "next_offset");
        offset = json_is_integer(next) ? json_integer_value(next) : -1;
        json_decref(page);
    }
    return index;
}

/* Every deal of the field API against the CRM, a page at a time; CRM deals
 * fieldsync does not have are differences too. */
static fs_result compare_all(struct check *c)
{
    struct demo *d = c->d;
    json_t *index = crm_index(d, c->http);
    char *cursor = NULL;
    fs_result result = FS_OK;

    if (!index)
        return FS_ERR_UNAVAILABLE;
    for (;;) {
        char *path =
            cursor ? xasprintf("/api/v1/deals?limit=%d&cursor=%s", PAGE, cursor)
                   : xasprintf("/api/v1/deals?limit=%d", PAGE);
        json_t *page = get_json(c->http, d->api_base, path, d->admin_token);
        free(path);
        free(cursor);
        cursor = NULL;
        if (!page) {
            result = FS_ERR_UNAVAILABLE;
            break;
        }
        size_t i;
        json_t *deal;
        json_array_foreach(json_object_get(page, "deals"), i, deal)
            compare_deal(c, deal, index);
        const char *next =
            json_string_value(json_object_get(page, "next_cursor"));
        cursor = next ? xstrdup(next) : NULL;
        json_decref(page);
        if (!cursor)
            break;
    }

    const char *id;
    json_t *left;
    json_object_foreach(index, id, left)
        difference(c, NULL, id, "deal", "missing", "present");
    json_decref(index);
    return result;
}

/* The later edit must win, the CRM on a tie; both sides must end with the
 * winner's value. */
static void check_conflict(struct check *c, const struct demo_conflict *k)
{
    struct demo *d = c->d;
    const struct demo_deal *deal = &d->deals[k->deal];
    bool crm_later = k->crm_time >= k->local_time;
    const char *winner = crm_later ? k->crm_value : k->local_value;
    char *path = xasprintf("/api/v1/deals/%s", deal->id);
    json_t *ours = get_json(c->http, d->api_base, path, d->admin_token);
    free(path);
    path = xasprintf("/_sim/deals/%s", deal->crm_id);
    json_t *crm = get_json(c->http, d->sim_base, path, NULL);
    free(path);
    char *theirs = NULL;

    demo_crm_value(crm, k->field, &theirs);
    const char *value = demo_field_value(ours, k->field);
    if (merge_value_equal(value, winner) && merge_value_equal(theirs, winner)) {
        if (crm_later)
            d->won_crm++;
        else
            d->won_local++;
    } else {
        if (d->won_earlier++ < SHOW_DIFFERENCES)
            printf("  conflict lost by the later edit: deal %s %s: field "
                   "\"%s\" at %" PRId64 ", CRM \"%s\" at %" PRId64
                   "; ended fieldsync \"%s\", CRM \"%s\"\n",
                   deal->id, deal_fields[k->field].name, k->local_value,
                   k->local_time, k->crm_value, k->crm_time,
                   value ? value : "(empty)", theirs ? theirs : "(empty)");
    }
    free(theirs);
    json_decref(crm);
    json_decref(ours);
}

fs_result demo_converge(struct demo *d, size_t *differences_out)
{
    struct check c = {.d = d, .http = http_client_new()};
    int64_t started = clock_mono_ms();

    *differences_out = 0;
    fs_result result = demo_set_faults(d, c.http, false);
    if (result != FS_OK)
        goto out;
    d->settled = settle(d, c.http);
    d->converge_seconds = (double)(clock_mono_ms() - started) / 1000.0;
    if (atomic_load(&d->stop)) {
        result = FS_ERR_BUSY;
        goto out;
    }
    if (!d->settled)
        printf("the sync did not settle within %d s; comparing anyway\n",
               SETTLE_MS / 1000);
    d->sim_stats = get_json(c.http, d->sim_base, "/_sim/stats", NULL);

    result = compare_all(&c);
    for (size_t i = 0; result == FS_OK && i < d->n_conflict_log; i++)
        check_conflict(&c, &d->conflict_log[i]);
    if (result != FS_OK)
        fprintf(stderr,
                "fieldsync demo: cannot read both sides to compare: "
                "%s\n",
                fs_result_name(result));
    *differences_out = c.differences;

out:
    http_client_free(c.http);
    return result;
}

static int64_t stat_of(const struct demo *d, const char *key)
{
    return json_integer_value(json_object_get(d->sim_stats, key));
}

/* why says what holds an edit back longer than the wait. */
static void report_trip(const char *label, struct demo_samples *s,
                        const char *why)
{
    printf("  %-22s p50 %.1f ms, p99 %.1f ms (%zu timed", label,
           demo_samples_quantile(s, 0.5), demo_samples_quantile(s, 0.99), s->n);
    if (s->timed_out > 0)
        printf("; %zu more took over %d s: %s", s->timed_out,
               DEMO_TRIP_WAIT_MS / 1000, why);
    printf(")\n");
}

void demo_report(struct demo *d, size_t differences)
{
    double seconds = d->day_seconds + d->converge_seconds;
    struct metrics *m = app_metrics(d->app);
    json_t *kinds = json_object_get(d->sim_stats, "api_calls_by_kind");
    const char *kind;
    json_t *count;

    printf("\nfieldsync demo report\n");
    printf("  deals imported         %zu in %.1f s\n", d->imported,
           d->import_seconds);
    printf("  working day            %.1f s; settled in %.1f s%s\n",
           d->day_seconds, d->converge_seconds,
           d->settled ? "" : " (did not settle)");
    printf("  edits field -> CRM     %ld through the field API\n",
           atomic_load(&d->edits_field));
    printf("  edits CRM -> field     %ld in %s\n", atomic_load(&d->edits_crm),
           d->opt.crm->label);
    printf("  deals created          %ld in the field\n",
           atomic_load(&d->creates));
    printf("  conflicts              %ld: later edit won %zu (field %zu, "
           "CRM %zu), earlier edit won %zu; engine counted %" PRId64 "\n",
           atomic_load(&d->conflicts), d->won_local + d->won_crm, d->won_local,
           d->won_crm, d->won_earlier,
           metrics_get(m, METRIC_CONFLICTS, d->conn_id));
    if (atomic_load(&d->failed_calls) > 0)
        printf("  refused edits          %ld\n", atomic_load(&d->failed_calls));
    const struct demo_crm *crm = d->opt.crm;
    char calls[64];
    snprintf(calls, sizeof(calls), "%s API calls", crm->label);
    if (strcmp(crm->name, "attio") == 0)
        printf("  %-22s %" PRId64 " in %.0f s against budgets of %d reads "
               "and %d writes a second; 429s %" PRId64 "\n",
               calls, stat_of(d, "api_calls"), seconds, DEMO_ATTIO_READS,
               DEMO_ATTIO_WRITES, stat_of(d, "rate_limited"));
    else
        printf("  %-22s %" PRId64 " in %.0f s against a budget of %.0f "
               "(%d per %.0f s); 429s %" PRId64 "\n",
               calls, stat_of(d, "api_calls"), seconds,
               crm->rate_window * seconds * 1000.0 / (double)crm->window_ms,
               crm->rate_window, crm->window_ms / 1000.0,
               stat_of(d, "rate_limited"));
    printf("    by kind             ");
    json_object_foreach(kinds, kind, count)
    {
        if (json_integer_value(count) > 0)
            printf(" %s %" JSON_INTEGER_FORMAT, kind,
                   json_integer_value(count));
    }
    printf("\n    fieldsync           pushes %" PRId64 " (%" PRId64
           " deals), reads %" PRId64 ", backstop passes %" PRId64 "\n",
           metrics_get(m, METRIC_PUSH_CALLS, d->conn_id),
           metrics_get(m, METRIC_PUSH_RECORDS, d->conn_id),
           metrics_get(m, METRIC_READ_CALLS, d->conn_id),
           metrics_get(m, METRIC_BACKSTOP_PASSES, d->conn_id));
    printf("  webhook events         %" PRId64 " sent, %" PRId64
           " dropped, %" PRId64 " duplicated; fieldsync took %" PRId64
           " (%" PRId64 " repeats), %" PRId64 " echoes\n",
           stat_of(d, "events_sent"), stat_of(d, "events_dropped"),
           stat_of(d, "events_duplicated"),
           metrics_get(m, METRIC_EVENTS_RECEIVED, d->conn_id),
           metrics_get(m, METRIC_EVENTS_DUPLICATE, d->conn_id),
           metrics_get(m, METRIC_ECHOES, d->conn_id));
    demo_report_territories(d);
    printf("  propagation\n");
    report_trip("field -> CRM", &d->to_crm, "pushes held for the rate budget");
    report_trip("CRM -> field", &d->to_field,
                "webhook dropped, healed by the backstop");
    printf("  differences            %zu (%zu deals, every field, both "
           "sides)\n",
           differences, d->deals_compared);
    printf("%s\n",
           differences == 0 ? "converged: both sides agree" : "NOT converged");
    if (d->won_earlier > 0)
        printf("warning: %zu conflicts ended with the earlier edit: a push "
               "landed after a newer CRM edit it overwrote\n",
               d->won_earlier);
    fflush(stdout);
}
