/* The random operations of workload.h. Values come from small sets, so
 * both sides often write the same value (echoes and no-op writes) and the
 * same few deals (conflicts). */
#include "workload.h"

#include "http_test.h"

#include "base/alloc.h"
#include "base/clock.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Deals most operations go to, so both sides meet on them. */
#define HOT_DEALS 4
/* Longest wait for the simulator to hand over a protected change. */
#define IDLE_WAIT_MS 30000
/* Operations between two of the CRM's own 429 windows (the first after
 * half as many). */
#define EXHAUST_EVERY 150

/* The fields a test edits, by their field API names. */
static const char *const editable[] = {
    "name", "stage", "amount", "owner", "close_date", "account", "product"};
#define N_EDITABLE (sizeof(editable) / sizeof(editable[0]))

static const char *const names[] = {"Roof", "Boiler", "Solar", "Heat pump"};
static const char *const amounts[] = {"100", "250.5", "999", "1200", "42"};
static const char *const accounts[] = {"Acme", "Globex", "Initech"};
static const char *const products[] = {"GTX Basic", "GTX Pro", "MG Special"};
/* The org's stages and the CRM stage each is written as under
 * STACK_STAGE_MAP (in_quote as Engaging). */
static const char *const org_stages[] = {"new", "qualified", "won", "lost",
                                         "in_quote"};
static const char *const crm_labels[] = {"Prospecting", "Engaging", "Won",
                                         "Lost", "Engaging"};

uint64_t workload_seed(const char *test)
{
    const char *env = getenv("FS_SEED");
    uint64_t seed = env && *env ? strtoull(env, NULL, 10)
                                : (uint64_t)clock_now_ms() ^
                                      ((uint64_t)clock_mono_us() << 20);
    printf("%s: seed %" PRIu64 " (FS_SEED=%" PRIu64 " replays it)\n", test,
           seed, seed);
    fflush(stdout);
    return seed;
}

int workload_ops(int dflt)
{
    const char *env = getenv("FS_OPS");
    long n = env && *env ? strtol(env, NULL, 10) : dflt;
    return n > 0 && n < 10000000 ? (int)n : dflt;
}

