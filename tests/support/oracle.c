/* The merge rules' prediction and the comparison of both sides with it
 * (oracle.h). Nothing here calls fieldsync's merge code. */
#include "oracle.h"

#include "base/alloc.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const oracle_fields[ORACLE_FIELDS] = {
    "name",    "stage",       "amount",   "close_date", "owner",
    "account", "engage_date", "postcode", "location",   "product"};

int oracle_field(const char *name)
{
    for (int f = 0; f < ORACLE_FIELDS; f++)
        if (strcmp(oracle_fields[f], name) == 0)
            return f;
    return -1;
}

static char *dup_value(const char *v)
{
    return v && *v ? xstrdup(v) : NULL;
}

size_t oracle_add(struct oracle *o, const char *our_id, const char *crm_id,
                  bool local)
{
    o->deals = xrealloc(o->deals, (o->n + 1) * sizeof(*o->deals));
    struct oracle_deal *d = &o->deals[o->n];
    memset(d, 0, sizeof(*d));
    d->our_id = our_id ? xstrdup(our_id) : NULL;
    d->crm_id = crm_id ? xstrdup(crm_id) : NULL;
    d->local = local;
    return o->n++;
}

void oracle_write(struct oracle *o, size_t deal, int field, const char *value,
                  int64_t time, bool crm, int op)
{
    struct oracle_deal *d = &o->deals[deal];
    size_t n = d->n_writes[field];

    d->writes[field] =
        xrealloc(d->writes[field], (n + 1) * sizeof(*d->writes[field]));
    d->writes[field][n] = (struct oracle_write){
        .time = time, .value = dup_value(value), .crm = crm, .op = op};
    d->n_writes[field] = n + 1;
}

void oracle_write_maybe(struct oracle *o, size_t deal, int field,
                        const char *value, int64_t time, int op)
{
    struct oracle_deal *d = &o->deals[deal];

    oracle_write(o, deal, field, value, time, false, op);
    d->writes[field][d->n_writes[field] - 1].maybe = true;
    d->writes[field][d->n_writes[field] - 1].until = INT64_MAX;
}

void oracle_cap_maybes(struct oracle *o, int64_t t)
{
    for (size_t i = 0; i < o->n; i++)
        for (int f = 0; f < ORACLE_FIELDS; f++)
            for (size_t k = 0; k < o->deals[i].n_writes[f]; k++)
                if (o->deals[i].writes[f][k].until == INT64_MAX)
                    o->deals[i].writes[f][k].until = t;
}

void oracle_crm_answer(struct oracle *o, size_t deal, const json_t *sim_deal,
                       int64_t since, int op)
{
    json_t *fields = json_object_get(sim_deal, "fields");
    json_t *times = json_object_get(sim_deal, "times");

    for (int f = 0; f < ORACLE_FIELDS; f++) {
        json_t *t = json_object_get(times, oracle_fields[f]);
        if (!json_is_integer(t) || json_integer_value(t) < since)
            continue;
        oracle_write(
            o, deal, f,
            json_string_value(json_object_get(fields, oracle_fields[f])),
            json_integer_value(t), true, op);
    }
}

void oracle_seed(struct oracle *o, struct stack *st)
{
    json_t *all = stack_sim_deals(st);
    size_t i;
    json_t *d;

    json_array_foreach(all, i, d)
    {
        if (json_is_true(json_object_get(d, "archived")) ||
            !json_is_null(json_object_get(d, "merged_into")))
            continue;
        size_t n =
            oracle_add(o, stack_text(d, "our_id"), stack_text(d, "id"), false);
        oracle_crm_answer(o, n, d, 0, 0);
    }
    json_decref(all);
}

/* Whether write a beats write b under the rules. */
static bool beats(const struct oracle_write *a, const struct oracle_write *b)
{
    if (a->time != b->time)
        return a->time > b->time;
    if (a->crm != b->crm)
        return a->crm;
    if (a->crm) {
        const char *x = a->value ? a->value : "";
        const char *y = b->value ? b->value : "";
        return strcmp(x, y) > 0;
    }
    return true; /* two local edits at one time: the later one */
}

static const struct oracle_write *winner(const struct oracle_deal *d, int f)
{
    const struct oracle_write *best = NULL;

    for (size_t i = 0; i < d->n_writes[f]; i++)
        if (!d->writes[f][i].maybe && (!best || beats(&d->writes[f][i], best)))
            best = &d->writes[f][i];
    return best;
}

static bool same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Whether v is the value of the latest write of the side that did not
 * make best (answered, or unanswered and maybe made), made within best's
 * step of step_ms: the CRM's coarse read times cannot order the two. */
