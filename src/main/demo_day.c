/* The demo's working day: reps editing through the field API and admins
 * editing in the simulated CRM, in several threads at once, with
 * webhooks dropped, duplicated and reordered; each edit's trip to the
 * other side is timed, and same-field conflicts are kept for the check. */
#include "demo_internal.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "model/deal.h"
#include "model/merge.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY_WORKERS 6
/* One deal in this many is kept for conflicts, each used once. */
#define DAY_CONFLICT_EVERY 16
#define DAY_CONFLICT_PERCENT 10
#define DAY_CREATE_PERCENT 4
#define DAY_OWNER_PERCENT 5
#define DAY_POLL_MS 3

#define DAY_DROP "0.03"
#define DAY_DUPLICATE "0.05"
#define DAY_DATE_BASE_MS INT64_C(1767225600000) /* 2026-01-01 */
#define DAY_MS INT64_C(86400000)

struct day_worker {
    struct demo *d;
    int id;
    pthread_t thread;
    bool started;
    struct http_client *http;
    uint64_t rng;
    uint64_t serial;
    long edits; /* this worker's share of the day */
    size_t *plain;
    size_t n_plain;
    size_t *contested;
    size_t n_contested;
    size_t next_contested;
    struct demo_conflict *conflicts;
    size_t n_conflicts;
};

/* Fields whose values the plan makes unique, so a trip is seen exactly. */
static const int unique_fields[] = {DEAL_NAME, DEAL_AMOUNT, DEAL_ACCOUNT,
                                    DEAL_PRODUCT};

static uint64_t rng_next(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static size_t rng_below(uint64_t *state, size_t n)
{
    return n ? (size_t)(rng_next(state) % n) : 0;
}

/* ---- reading either side ---- */

const char *demo_field_value(const json_t *deal, int field)
{
    /* The CRM's own stage, to compare with the CRM. */
    const char *name =
        field == DEAL_STAGE ? "crm_stage" : deal_fields[field].name;
    return json_string_value(json_object_get(deal, name));
}

fs_result demo_crm_value(const json_t *sim_deal, int field, char **out)
{
    json_t *fields = json_object_get(sim_deal, "fields");
    const char *value =
        json_string_value(json_object_get(fields, deal_fields[field].name));

    return deal_field_canonical((enum deal_field)field, value, out);
}

static bool crm_shows(const json_t *sim_deal, int field, const char *value)
{
    char *have = NULL;
    bool same = demo_crm_value(sim_deal, field, &have) == FS_OK &&
                merge_value_equal(have, value);
    free(have);
    return same;
}

static bool field_shows(const json_t *deal, int field, const char *value)
{
    return merge_value_equal(demo_field_value(deal, field), value);
}

/* ---- samples ---- */

void demo_samples_add(struct demo_samples *s, int64_t us)
{
    pthread_mutex_lock(&s->lock);
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 256;
        s->us = xrealloc(s->us, s->cap * sizeof(*s->us));
    }
    s->us[s->n++] = us;
    pthread_mutex_unlock(&s->lock);
}

void demo_samples_timed_out(struct demo_samples *s)
{
    pthread_mutex_lock(&s->lock);
    s->timed_out++;
    pthread_mutex_unlock(&s->lock);
}