uint32_t workload_rand(struct workload *w, uint32_t n)
{
    /* splitmix64 */
    uint64_t z = (w->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return n ? (uint32_t)(z % n) : 0;
}

void workload_init(struct workload *w, struct stack *st, uint64_t seed)
{
    memset(w, 0, sizeof(*w));
    w->st = st;
    w->rng = seed;
    w->faults_now = xstrdup(STACK_NO_FAULTS);
    w->last_exhaust = -EXHAUST_EVERY / 2;
    w->tag = workload_rand(w, 100000);
    w->unanswered_creates = json_array();
    w->given_up_before = stack_sim_stat(st, "webhooks_given_up", NULL);
    oracle_seed(&w->oracle, st);
}

void workload_free(struct workload *w)
{
    oracle_free(&w->oracle);
    free(w->faults_now);
    json_decref(w->unanswered_creates);
    memset(w, 0, sizeof(*w));
}

/* ---- choosing deals ---- */

static json_t *fs_deal_by_crm_id(struct stack *st, const char *crm_id)
{
    json_t *deals = stack_deals(st, false);
    json_t *found = NULL;
    size_t i;
    json_t *d;

    json_array_foreach(deals, i, d)
    {
        if (!found && crm_id && stack_text(d, "crm_id") &&
            strcmp(stack_text(d, "crm_id"), crm_id) == 0)
            found = json_incref(d);
    }
    json_decref(deals);
    return found;
}

/* The deal's record in fieldsync (looked up by CRM id when our id is not
 * known yet), or NULL. Learns whichever id was missing. */
static json_t *fs_deal(struct workload *w, size_t i)
{
    struct oracle_deal *d = &w->oracle.deals[i];
    json_t *deal = d->our_id ? stack_deal(w->st, d->our_id)
                             : fs_deal_by_crm_id(w->st, d->crm_id);

    if (!d->our_id && stack_text(deal, "id"))
        d->our_id = xstrdup(stack_text(deal, "id"));
    if (!d->crm_id && stack_text(deal, "crm_id"))
        d->crm_id = xstrdup(stack_text(deal, "crm_id"));
    return deal;
}

static bool usable(struct workload *w, size_t i, bool deleted, bool need_crm,
                   bool need_ours)
{
    struct oracle_deal *d = &w->oracle.deals[i];

    if (d->deleted != deleted || d->merged)
        return false;
    if ((need_crm && !d->crm_id) || (need_ours && !d->our_id))
        json_decref(fs_deal(w, i));
    return (!need_crm || d->crm_id) && (!need_ours || d->our_id);
}

/* A deal to work on: usually one of the hot few. -1 when none fits. */
static long pick(struct workload *w, bool deleted, bool need_crm,
                 bool need_ours)
{
    size_t n = w->oracle.n;

    for (int tries = 0; tries < 8 && n > 0; tries++) {
        size_t i =
            workload_rand(w, 2) == 0
                ? workload_rand(w, n < HOT_DEALS ? (uint32_t)n : HOT_DEALS)
                : workload_rand(w, (uint32_t)n);
        if (usable(w, i, deleted, need_crm, need_ours))
            return (long)i;
    }
    for (size_t i = 0; !deleted && i < n; i++)
        if (usable(w, i, deleted, need_crm, need_ours))
            return (long)i;
    return -1;
}

static bool same_text(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

/* ---- values ---- */

static const char *pick_of(struct workload *w, const char *const *set, size_t n)
{
    return set[workload_rand(w, (uint32_t)n)];
}
#define PICK(w, set) pick_of(w, set, sizeof(set) / sizeof(set[0]))

/* A value for the field: the JSON to send for the side, and the CRM's
 * canonical value it should become (NULL: empty), both set. */
static void value_for(struct workload *w, const char *field, bool crm,
                      json_t **send, char **canonical)
{
    char *v = NULL;
    json_t *j = NULL;
    bool may_clear =
        strcmp(field, "amount") == 0 || strcmp(field, "account") == 0 ||
        strcmp(field, "product") == 0 || strcmp(field, "close_date") == 0;

    /* Where an emptied field shows no time, neither side clears
     * (docs/LIMITATIONS.md). */
    if (!w->st->crm->clears_timed)
        may_clear = false;
    if (may_clear && workload_rand(w, 8) == 0) {
        *send = json_null();
        *canonical = NULL;
        return;
    }
    if (strcmp(field, "name") == 0) {
        v = xasprintf("%s %c", PICK(w, names), 'A' + workload_rand(w, 3));
    } else if (strcmp(field, "stage") == 0) {
        uint32_t k = workload_rand(w, crm ? 4 : 5);
        v = xstrdup(stack_stage_id(w->st, crm_labels[k]));
        j = json_string(crm ? v : org_stages[k]);
    } else if (strcmp(field, "amount") == 0) {
        v = xstrdup(PICK(w, amounts));
    } else if (strcmp(field, "owner") == 0) {
        v = xstrdup(stack_owner_id(w->st, workload_rand(w, 3)));
    } else if (strcmp(field, "close_date") == 0) {
        v = xasprintf("2026-%02u-%02u", 1 + workload_rand(w, 3),
                      1 + workload_rand(w, 3));
    } else if (strcmp(field, "account") == 0) {
        v = xstrdup(PICK(w, accounts));
    } else {
        v = xstrdup(PICK(w, products));
    }
    *send = j ? j : json_string(v);
    *canonical = v;
}

/* Picks 1 to 3 distinct editable fields into picked; returns how many. */
static size_t pick_fields(struct workload *w, int picked[3])
{
    size_t n = 1 + workload_rand(w, 3);

    for (size_t k = 0; k < n; k++) {
        bool again;
        do {
            picked[k] = (int)workload_rand(w, N_EDITABLE);
            again = false;
            for (size_t j = 0; j < k; j++)
                again |= picked[j] == picked[k];
        } while (again);
    }
    return n;
}

/* ---- the sides ---- */

static void note_unexpected(const char *what, long status, const json_t *r)
{
    char *text = r ? json_dumps(r, JSON_COMPACT) : NULL;
    printf("  note: %s answered %ld %s\n", what, status, text ? text : "");
    free(text);
}

static int64_t field_time(const json_t *deal, const char *field)
{
    json_t *f = json_object_get(
        json_object_get(json_object_get(deal, "sync"), "fields"), field);
    return json_integer_value(json_object_get(f, "time"));
}

/* The body {"fields": {...}} of an edit of the given fields from one
 * side (caller frees); canon[k] gets each value's canonical form. */
static char *edit_body(struct workload *w, const int *fields, size_t n,
                       bool crm, char **canon)
{
    json_t *f = json_object();

    for (size_t k = 0; k < n; k++) {
        json_t *send;
        value_for(w, editable[fields[k]], crm, &send, &canon[k]);
        json_object_set_new(f, editable[fields[k]], send);
    }
    json_t *body = json_pack("{s:o}", "fields", f);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    return text;
}

/* A field API edit of the given fields; the applied ones become local
 * writes at the times the answer gives. */
static void local_edit(struct workload *w, size_t i, const int *fields,
                       size_t n)
{
    struct oracle_deal *d = &w->oracle.deals[i];
    char *canon[3] = {0};
    long status;
    char *text = edit_body(w, fields, n, false, canon);
    int64_t sent_at = clock_now_ms();
    json_t *r = stack_patch(w->st, w->st->admin, d->our_id, text, &status);

    w->local_edits++;
    if (status == 200) {
        json_t *deal = json_object_get(r, "deal");
        json_t *edits = json_object_get(r, "edits");
        for (size_t k = 0; k < n; k++) {
            const char *name = editable[fields[k]];
            const char *how = stack_text(edits, name);
            /* remapped: applied, as a CRM stage that reads back as
             * another org stage (in_quote as Engaging). */
            if (how &&
                (strcmp(how, "applied") == 0 || strcmp(how, "remapped") == 0))
                oracle_write(&w->oracle, i, oracle_field(name), canon[k],
                             field_time(deal, name), false, w->op);
        }
    } else if (status == 0) {
        /* No answer (the service died): the edit may or may not have
         * been made; either is right, as it was never confirmed. */
        w->unanswered++;
        for (size_t k = 0; k < n; k++)
            oracle_write_maybe(&w->oracle, i, oracle_field(editable[fields[k]]),
                               canon[k], sent_at, w->op);
    } else if (status == 409 && d->deleted) {
        w->refused++;
    } else {
        w->refused++;
        note_unexpected("PATCH /api/v1/deals", status, r);
    }
    for (size_t k = 0; k < n; k++)
        free(canon[k]);
    json_decref(r);
    free(text);
}

/* A CRM user's edit; each field the answer shows with our value and a
 * time from this call on is a CRM write at that time. */
static void crm_edit(struct workload *w, size_t i, const int *fields, size_t n)
{
    struct oracle_deal *d = &w->oracle.deals[i];
    char *canon[3] = {0};
    long status;
    char *text = edit_body(w, fields, n, true, canon);
    char *path = xasprintf("/_sim/deals/%s", d->crm_id);
    int64_t t0 = clock_now_ms();
    json_t *r = stack_sim(w->st, "PATCH", path, text, &status);

    w->crm_edits++;
    if (status == 200) {
        json_t *values = json_object_get(r, "fields");
        json_t *times = json_object_get(r, "times");
        for (size_t k = 0; k < n; k++) {
            const char *name = editable[fields[k]];
            const char *now = json_string_value(json_object_get(values, name));
            int64_t t = json_integer_value(json_object_get(times, name));
            bool ours = (!now && !canon[k]) ||
                        (now && canon[k] && strcmp(now, canon[k]) == 0);
            if (ours && t >= t0)
                oracle_write(&w->oracle, i, oracle_field(name), canon[k], t,
                             true, w->op);
        }
    } else {
        w->refused++;
        if (status != 409)
            note_unexpected("PATCH /_sim/deals", status, r);
    }
    for (size_t k = 0; k < n; k++)
        free(canon[k]);
    json_decref(r);
    free(path);
    free(text);
}

static void local_create(struct workload *w)
{
    json_t *f = json_object();
    char *canon[N_EDITABLE] = {0};
    long status;

    for (size_t k = 0; k < N_EDITABLE; k++) {
        json_t *send;
        value_for(w, editable[k], false, &send, &canon[k]);
        if (k == 0) {
            /* A name no other deal has, to find it by. */
            free(canon[k]);
            canon[k] = xasprintf("Lead %u-%d", w->tag, w->op);
            json_decref(send);
            send = json_string(canon[k]);
        }
        if (canon[k])
            json_object_set_new(f, editable[k], send);
        else
            json_decref(send);
    }
    json_t *body = json_pack("{s:o}", "fields", f);
    char *text = json_dumps(body, JSON_COMPACT);
    json_t *r =
        stack_api(w->st, w->st->admin, "POST", "/api/v1/deals", text, &status);
    json_t *sent = json_object();
    for (size_t k = 0; k < N_EDITABLE; k++)
        if (canon[k])
            json_object_set_new(sent, editable[k], json_string(canon[k]));

    w->local_creates++;
    if (status == 201 && stack_text(r, "id")) {
        size_t i = oracle_add(&w->oracle, stack_text(r, "id"), NULL, true);
        for (size_t k = 0; k < N_EDITABLE; k++)
            if (canon[k])
                oracle_write(&w->oracle, i, oracle_field(editable[k]), canon[k],
                             field_time(r, editable[k]), false, w->op);
    } else if (status == 0) {
        /* Never confirmed: the deal may exist or not. */
        w->unanswered++;
        json_array_append(w->unanswered_creates, sent);
    } else {
        w->refused++;
        note_unexpected("POST /api/v1/deals", status, r);
    }
    for (size_t k = 0; k < N_EDITABLE; k++)
        free(canon[k]);
    json_decref(sent);
    json_decref(r);
    free(text);
    json_decref(body);
}

static void crm_create(struct workload *w)
{
    json_t *f = json_object();
    long status;

    for (size_t k = 0; k < N_EDITABLE; k++) {
        json_t *send;
        char *canon;
        value_for(w, editable[k], true, &send, &canon);
        if (canon)
            json_object_set_new(f, editable[k], send);
        else
            json_decref(send);
        free(canon);
    }
    json_t *body = json_pack("{s:o}", "fields", f);
    char *text = json_dumps(body, JSON_COMPACT);
    json_t *r = stack_sim(w->st, "POST", "/_sim/deals", text, &status);

    w->crm_creates++;
    if (status == 201 && stack_text(r, "id")) {
        size_t i = oracle_add(&w->oracle, NULL, stack_text(r, "id"), false);
        oracle_crm_answer(&w->oracle, i, r, 0, w->op);
    } else {
        w->refused++;
        note_unexpected("POST /_sim/deals", status, r);
    }
    json_decref(r);
    free(text);
    json_decref(body);
}

/* Whether fieldsync holds the deal live with nothing left to push: a CRM
 * delete or merge of it then has one outcome under the rules (a pending
 * edit might reach the CRM before the change or be ended by it). */
static bool synced(struct workload *w, size_t i)
{
    json_t *deal = fs_deal(w, i);
    const char *state = stack_text(json_object_get(deal, "sync"), "state");
    bool ok = deal && !json_is_true(json_object_get(deal, "deleted")) &&
              state && strcmp(state, "synced") == 0;

    json_decref(deal);
    return ok;
}

static bool sim_idle(void *ctx)
{
    struct stack *st = ctx;
    long status;
    json_t *r = stack_sim(st, "GET", "/_sim/idle", NULL, &status);
    bool idle = status == 200 && json_is_true(json_object_get(r, "idle"));

    json_decref(r);
    return idle;
}

/* Deletions, merges and restores are made with no webhook dropped (the
 * backstop cannot see a deal leave the CRM: docs/LIMITATIONS.md), and
 * handed over before the drops resume; every other fault stays on. */
static void protect(struct workload *w, bool on)
{
    if (!w->faults)
        return;
    if (on) {
        json_t *f = json_loads(w->faults_now, 0, NULL);
        json_object_set_new(f, "drop", json_real(0));
        char *text = json_dumps(f, JSON_COMPACT);
        stack_faults(w->st, text);
        free(text);
        json_decref(f);
    } else {
        if (!http_test_poll(sim_idle, w->st, IDLE_WAIT_MS))
            printf("  note: the simulator did not go idle\n");
        stack_faults(w->st, w->faults_now);
    }
}

static void crm_delete(struct workload *w)
{
    long i = pick(w, false, true, false);
    long status;

    if (i < 0 || !synced(w, (size_t)i)) {
        w->skipped++;
        return;
    }
    struct oracle_deal *d = &w->oracle.deals[i];
    char *path = xasprintf("/_sim/deals/%s", d->crm_id);
    protect(w, true);
    json_t *r = stack_sim(w->st, "DELETE", path, NULL, &status);
    if (status == 200) {
        d->deleted = true;
        w->deletes++;
    } else {
        w->refused++;
        note_unexpected("DELETE /_sim/deals", status, r);
    }
    protect(w, false);
    json_decref(r);
    free(path);
}

static void crm_merge(struct workload *w)
{
    long a = pick(w, false, true, false);
    long b = pick(w, false, true, false);
    long status;

    if (a < 0 || b < 0 || a == b || !synced(w, (size_t)a) ||
        !synced(w, (size_t)b)) {
        w->skipped++;
        return;
    }
    struct oracle_deal *p = &w->oracle.deals[a];
    struct oracle_deal *m = &w->oracle.deals[b];
    json_t *body =
        json_pack("{s:s, s:[s]}", "primary", p->crm_id, "merged", m->crm_id);
    char *text = json_dumps(body, JSON_COMPACT);
    protect(w, true);
    int64_t t0 = clock_now_ms();
    json_t *r = stack_sim(w->st, "POST", "/_sim/merge", text, &status);
    if (status == 200 && stack_text(r, "id")) {
        if (strcmp(stack_text(r, "id"), p->crm_id) != 0) {
            free(p->crm_id);
            p->crm_id = xstrdup(stack_text(r, "id"));
        }
        /* Which record survives is fieldsync's to say: look it up by the
         * CRM id from now on. */
        free(p->our_id);
        p->our_id = NULL;
        oracle_crm_answer(&w->oracle, (size_t)a, r, t0, w->op);
        m->deleted = m->merged = true;
        /* Where the merge's webhooks name no primary, either record may
         * live on: the loser is then known by its CRM id only. */
        if (!w->st->crm->merge_names_primary) {
            free(m->our_id);
            m->our_id = NULL;
        }
        w->merges++;
    } else {
        w->refused++;
        note_unexpected("POST /_sim/merge", status, r);
    }
    protect(w, false);
    json_decref(r);
    free(text);
    json_decref(body);
}

static void crm_restore(struct workload *w)
{
    long i = w->st->crm->restores && !w->no_restores
                 ? pick(w, true, true, false)
                 : -1;
    long status;

    if (i < 0 || w->oracle.deals[i].frozen) {
        w->skipped++;
        return;
    }
    struct oracle_deal *d = &w->oracle.deals[i];
    char *path = xasprintf("/_sim/deals/%s/restore", d->crm_id);
    protect(w, true);
    int64_t t0 = clock_now_ms();
    json_t *r = stack_sim(w->st, "POST", path, NULL, &status);
    if (status == 200) {
        d->deleted = false;
        oracle_crm_answer(&w->oracle, (size_t)i, r, t0, w->op);
        w->restores++;
    } else {
        w->refused++;
        note_unexpected("POST /_sim/deals/restore", status, r);
    }
    protect(w, false);
    json_decref(r);
    free(path);
}

static void exhaust(struct workload *w)
{
    long status;
    if (!w->faults || w->op - w->last_exhaust < EXHAUST_EVERY) {
        w->skipped++;
        return;
    }
    json_decref(
        stack_sim(w->st, "POST", "/_sim/limits/exhaust", NULL, &status));
    w->last_exhaust = w->op;
    w->exhausts += status == 200;
}

bool workload_set_faults(struct workload *w, bool on)
{
    static const double drops[] = {0, 0.1, 0.3};
    static const double dups[] = {0, 0.2, 0.5};
    static const int delays[] = {0, 50, 300};
    static const double errors[] = {0, 0.05, 0.15};
    static const double timeouts[] = {0, 0, 0.01};

    free(w->faults_now);
    if (!on) {
        w->faults_now = xstrdup(STACK_NO_FAULTS);
    } else {
        w->faults_now = xasprintf(
            "{\"drop\":%g,\"duplicate\":%g,\"reorder\":%s,\"delay_ms\":%d,"
            "\"api_5xx\":%g,\"api_timeout\":%g,\"webhooks_paused\":false}",
            drops[workload_rand(w, 3)], dups[workload_rand(w, 3)],
            workload_rand(w, 2) ? "true" : "false", delays[workload_rand(w, 3)],
            errors[workload_rand(w, 3)], timeouts[workload_rand(w, 3)]);
    }
    w->faults = on;
    return stack_faults(w->st, w->faults_now);
}

void workload_step(struct workload *w)
{
    uint32_t roll = workload_rand(w, 100);
    int fields[3];
    long i;

    w->op++;
    /* The CRM's own 429 on a schedule, so even a short run meets it. */
    if (w->faults && w->op - w->last_exhaust >= EXHAUST_EVERY) {
        exhaust(w);
        return;
    }
    if (w->down && (roll < 30 || (roll >= 60 && roll < 75) || roll >= 92)) {
        roll = 30; /* fieldsync is down: a CRM edit instead */
    }
    if ((w->down || w->killing) && roll >= 80 && roll < 92) {
        roll = 75; /* a gated change needs fieldsync: a CRM create */
    }
    if (roll < 30) {
        size_t n = pick_fields(w, fields);
        if ((i = pick(w, false, false, true)) >= 0)
            local_edit(w, (size_t)i, fields, n);
        else
            w->skipped++;
    } else if (roll < 60) {
        size_t n = pick_fields(w, fields);
        if ((i = pick(w, false, true, false)) >= 0)
            crm_edit(w, (size_t)i, fields, n);
        else
            w->skipped++;
    } else if (roll < 70) {
        /* Both sides write one field of one deal, in either order. */
        fields[0] = (int)workload_rand(w, N_EDITABLE);
        if ((i = pick(w, false, true, true)) < 0) {
            w->skipped++;
        } else if (workload_rand(w, 2)) {
            local_edit(w, (size_t)i, fields, 1);
            crm_edit(w, (size_t)i, fields, 1);
        } else {
            crm_edit(w, (size_t)i, fields, 1);
            local_edit(w, (size_t)i, fields, 1);
        }
    } else if (roll < 75) {
        local_create(w);
    } else if (roll < 80) {
        crm_create(w);
    } else if (roll < 84) {
        crm_delete(w);
    } else if (roll < 88) {
        crm_merge(w);
    } else if (roll < 91) {
        crm_restore(w);
    } else if (roll < 92) {
        exhaust(w);
    } else if (roll < 95) {
        /* A rep's edit of a deal the CRM deleted: refused, or taken and
         * then ended by the delete; never brought back. */
        size_t n = pick_fields(w, fields);
        if ((i = pick(w, true, false, true)) >= 0 &&
            !w->oracle.deals[i].merged) {
            w->oracle.deals[i].frozen = true;
            local_edit(w, (size_t)i, fields, n);
        } else {
            w->skipped++;
        }
    } else if (w->faults) {
        workload_set_faults(w, true);
    } else {
        w->skipped++;
    }
}

void workload_crm_edit_any(struct workload *w)
{
    int fields[3];
    size_t n = pick_fields(w, fields);
    long i = pick(w, false, true, false);

    w->op++;
    if (i >= 0)
        crm_edit(w, (size_t)i, fields, n);
}

void workload_local_edit_any(struct workload *w)
{
    int fields[3];
    size_t n = pick_fields(w, fields);
    long i = pick(w, false, false, true);

    w->op++;
    if (i >= 0)
        local_edit(w, (size_t)i, fields, n);
}

void workload_local_create(struct workload *w)
{
    w->op++;
    local_create(w);
}

void workload_crm_create(struct workload *w)
{
    w->op++;
    crm_create(w);
}

void workload_crm_merge(struct workload *w)
{
    w->op++;
    crm_merge(w);
}

void workload_adopt_unanswered(struct workload *w)
{
    json_t *deals = stack_deals(w->st, true);
    size_t i, j;
    json_t *sent, *d;

    json_array_foreach(w->unanswered_creates, i, sent)
    {
        const char *name = stack_text(sent, "name");
        json_array_foreach(deals, j, d)
        {
            if (!same_text(stack_text(d, "name"), name))
                continue;
            size_t k = oracle_add(&w->oracle, stack_text(d, "id"), NULL, true);
            const char *field;
            json_t *v;
            json_object_foreach(sent, field, v)
            {
                oracle_write(&w->oracle, k, oracle_field(field),
                             json_string_value(v), field_time(d, field), false,
                             0);
            }
        }
    }
    json_array_clear(w->unanswered_creates);
    json_decref(deals);
}

int64_t workload_faulted(struct stack *st)
{
    static const char *const kinds[] = {"events_dropped", "events_duplicated",
                                        "api_faults_5xx", "api_faults_timeout",
                                        "rate_limited"};
    int64_t n = 0;

    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        int64_t v = stack_sim_stat(st, kinds[k], NULL);
        n += v > 0 ? v : 0;
    }
    return n;
}

void workload_print(const struct workload *w, const char *test,
                    const struct oracle_result *r)
{
    printf("%s: crm=%s ops=%d local_edits=%" PRId64 " crm_edits=%" PRId64
           " local_creates=%" PRId64 " crm_creates=%" PRId64 " deletes=%" PRId64
           " merges=%" PRId64 " restores=%" PRId64 " exhausts=%" PRId64
           " skipped=%" PRId64 " refused=%" PRId64 " unanswered=%" PRId64
           " faulted=%" PRId64 " rate_limited=%" PRId64 " given_up=%" PRId64
           " deals=%zu fields=%zu coarse=%zu differences=%zu lost=%zu"
           " doubled=%zu\n",
           test, w->st->crm->name, w->op, w->local_edits, w->crm_edits,
           w->local_creates, w->crm_creates, w->deletes, w->merges, w->restores,
           w->exhausts, w->skipped, w->refused, w->unanswered,
           workload_faulted(w->st), stack_sim_stat(w->st, "rate_limited", NULL),
           stack_sim_stat(w->st, "webhooks_given_up", NULL) -
               w->given_up_before,
           r->deals_checked, r->fields_checked, r->coarse, r->differences,
           r->lost, r->doubled);
    fflush(stdout);
}