static bool coarse_rival(const struct oracle_deal *d, int f,
                         const struct oracle_write *best, int64_t step_ms,
                         const char *v)
{
    const struct oracle_write *rival = NULL;

    if (!best || step_ms <= 1)
        return false;
    for (size_t i = 0; i < d->n_writes[f]; i++) {
        const struct oracle_write *w = &d->writes[f][i];
        if (!w->maybe && w->crm != best->crm && (!rival || beats(w, rival)))
            rival = w;
    }
    if (rival && rival->time / step_ms == best->time / step_ms &&
        same(rival->value, v))
        return true;
    /* An unanswered edit, if it was made, is its side's latest write when
     * no answered one of that side came after it. */
    for (size_t i = 0; i < d->n_writes[f]; i++) {
        const struct oracle_write *w = &d->writes[f][i];
        if (w->maybe && w->crm != best->crm && same(w->value, v) &&
            (!rival || w->until > rival->time) &&
            w->time / step_ms <= best->time / step_ms &&
            w->until / step_ms >= best->time / step_ms)
            return true;
    }
    return false;
}

/* Whether a side's value is right: the prediction, or an unanswered
 * edit's value that would have won had it been made. *coarse is set when
 * it is right only as a coarse_rival. */
static bool acceptable(const struct oracle_deal *d, int f, const char *v,
                       int64_t step_ms, bool *coarse)
{
    const struct oracle_write *best = winner(d, f);
    const char *want = best ? best->value : NULL;

    *coarse = false;
    if ((!want && !v) || (want && v && strcmp(want, v) == 0))
        return true;
    if (coarse_rival(d, f, best, step_ms, v)) {
        *coarse = true;
        return true;
    }
    for (size_t i = 0; i < d->n_writes[f]; i++) {
        const struct oracle_write *w = &d->writes[f][i];
        bool could_win = !best || w->until > best->time ||
                         (w->until == best->time && !best->crm);
        bool same_value =
            (!w->value && !v) || (w->value && v && strcmp(w->value, v) == 0);
        if (w->maybe && could_win && same_value)
            return true;
    }
    return false;
}

const char *oracle_predict(const struct oracle *o, size_t deal, int field)
{
    const struct oracle_write *w = winner(&o->deals[deal], field);
    return w ? w->value : NULL;
}

long oracle_by_crm_id(const struct oracle *o, const char *crm_id)
{
    for (size_t i = 0; i < o->n; i++)
        if (o->deals[i].crm_id && !o->deals[i].merged &&
            strcmp(o->deals[i].crm_id, crm_id) == 0)
            return (long)i;
    return -1;
}

/* ---- the comparison ---- */

static const char *shown(const char *v)
{
    return v ? v : "(empty)";
}

static const char *value_of(const json_t *v)
{
    const char *s = json_string_value(v);
    return s && *s ? s : NULL;
}

static void print_log(const struct oracle_deal *d, int f)
{
    const struct oracle_write *best = winner(d, f);

    for (size_t i = 0; i < d->n_writes[f]; i++) {
        const struct oracle_write *w = &d->writes[f][i];
        printf("    op %d %s t=%" PRId64 " \"%s\"%s\n", w->op,
               w->crm     ? "crm  "
               : w->maybe ? "unanswered local"
                          : "local",
               w->time, shown(w->value), w == best ? "  <- wins" : "");
    }
}

/* The deal of a list whose member key has that text; NULL when none. With
 * live_only, tombstones and merged-away deals are passed over. */
static json_t *find(json_t *list, const char *key, const char *text,
                    bool live_only)
{
    size_t i;
    json_t *d;

    if (!text)
        return NULL;
    json_array_foreach(list, i, d)
    {
        bool gone = json_is_true(json_object_get(d, "deleted")) ||
                    json_is_true(json_object_get(d, "archived")) ||
                    (json_object_get(d, "merged_into") &&
                     !json_is_null(json_object_get(d, "merged_into")));
        if (live_only && gone)
            continue;
        if (same(stack_text(d, key), text))
            return d;
    }
    return NULL;
}

static bool is_live(const json_t *d)
{
    json_t *merged = json_object_get(d, "merged_into");
    return !json_is_true(json_object_get(d, "deleted")) &&
           !json_is_true(json_object_get(d, "archived")) &&
           (!merged || json_is_null(merged));
}

/* Counts live deals of a list sharing a key with another live one. */
static size_t doubles(json_t *list, const char *key, const char *side)
{
    size_t i, j, n = 0;
    json_t *a, *b;

    json_array_foreach(list, i, a)
    {
        const char *k = stack_text(a, key);
        if (!k || !is_live(a))
            continue;
        json_array_foreach(list, j, b)
        {
            if (j <= i || !is_live(b) || !same(k, stack_text(b, key)))
                continue;
            printf("  doubled: %s holds %s %s twice (%s and %s)\n", side, key,
                   k, shown(stack_text(a, "id")), shown(stack_text(b, "id")));
            n++;
        }
    }
    return n;
}

/* Counts the live deals of a list that no operation made (not seen). */
static size_t unmade(json_t *list, json_t *seen, const char *side,
                     const char *other, const char *other_key)
{
    size_t i, n = 0;
    json_t *d;

    json_array_foreach(list, i, d)
    {
        if (!is_live(d) || json_object_get(seen, stack_text(d, "id")))
            continue;
        printf("  doubled: %s holds deal %s (%s %s) that no operation made\n",
               side, shown(stack_text(d, "id")), other,
               shown(stack_text(d, other_key)));
        n++;
    }
    return n;
}