static int compare_us(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a;
    int64_t y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

double demo_samples_quantile(struct demo_samples *s, double q)
{
    double ms = 0;

    pthread_mutex_lock(&s->lock);
    if (s->n > 0) {
        qsort(s->us, s->n, sizeof(*s->us), compare_us);
        /* Nearest rank: the smallest sample with at least q of all at or
         * below it. */
        size_t rank = (size_t)(q * (double)s->n + 0.999999);
        size_t i = rank == 0 ? 0 : rank - 1;
        ms = (double)s->us[i < s->n ? i : s->n - 1] / 1000.0;
    }
    pthread_mutex_unlock(&s->lock);
    return ms;
}

/* Polls url until match says the deal shows value, then records the time
 * since t0_us in samples (may be NULL: only waits); a trip longer than
 * DEMO_TRIP_WAIT_MS is counted as timed out. */
static void time_trip(struct day_worker *w, const char *url, const char *token,
                      int field, const char *value,
                      bool (*match)(const json_t *, int, const char *),
                      struct demo_samples *samples, int64_t t0_us)
{
    for (;;) {
        json_t *reply = NULL;
        long status = 0;
        bool seen = demo_http_json(w->http, "GET", url, token, NULL, &status,
                                   &reply) == FS_OK &&
                    status == 200 && match(reply, field, value);
        json_decref(reply);
        int64_t now = clock_mono_us();
        if (seen) {
            if (samples)
                demo_samples_add(samples, now - t0_us);
            return;
        }
        if (now - t0_us >= DEMO_TRIP_WAIT_MS * 1000 ||
            atomic_load(&w->d->stop)) {
            if (samples)
                demo_samples_timed_out(samples);
            return;
        }
        clock_sleep_ms(DAY_POLL_MS);
    }
}

/* ---- the plan's values ---- */

/* A new canonical value for the field. Text and amounts are unique in the
 * day; dates, stages and owners are drawn from their ranges. */
static char *new_value(struct day_worker *w, int field)
{
    static const char *const words[] = {"Northwind", "Globex",  "Initech",
                                        "Umbrella",  "Soylent", "Hooli",
                                        "Vandelay",  "Wonka"};
    struct demo *d = w->d;
    uint64_t n = ++w->serial * DAY_WORKERS + (uint64_t)w->id;
    const char *word = words[rng_below(&w->rng, 8)];
    char day[32];
    char *raw = NULL;
    char *canon = NULL;

    switch (field) {
    case DEAL_NAME:
        raw = xasprintf("%s renewal %" PRIu64, word, n);
        break;
    case DEAL_ACCOUNT:
        raw = xasprintf("%s %" PRIu64, word, n);
        break;
    case DEAL_PRODUCT:
        raw = xasprintf("GTX %s %" PRIu64, word, n);
        break;
    case DEAL_AMOUNT:
        raw = xasprintf("%" PRIu64 ".%u", 100 + n, (unsigned)(n % 10));
        break;
    case DEAL_STAGE:
        raw = xstrdup(d->stages[rng_below(&w->rng, d->n_stages)]);
        break;
    case DEAL_OWNER:
        raw = xstrdup(d->reps[rng_below(&w->rng, d->n_reps)].owner_id);
        break;
    default:
        clock_format_iso(
            DAY_DATE_BASE_MS + (int64_t)rng_below(&w->rng, 730) * DAY_MS, day);
        day[10] = '\0';
        raw = xstrdup(day);
        break;
    }
    deal_field_canonical((enum deal_field)field, raw, &canon);
    free(raw);
    return canon;
}

static bool is_unique_field(int field)
{
    for (size_t i = 0; i < sizeof(unique_fields) / sizeof(*unique_fields);
         i++) {
        if (unique_fields[i] == field)
            return true;
    }
    return false;
}

/* ---- one edit on each side ---- */

static const char *token_for(const struct demo *d, const struct demo_deal *deal)
{
    return deal->rep >= 0 ? d->reps[deal->rep].token : d->admin_token;
}

/* PATCHes the field through the field API as the deal's rep. True when
 * applied; *time_out gets the time the service stamped the edit with. */
static bool patch_field(struct day_worker *w, const struct demo_deal *deal,
                        int field, const char *value, int64_t *time_out)
{
    struct demo *d = w->d;
    const char *name = deal_fields[field].name;
    char *url = xasprintf("%s/api/v1/deals/%s", d->api_base, deal->id);
    json_t *body = json_pack("{s:{s:s?}}", "fields", name,
                             demo_api_value(d, field, value));
    json_t *reply = NULL;
    long status = 0;

    fs_result result = demo_http_json(w->http, "PATCH", url, token_for(d, deal),
                                      body, &status, &reply);
    bool ok = result == FS_OK && status == 200;
    const char *outcome = json_string_value(
        json_object_get(json_object_get(reply, "edits"), name));
    bool applied = outcome && strcmp(outcome, "applied") == 0;
    json_t *time = json_object_get(
        json_object_get(
            json_object_get(
                json_object_get(json_object_get(reply, "deal"), "sync"),
                "fields"),
            name),
        "time");
    if (ok) {
        atomic_fetch_add(&d->edits_field, 1);
        *time_out = json_integer_value(time);
    } else {
        atomic_fetch_add(&d->failed_calls, 1);
    }
    json_decref(reply);
    json_decref(body);
    free(url);
    return ok && applied;
}

/* PATCHes the field in the simulator as a CRM user. True when done;
 * *time_out gets the CRM's modification time. */
static bool patch_crm(struct day_worker *w, const struct demo_deal *deal,
                      int field, const char *value, int64_t *time_out)
{
    struct demo *d = w->d;
    char *url = xasprintf("%s/_sim/deals/%s", d->sim_base, deal->crm_id);
    json_t *reply = NULL;
    long status = 0;

    json_t *body = json_pack("{s:{s:o}}", "fields", deal_fields[field].name,
                             value ? json_string(value) : json_null());
    fs_result result =
        demo_http_json(w->http, "PATCH", url, NULL, body, &status, &reply);
    json_t *modified = json_object_get(reply, "modified");
    bool ok = result == FS_OK && status == 200 && json_is_integer(modified);
    if (ok) {
        atomic_fetch_add(&d->edits_crm, 1);
        *time_out = json_integer_value(modified);
    } else {
        atomic_fetch_add(&d->failed_calls, 1);
    }
    json_decref(reply);
    json_decref(body);
    free(url);
    return ok;
}

/* A rep's edit of one field (never the owner: reps keep their deals). */
static void field_edit(struct day_worker *w, struct demo_deal *deal)
{
    struct demo *d = w->d;
    int field = (int)rng_below(&w->rng, DEAL_FIELD_COUNT - 1);
    int64_t time = 0;

    if (field >= DEAL_OWNER)
        field++;
    if (!(d->synced & (1u << field)))
        return;
    char *value = new_value(w, field);
    if (patch_field(w, deal, field, value, &time) && is_unique_field(field)) {
        int64_t t0 = clock_mono_us();
        char *url = xasprintf("%s/_sim/deals/%s", d->sim_base, deal->crm_id);
        time_trip(w, url, NULL, field, value, crm_shows, &d->to_crm, t0);
        free(url);
    }
    free(value);
}

/* An admin's edit in the CRM; now and then it hands the deal to another
 * owner, and that rep edits it from then on. */
static void crm_edit(struct day_worker *w, struct demo_deal *deal)
{
    struct demo *d = w->d;
    int field = DEAL_OWNER;
    int64_t time = 0;

    if (rng_below(&w->rng, 100) >= DAY_OWNER_PERCENT) {
        field = (int)rng_below(&w->rng, DEAL_FIELD_COUNT - 1);
        if (field >= DEAL_OWNER)
            field++;
    }
    if (!(d->synced & (1u << field)))
        return;
    char *value = new_value(w, field);
    if (patch_crm(w, deal, field, value, &time)) {
        int64_t t0 = clock_mono_us();
        char *url = xasprintf("%s/api/v1/deals/%s", d->api_base, deal->id);
        /* Unique values are timed; others are only waited for, so the
         * next edit of this deal finds the field side up to date. */
        time_trip(w, url, d->admin_token, field, value, field_shows,
                  is_unique_field(field) ? &d->to_field : NULL, t0);
        free(url);
        if (field == DEAL_OWNER)
            deal->rep = demo_rep_of(d, value);
    }
    free(value);
}

/* The same field edited on both sides within a few milliseconds, in a
 * random order; the outcome is checked once both sides have settled. */
static void conflict(struct day_worker *w, size_t index)
{
    struct demo_deal *deal = &w->d->deals[index];
    int field = unique_fields[rng_below(&w->rng, sizeof(unique_fields) /
                                                     sizeof(*unique_fields))];
    if (!(w->d->synced & (1u << field)))
        return;
    struct demo_conflict c = {
        .deal = index,
        .field = field,
        .local_value = new_value(w, field),
        .crm_value = new_value(w, field),
    };
    bool crm_first = rng_below(&w->rng, 2) == 0;
    bool ok;

    if (crm_first)
        ok = patch_crm(w, deal, field, c.crm_value, &c.crm_time) &&
             patch_field(w, deal, field, c.local_value, &c.local_time);
    else
        ok = patch_field(w, deal, field, c.local_value, &c.local_time) &&
             patch_crm(w, deal, field, c.crm_value, &c.crm_time);
    if (!ok) {
        free(c.local_value);
        free(c.crm_value);
        return;
    }
    atomic_fetch_add(&w->d->conflicts, 1);
    w->conflicts =
        xrealloc(w->conflicts, (w->n_conflicts + 1) * sizeof(*w->conflicts));
    w->conflicts[w->n_conflicts++] = c;
}

/* A lead created in the field by a rep (or an admin, for unowned). */
static void create_deal(struct day_worker *w)
{
    struct demo *d = w->d;
    const char *token = d->n_reps > 0
                            ? d->reps[rng_below(&w->rng, d->n_reps)].token
                            : d->admin_token;
    char *name = new_value(w, DEAL_NAME);
    char *amount = new_value(w, DEAL_AMOUNT);
    char *stage = new_value(w, DEAL_STAGE);
    char *close = new_value(w, DEAL_CLOSE_DATE);
    char *url = xasprintf("%s/api/v1/deals", d->api_base);
    json_t *body = json_pack(
        "{s:{s:s, s:s, s:s, s:s}}", "fields", "name", name, "amount", amount,
        "stage", demo_api_value(d, DEAL_STAGE, stage), "close_date", close);
    long status = 0;

    if (demo_http_json(w->http, "POST", url, token, body, &status, NULL) ==
            FS_OK &&
        status == 201)
        atomic_fetch_add(&d->creates, 1);
    else
        atomic_fetch_add(&d->failed_calls, 1);
    json_decref(body);
    free(url);
    free(close);
    free(stage);
    free(amount);
    free(name);
}

static void *worker_main(void *arg)
{
    struct day_worker *w = arg;
    struct demo *d = w->d;
    long done = 0;

    while (done < w->edits && w->n_plain > 0 && !atomic_load(&d->stop)) {
        size_t roll = rng_below(&w->rng, 100);
        struct demo_deal *deal =
            &d->deals[w->plain[rng_below(&w->rng, w->n_plain)]];

        if (roll < DAY_CONFLICT_PERCENT && done + 2 <= w->edits &&
            w->next_contested < w->n_contested) {
            conflict(w, w->contested[w->next_contested++]);
            done += 2;
        } else if (roll < DAY_CONFLICT_PERCENT + DAY_CREATE_PERCENT) {
            create_deal(w);
            done++;
        } else if (roll % 2 == 0) {
            field_edit(w, deal);
            done++;
        } else {
            crm_edit(w, deal);
            done++;
        }
    }
    return NULL;
}

/* Deals are split between workers so that no two touch one deal; one in
 * DAY_CONFLICT_EVERY owned ones is kept for a single conflict. */
static void assign_deals(struct demo *d, struct day_worker *workers)
{
    for (size_t i = 0; i < d->n_deals; i++) {
        struct day_worker *w = &workers[i % DAY_WORKERS];
        bool contested =
            (i / DAY_WORKERS) % DAY_CONFLICT_EVERY == 0 && d->deals[i].rep >= 0;
        size_t **list = contested ? &w->contested : &w->plain;
        size_t *n = contested ? &w->n_contested : &w->n_plain;
        *list = xrealloc(*list, (*n + 1) * sizeof(**list));
        (*list)[(*n)++] = i;
    }
}

static fs_result sim_post(struct demo *d, struct http_client *http,
                          const char *path, const char *json)
{
    char *url = xasprintf("%s%s", d->sim_base, path);
    json_t *body = json ? json_loads(json, 0, NULL) : NULL;
    long status = 0;

    fs_result result =
        demo_http_json(http, "POST", url, NULL, body, &status, NULL);
    if (result == FS_OK && status != 200)
        result = FS_ERR_UNAVAILABLE;
    if (result != FS_OK)
        fprintf(stderr, "fieldsync demo: POST %s failed: %s (HTTP %ld)\n", url,
                fs_result_name(result), status);
    json_decref(body);
    free(url);
    return result;
}

fs_result demo_set_faults(struct demo *d, struct http_client *http, bool on)
{
    return sim_post(d, http, "/_sim/faults",
                    on ? "{\"drop\": " DAY_DROP
                         ", \"duplicate\": " DAY_DUPLICATE
                         ", \"reorder\": true}"
                       : "{\"drop\": 0, \"duplicate\": 0, \"reorder\": false, "
                         "\"delay_ms\": 0}");
}

fs_result demo_run_day(struct demo *d)
{
    struct day_worker workers[DAY_WORKERS];
    struct http_client *http = http_client_new();
    int64_t started = clock_mono_ms();

    memset(workers, 0, sizeof(workers));
    printf("working day: %ld edits in %d threads, webhooks dropped %s, "
           "duplicated %s, reordered\n",
           d->opt.edits, DAY_WORKERS, DAY_DROP, DAY_DUPLICATE);
    fflush(stdout);
    fs_result result = sim_post(d, http, "/_sim/stats/reset", NULL);
    if (result == FS_OK)
        result = demo_set_faults(d, http, true);
    if (result != FS_OK)
        goto out;

    assign_deals(d, workers);
    for (int i = 0; i < DAY_WORKERS; i++) {
        struct day_worker *w = &workers[i];
        w->d = d;
        w->id = i;
        w->rng = d->opt.seed * DAY_WORKERS + (uint64_t)i;
        w->edits = d->opt.edits / DAY_WORKERS +
                   (i < d->opt.edits % DAY_WORKERS ? 1 : 0);
        w->http = http_client_new();
        w->started = pthread_create(&w->thread, NULL, worker_main, w) == 0;
        if (!w->started)
            result = FS_ERR_BUSY;
    }
    for (int i = 0; i < DAY_WORKERS; i++) {
        struct day_worker *w = &workers[i];
        if (w->started)
            pthread_join(w->thread, NULL);
        d->conflict_log =
            xrealloc(d->conflict_log, (d->n_conflict_log + w->n_conflicts + 1) *
                                          sizeof(*d->conflict_log));
        memcpy(d->conflict_log + d->n_conflict_log, w->conflicts,
               w->n_conflicts * sizeof(*w->conflicts));
        d->n_conflict_log += w->n_conflicts;
        free(w->conflicts);
        free(w->plain);
        free(w->contested);
        http_client_free(w->http);
    }
    d->day_seconds = (double)(clock_mono_ms() - started) / 1000.0;
    if (atomic_load(&d->stop))
        result = FS_ERR_BUSY;

out:
    http_client_free(http);
    return result;
}