static void check_live(struct oracle *o, struct stack *st, size_t i, json_t *fs,
                       json_t *sim, struct oracle_result *r)
{
    struct oracle_deal *d = &o->deals[i];

    r->deals_checked++;
    for (int f = 0; f < ORACLE_FIELDS; f++) {
        const char *want = oracle_predict(o, i, f);
        const char *ours = value_of(stack_crm_view(fs, oracle_fields[f]));
        const char *theirs = value_of(
            json_object_get(json_object_get(sim, "fields"), oracle_fields[f]));
        bool coarse;
        r->fields_checked++;
        if (same(ours, theirs) &&
            acceptable(d, f, ours, st->crm->time_step_ms, &coarse)) {
            r->coarse += coarse;
            continue;
        }
        r->differences++;
        r->lost += want && (!same(want, ours) || !same(want, theirs));
        printf("  difference: deal #%zu (ours %s, CRM %s) %s: predicted "
               "\"%s\", fieldsync \"%s\", CRM \"%s\"; its writes:\n",
               i, shown(d->our_id), shown(d->crm_id), oracle_fields[f],
               shown(want), shown(ours), shown(theirs));
        print_log(d, f);
    }
}

void oracle_check(struct oracle *o, struct stack *st, struct oracle_result *r)
{
    json_t *fs_all = stack_deals(st, true);
    json_t *sim_all = stack_sim_deals(st);
    json_t *fs_seen = json_object();
    json_t *sim_seen = json_object();

    memset(r, 0, sizeof(*r));
    if (!fs_all || !sim_all) {
        printf("  cannot list the deals of %s\n",
               fs_all ? "the simulator" : "fieldsync");
        r->lost++;
        goto out;
    }
    for (size_t i = 0; i < o->n; i++) {
        struct oracle_deal *d = &o->deals[i];
        json_t *fs = d->our_id ? find(fs_all, "id", d->our_id, false)
                               : find(fs_all, "crm_id", d->crm_id, true);
        if (!d->crm_id && stack_text(fs, "crm_id"))
            d->crm_id = xstrdup(stack_text(fs, "crm_id"));
        if (!d->our_id && stack_text(fs, "id"))
            d->our_id = xstrdup(stack_text(fs, "id"));
        json_t *sim = find(sim_all, "id", d->crm_id, false);
        if (fs)
            json_object_set(fs_seen, stack_text(fs, "id"), json_true());
        if (sim)
            json_object_set(sim_seen, stack_text(sim, "id"), json_true());

        if (d->deleted) {
            /* A deal the CRM made and removed before fieldsync saw it
             * may be missing there; if held, it is a tombstone. */
            if ((fs && is_live(fs)) || (sim && is_live(sim))) {
                printf("  difference: deal #%zu (ours %s, CRM %s) was %s in "
                       "the CRM but is live in %s\n",
                       i, shown(d->our_id), shown(d->crm_id),
                       d->merged ? "merged away" : "deleted",
                       fs && is_live(fs) ? "fieldsync" : "the simulator");
                r->differences++;
            }
            continue;
        }
        if (!fs || !sim || !is_live(fs) || !is_live(sim) ||
            !same(stack_text(fs, "crm_id"), d->crm_id)) {
            printf("  lost: deal #%zu (ours %s, CRM %s) is %s in fieldsync "
                   "(CRM id %s) and %s in the CRM\n",
                   i, shown(d->our_id), shown(d->crm_id),
                   !fs           ? "missing"
                   : is_live(fs) ? "live"
                                 : "deleted",
                   shown(stack_text(fs, "crm_id")),
                   !sim           ? "missing"
                   : is_live(sim) ? "live"
                                  : "deleted");
            r->lost++;
            continue;
        }
        check_live(o, st, i, fs, sim, r);
    }

    r->doubled += unmade(fs_all, fs_seen, "fieldsync", "CRM", "crm_id");
    r->doubled += unmade(sim_all, sim_seen, "the CRM", "ours", "our_id");
    r->doubled += doubles(fs_all, "crm_id", "fieldsync");
    r->doubled += doubles(sim_all, "our_id", "the CRM");
out:
    json_decref(fs_seen);
    json_decref(sim_seen);
    json_decref(fs_all);
    json_decref(sim_all);
}

void oracle_free(struct oracle *o)
{
    for (size_t i = 0; i < o->n; i++) {
        struct oracle_deal *d = &o->deals[i];
        for (int f = 0; f < ORACLE_FIELDS; f++) {
            for (size_t j = 0; j < d->n_writes[f]; j++)
                free(d->writes[f][j].value);
            free(d->writes[f]);
        }
        free(d->our_id);
        free(d->crm_id);
    }
    free(o->deals);
    memset(o, 0, sizeof(*o));
}
