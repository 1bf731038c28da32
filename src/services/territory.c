/* Territory reassignment: composes a change over the org's territories,
 * builds the lookup of the result, places every live deal with it and
 * writes the moves in one transaction; the per-deal hook; the cache of
 * each org's lookup. */
#include "services/territory.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "base/log.h"
#include "model/postcode.h"
#include "model/territory.h"
#include "services/deal_json.h"
#include "services/live_stream.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

/* Pages a pass over every deal keeps in memory: a million deals' records
 * and owner, postcode and location rows fit. */
#define SCAN_CACHE_MIB 256

void territory_plan_clear(struct territory_plan *p)
{
    if (!p)
        return;
    free(p->provider);
    store_territories_free(p->territories, p->n_territories);
    for (size_t i = 0; i < p->n_moves; i++) {
        free(p->moves[i].deal_id);
        free(p->moves[i].from_owner);
        free(p->moves[i].to_owner);
    }
    free(p->moves);
    for (size_t i = 0; i < p->n_unplaced; i++)
        free(p->unplaced[i]);
    free(p->unplaced);
    for (size_t i = 0; i < p->n_repairs; i++)
        free(p->repairs[i]);
    free(p->repairs);
    memset(p, 0, sizeof(*p));
}

/* The name of a field of input in: "owner" for a lone territory,
 * "features[3].properties.owner" in an import. */
static char *input_field(const struct territory_input *in, const char *key,
                         bool property)
{
    if (!in || !in->where || !*in->where)
        return xstrdup(key);
    return xasprintf("%s.%s%s", in->where, property ? "properties." : "", key);
}

/* ---- the lookup of a set of territories ---- */

struct lookup {
    struct territory_index *ix;
    struct centroid_table *ct;
    size_t n;
    int64_t *ids; /* ascending */
    int64_t *owner_users;
    char **owner_ids;    /* with the provider; NULL: none */
    bool *owner_changed; /* a change gave the territory another owner */
};

static void lookup_free(struct lookup *lk)
{
    if (!lk)
        return;
    territory_index_free(lk->ix);
    centroid_table_free(lk->ct);
    for (size_t i = 0; i < lk->n; i++)
        free(lk->owner_ids ? lk->owner_ids[i] : NULL);
    free(lk->ids);
    free(lk->owner_users);
    free(lk->owner_ids);
    free(lk->owner_changed);
    free(lk);
}

static ssize_t lookup_slot(const struct lookup *lk, int64_t id)
{
    size_t lo = 0, hi = lk->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (lk->ids[mid] == id)
            return (ssize_t)mid;
        if (lk->ids[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

static void on_centroid(void *ctx, const char *postcode, double lat, double lng)
{
    centroid_table_add(ctx, postcode, lat, lng);
}

static fs_result load_centroids(struct store *s, int64_t org_id,
                                struct centroid_table **out)
{
    struct centroid_table *ct = centroid_table_new();
    fs_result r = store_centroids_each(s, org_id, on_centroid, ct);

    if (r != FS_OK) {
        centroid_table_free(ct);
        ct = NULL;
    }
    *out = ct;
    return r;
}

/* Places a deal: its point is its location, else its postcode's
 * centroid; then the territory of its postcode rule or its point. */
static struct territory_match place(struct lookup *lk, const char *postcode,
                                    const char *location, bool *located,
                                    double *lat, double *lng)
{
    char *canon = NULL;

    *located = false;
    *lat = *lng = 0;
    if (location && location_parse(location, lat, lng) == FS_OK)
        *located = true;
    if (postcode && postcode_normalize(postcode, &canon) != FS_OK)
        canon = NULL;
    if (!*located && canon && centroid_table_find(lk->ct, canon, lat, lng))
        *located = true;
    struct territory_match m =
        territory_index_find(lk->ix, canon, *located, *lat, *lng);
    free(canon);
    return m;
}

/* ---- composing a change ---- */

struct draft {
    struct territory t;
    const struct territory_input *in; /* NULL: kept as it was */
    bool is_new;
    bool keep;
    char *old_owner_id; /* before the change, with the provider */
    char *owner_id;     /* after it */
    json_t *repaired;   /* the geometry a repair made, written instead */
};

struct compose {
    struct store *s;
    int64_t org_id;
    const struct territory_change *change;
    struct user *users;
    size_t n_users;
    struct draft *drafts;
    size_t n;
    char *provider;
};

static void compose_clear(struct compose *c)
{
    for (size_t i = 0; i < c->n; i++) {
        territory_clear(&c->drafts[i].t);
        free(c->drafts[i].old_owner_id);
        free(c->drafts[i].owner_id);
        json_decref(c->drafts[i].repaired);
    }
    free(c->drafts);
    store_users_free(c->users, c->n_users);
    free(c->provider);
    memset(c, 0, sizeof(*c));
}

static struct draft *draft_by_id(struct compose *c, int64_t id)
{
    for (size_t i = 0; i < c->n; i++) {
        if (c->drafts[i].keep && c->drafts[i].t.id == id)
            return &c->drafts[i];
    }
    return NULL;
}

/* Matches by name every territory, also those a replace will drop. */
static struct draft *draft_by_name(struct compose *c, const char *name)
{
    for (size_t i = 0; i < c->n; i++) {
        if (c->drafts[i].t.name && strcmp(c->drafts[i].t.name, name) == 0)
            return &c->drafts[i];
    }
    return NULL;
}

/* The user an owner reference names: an id, an email (any case) or a
 * name, among the org's users still holding a token. */
static fs_result resolve_owner(struct compose *c,
                               const struct territory_input *in, int64_t *out,
                               struct territory_error *err)
{
    const struct user *found = NULL;
    size_t matches = 0;

    for (size_t i = 0; i < c->n_users; i++) {
        const struct user *u = &c->users[i];
        if (u->revoked)
            continue;
        if (in->owner_user
                ? u->id == in->owner_user
                : u->email && strcasecmp(u->email, in->owner_text) == 0) {
            found = u;
            matches = 1;
            break;
        }
        if (!in->owner_user && strcmp(u->name, in->owner_text) == 0) {
            found = u;
            matches++;
        }
    }
    if (matches == 1) {
        *out = found->id;
        return FS_OK;
    }
    char *field = input_field(in, "owner", true);
    if (matches > 1)
        return territory_error_set(
            err, 422, "ambiguous_owner", field,
            "several users are named '%.100s'; give the owner's "
            "email or user id",
            in->owner_text);
    if (in->owner_user)
        return territory_error_set(err, 422, "unknown_owner", field,
                                   "no active user %lld in the org",
                                   (long long)in->owner_user);
    return territory_error_set(
        err, 422, "unknown_owner", field,
        "no active user of the org has the email or name '%.100s'",
        in->owner_text);
}

static fs_result apply_input(struct compose *c,
                             const struct territory_input *in,
                             struct territory_error *err)
{
    struct draft *d = NULL;

    if (in->id) {
        d = draft_by_id(c, in->id);
        if (!d)
            return territory_error_set(err, 404, "not_found", NULL,
                                       "no territory %lld", (long long)in->id);
    } else {
        d = draft_by_name(c, in->name);
    }
    if (d && !in->id && c->change && c->change->create)
        return territory_error_set(
            err, 409, "conflict", input_field(in, "name", true),
            "territory %lld is already named '%s': edit it with PATCH",
            (long long)d->t.id, in->name);
    if (d && d->in && !in->id)
        return territory_error_set(err, 422, "conflict",
                                   input_field(in, "name", true),
                                   "territory '%s' is given twice", in->name);
    if (!d) {
        c->drafts = xrealloc(c->drafts, (c->n + 1) * sizeof(*c->drafts));
        d = &c->drafts[c->n++];
        memset(d, 0, sizeof(*d));
        d->is_new = true;
        d->t.org_id = c->org_id;
        d->t.name = xstrdup(in->name);
    }
    d->in = in;
    d->keep = true;

    if (in->name && strcmp(in->name, d->t.name) != 0) {
        struct draft *other = draft_by_name(c, in->name);
        if (other && other->keep)
            return territory_error_set(
                err, 409, "conflict", input_field(in, "name", true),
                "another territory is named '%s'", in->name);
        free(d->t.name);
        d->t.name = xstrdup(in->name);
    }
    if (in->has_owner) {
        fs_result r = resolve_owner(c, in, &d->t.owner_user_id, err);
        if (r != FS_OK)
            return r;
    }
    if (in->has_priority)
        d->t.priority = in->priority;
    if (in->has_postcodes) {
        for (size_t i = 0; i < d->t.n_postcodes; i++)
            free(d->t.postcodes[i]);
        free(d->t.postcodes);
        d->t.postcodes =
            in->n_postcodes ? xcalloc(in->n_postcodes, sizeof(char *)) : NULL;
        d->t.n_postcodes = in->n_postcodes;
        for (size_t i = 0; i < in->n_postcodes; i++)
            d->t.postcodes[i] = xstrdup(in->postcodes[i]);
    }
    if (in->has_geometry) {
        /* Written out as text only when applied (write_territories). */
        free(d->t.geometry);
        d->t.geometry = NULL;
    }
    return FS_OK;
}

static fs_result owner_id_of(struct compose *c, int64_t user, char **out)
{
    fs_result r = store_user_owner_id(c->s, c->org_id, user, c->provider, out);

    return r == FS_ERR_NOT_FOUND ? FS_OK : r;
}

/* The org's territories after the change, with ids (new ones get the ids
 * an insert will give them) and owners resolved with the provider. */
static fs_result compose_change(struct compose *c, struct territory_error *err)
{
    struct territory *old = NULL;
    size_t n_old = 0;
    const struct territory_change *ch = c->change;

    fs_result r = store_territories_list(c->s, c->org_id, &old, &n_old);
    if (r == FS_OK)
        r = store_users_list(c->s, c->org_id, &c->users, &c->n_users);
    if (r == FS_OK)
        r = store_org_provider(c->s, c->org_id, &c->provider);
    if (r != FS_OK)
        goto out;

    c->drafts = n_old ? xcalloc(n_old, sizeof(*c->drafts)) : NULL;
    for (size_t i = 0; i < n_old; i++) {
        c->drafts[i].t = old[i];
        memset(&old[i], 0, sizeof(old[i]));
        c->drafts[i].keep = !ch->replace;
        r = owner_id_of(c, c->drafts[i].t.owner_user_id,
                        &c->drafts[i].old_owner_id);
        if (r != FS_OK)
            goto out;
    }
    c->n = n_old;

    for (size_t i = 0; i < ch->n_inputs && r == FS_OK; i++)
        r = apply_input(c, &ch->inputs[i], err);
    for (size_t i = 0; i < ch->n_deletes && r == FS_OK; i++) {
        struct draft *d = draft_by_id(c, ch->deletes[i]);
        if (!d)
            r = territory_error_set(err, 404, "not_found", NULL,
                                    "no territory %lld",
                                    (long long)ch->deletes[i]);
        else
            d->keep = false;
    }
    if (r != FS_OK)
        goto out;

    size_t kept = 0;
    int64_t next_id = 0;
    r = store_territory_next_id(c->s, &next_id);
    for (size_t i = 0; i < c->n && r == FS_OK; i++) {
        struct draft *d = &c->drafts[i];
        if (!d->keep)
            continue;
        kept++;
        if (d->is_new)
            d->t.id = next_id++;
        r = owner_id_of(c, d->t.owner_user_id, &d->owner_id);
        if (r == FS_OK && d->in && !d->owner_id)
            r = territory_error_set(
                err, 422, "owner_not_linked", input_field(d->in, "owner", true),
                "user %lld has no CRM owner id with %s; set it with "
                "`fieldsync user set-owner`",
                (long long)d->t.owner_user_id, c->provider);
    }
    if (r == FS_OK && kept > TERRITORY_MAX_PER_ORG)
        r = territory_error_set(err, 413, "too_large", NULL,
                                "an org has at most %d territories",
                                TERRITORY_MAX_PER_ORG);

out:
    store_territories_free(old, n_old);
    return r;
}

static int compare_drafts(const void *a, const void *b)
{
    const struct draft *x = *(const struct draft *const *)a;
    const struct draft *y = *(const struct draft *const *)b;

    return x->t.id < y->t.id ? -1 : x->t.id > y->t.id;
}

static void add_repair(struct territory_plan *plan, char *text)
{
    plan->repairs =
        xrealloc(plan->repairs, (plan->n_repairs + 1) * sizeof(char *));
    plan->repairs[plan->n_repairs++] = text;
}

/* Where a problem the model found is, in the request's terms: an import
 * joins its features' polygons into one MultiPolygon, so "coordinates[k]"
 * there is a polygon of some feature. *field gets the feature's geometry
 * (caller frees); the path returned stays the one in the joined
 * geometry. */
static const char *problem_field(const struct draft *d, const char *where,
                                 char **field)
{
    static const char head[] = "coordinates[";
    const struct territory_input *in = d->in;

    if (!in) {
        *field = xasprintf("territory %lld", (long long)d->t.id);
        return where ? where : "";
    }
    if (in->polygon_feature && where &&
        strncmp(where, head, sizeof(head) - 1) == 0) {
        char *end = NULL;
        unsigned long k = strtoul(where + sizeof(head) - 1, &end, 10);
        if (end && *end == ']' && k < in->n_polygons) {
            *field =
                xasprintf("features[%zu].geometry", in->polygon_feature[k]);
            return where;
        }
    }
    *field = input_field(in, "geometry", false);
    return where ? where : "";
}

/* Adds one territory to the index, its geometry checked (and repaired
 * when the change asks, or when it was stored so); d->repaired gets what
 * a repair made. */
static fs_result index_draft(struct lookup *lk, struct draft *d, bool repair,
                             struct territory_plan *plan,
                             struct territory_error *err)
{
    struct territory_problem pb = {0};
    json_t *geom = NULL;
    fs_result r = FS_OK;

    if (d->in && d->in->has_geometry) {
        geom = json_incref(d->in->geometry);
    } else if (d->t.geometry) {
        geom = json_loads(d->t.geometry, 0, NULL);
        if (!geom)
            return FS_ERR_INVALID;
    }
    bool given = d->in && d->in->has_geometry;
    r = territory_index_add(lk->ix, d->t.id, d->t.priority,
                            (const char *const *)d->t.postcodes,
                            d->t.n_postcodes, geom, repair || !given, &pb);
    json_decref(geom);
    if (r == FS_OK && pb.repaired) {
        json_decref(d->repaired);
        d->repaired = pb.repaired;
        pb.repaired = NULL;
    }
    char *field = NULL;
    const char *rest = problem_field(d, pb.where, &field);
    if (r == FS_OK && pb.message && plan)
        add_repair(plan, xasprintf("%s: %s: %s", field, rest, pb.message));
    if (r != FS_OK) {
        r = territory_error_set(
            err, r == FS_ERR_TOO_LARGE ? 413 : 422,
            r == FS_ERR_TOO_LARGE ? "too_large" : "invalid_geometry", field,
            "%s%s%s%s", rest, *rest ? ": " : "",
            pb.message ? pb.message : "not usable",
            r == FS_ERR_INVALID && !repair ? " (repair=true fixes open "
                                             "rings and invalid polygons)"
                                           : "");
        field = NULL;
    }
    free(field);
    territory_problem_clear(&pb);
    return r;
}

/* The lookup of the composed territories. */
static fs_result build_lookup(struct store *s, struct compose *c,
                              struct territory_plan *plan,
                              struct territory_error *err, struct lookup **out)
{
    struct lookup *lk = xcalloc(1, sizeof(*lk));
    struct draft **sorted = NULL;
    size_t n = 0;
    fs_result r;

    *out = NULL;
    lk->ix = territory_index_new();
    r = load_centroids(s, c->org_id, &lk->ct);
    if (r != FS_OK)
        goto out;
    sorted = xcalloc(c->n ? c->n : 1, sizeof(*sorted));
    for (size_t i = 0; i < c->n; i++) {
        if (c->drafts[i].keep)
            sorted[n++] = &c->drafts[i];
    }
    qsort(sorted, n, sizeof(*sorted), compare_drafts);
    lk->ids = xcalloc(n ? n : 1, sizeof(*lk->ids));
    lk->owner_users = xcalloc(n ? n : 1, sizeof(*lk->owner_users));
    lk->owner_ids = xcalloc(n ? n : 1, sizeof(*lk->owner_ids));
    lk->owner_changed = xcalloc(n ? n : 1, sizeof(*lk->owner_changed));
    for (size_t i = 0; i < n && r == FS_OK; i++) {
        struct draft *d = sorted[i];
        lk->ids[i] = d->t.id;
        lk->owner_users[i] = d->t.owner_user_id;
        lk->owner_ids[i] = d->owner_id ? xstrdup(d->owner_id) : NULL;
        lk->owner_changed[i] =
            !d->is_new && !merge_value_equal(d->old_owner_id, d->owner_id);
        lk->n = i + 1;
        r = index_draft(lk, d, c->change && c->change->repair, plan, err);
    }
    if (r == FS_OK)
        r = territory_index_build(lk->ix);

out:
    free(sorted);
    if (r != FS_OK)
        lookup_free(lk);
    else
        *out = lk;
    return r;
}

/* ---- placing every deal ---- */

/* Deals share addresses (a site, a postcode): each distinct pair of
 * postcode and location is placed once per pass. */
struct memo_entry {
    char *postcode; /* NULL and "" differ: NULL is no postcode */
    char *location;
    bool used;
    bool located;
    double lat, lng;
    struct territory_match m;
};

struct memo {
    struct memo_entry *slots;
    size_t cap; /* a power of two */
    size_t used;
};

static uint64_t hash_text(uint64_t h, const char *s)
{
    if (!s)
        return h * 1099511628211u + 1;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h * 1099511628211u + 2;
}

static void memo_free(struct memo *m)
{
    for (size_t i = 0; i < m->cap; i++) {
        free(m->slots[i].postcode);
        free(m->slots[i].location);
    }
    free(m->slots);
    memset(m, 0, sizeof(*m));
}

static struct memo_entry *memo_slot(struct memo *m, const char *postcode,
                                    const char *location)
{
    uint64_t h =
        hash_text(hash_text(14695981039346656037u, postcode), location);
    size_t i = (size_t)h & (m->cap - 1);

    while (m->slots[i].used &&
           !(merge_value_equal(m->slots[i].postcode, postcode) &&
             merge_value_equal(m->slots[i].location, location)))
        i = (i + 1) & (m->cap - 1);
    return &m->slots[i];
}

static void memo_grow(struct memo *m)
{
    struct memo old = *m;

    m->cap = old.cap ? old.cap * 2 : 4096;
    m->slots = xcalloc(m->cap, sizeof(*m->slots));
    m->used = old.used;
    for (size_t i = 0; i < old.cap; i++) {
        if (old.slots[i].used)
            *memo_slot(m, old.slots[i].postcode, old.slots[i].location) =
                old.slots[i];
    }
    free(old.slots);
}

static struct territory_match place_memo(struct lookup *lk, struct memo *m,
                                         const char *postcode,
                                         const char *location, bool *located,
                                         double *lat, double *lng)
{
    if (m->used * 2 >= m->cap)
        memo_grow(m);
    struct memo_entry *e = memo_slot(m, postcode, location);
    if (!e->used) {
        e->m = place(lk, postcode, location, &e->located, &e->lat, &e->lng);
        e->postcode = postcode ? xstrdup(postcode) : NULL;
        e->location = location ? xstrdup(location) : NULL;
        e->used = true;
        m->used++;
    }
    *located = e->located;
    *lat = e->lat;
    *lng = e->lng;
    return e->m;
}

struct scan {
    struct lookup *lk;
    struct memo memo;
    struct territory_plan *plan;
    struct store *apply; /* NULL: a preview */
    int64_t now;
};

static fs_result pending_after(struct store *s, const struct deal_placement *w,
                               bool owner_was_pending, bool *out);

static void plan_move(struct territory_plan *plan,
                      const struct deal_placement *p, int64_t to_territory,
                      const char *to_owner)
{
    if (plan->n_moves % 1024 == 0)
        plan->moves = xrealloc(plan->moves,
                               (plan->n_moves + 1024) * sizeof(*plan->moves));
    struct territory_move *m = &plan->moves[plan->n_moves++];
    m->deal_id = xstrdup(p->id);
    m->from_owner = p->owner.value ? xstrdup(p->owner.value) : NULL;
    m->to_owner = xstrdup(to_owner);
    m->from_territory = p->territory_id;
    m->to_territory = to_territory;
}

/* What the write of a placed deal needs beside the deal itself. */
struct deal_write {
    bool moved;             /* the owner changed */
    bool owner_was_pending; /* before the change */
    int64_t updated_at;     /* the record's update time after it */
};

/* Places one deal and counts it in the plan. True when an apply must
 * write it: then p holds its new territory, point and owner (a local
 * edit) and w the rest. Touches no store, so it may run on the thread
 * that reads while another writes. */
static bool place_deal(struct scan *sc, struct deal_placement *p,
                       struct deal_write *w)
{
    struct territory_plan *plan = sc->plan;
    bool located;
    double lat, lng;
    struct territory_match m = place_memo(sc->lk, &sc->memo, p->postcode,
                                          p->location, &located, &lat, &lng);
    const char *to_owner = NULL;
    bool touched = false;

    plan->deals++;
    if (m.how == TERRITORY_BY_POSTCODE)
        plan->by_postcode++;
    else if (m.how == TERRITORY_BY_POLYGON)
        plan->by_polygon++;
    if (m.id == 0) {
        if (plan->n_unplaced % 1024 == 0)
            plan->unplaced = xrealloc(
                plan->unplaced, (plan->n_unplaced + 1024) * sizeof(char *));
        plan->unplaced[plan->n_unplaced++] = xstrdup(p->id);
    } else {
        ssize_t slot = lookup_slot(sc->lk, m.id);
        touched = slot >= 0 &&
                  (m.id != p->territory_id || sc->lk->owner_changed[slot]);
        to_owner = slot >= 0 ? sc->lk->owner_ids[slot] : NULL;
        if (touched && !to_owner)
            plan->unresolved++;
    }
    bool moved =
        touched && to_owner && !merge_value_equal(p->owner.value, to_owner);
    bool replaced = m.id != p->territory_id || located != p->located ||
                    (located && (lat != p->lat || lng != p->lng));
    if (moved)
        plan_move(plan, p, m.id, to_owner);
    if (!moved && !replaced)
        return false;
    plan->replaced++;
    if (!sc->apply)
        return false;

    w->moved = moved;
    w->owner_was_pending = merge_field_pending(&p->owner);
    w->updated_at = p->updated_at;
    if (moved) {
        merge_local_edit(&p->owner, to_owner, sc->now, 0);
        if (p->owner.time > w->updated_at)
            w->updated_at = p->owner.time;
    }
    p->territory_id = m.id;
    p->located = located;
    p->lat = lat;
    p->lng = lng;
    return true;
}

static fs_result write_deal(struct store *s, const struct deal_placement *p,
                            const struct deal_write *w)
{
    bool pending = false;
    fs_result r = pending_after(s, p, w->owner_was_pending, &pending);

    return r == FS_OK
               ? store_placement_save(s, p, pending, w->updated_at, w->moved)
               : r;
}

/* The scan and the writes on one connection: each deal is written while
 * the scan goes on; only rows it has passed change, in place, so it never
 * meets them again. */
static fs_result on_deal(void *ctx, struct deal_placement *p)
{
    struct scan *sc = ctx;
    struct deal_write w;

    if (!place_deal(sc, p, &w))
        return FS_OK;
    return write_deal(sc->apply, p, &w);
}

/* ---- an apply that reads and writes at once ----
 *
 * A second connection reads and places the deals on a thread of its own
 * and hands them over in batches; this thread writes them on the store,
 * inside its transaction. The reader's snapshot begins after that
 * transaction's BEGIN IMMEDIATE, so it sees exactly the state before the
 * change (no other writer can commit in between) and none of the writes.
 * Nothing is placed differently from a scan on one connection: both run
 * place_deal over the same rows in the same order. */

#define PIPE_BATCH 512 /* deals a hand-over carries */
#define PIPE_DEPTH 8   /* hand-overs waiting at most */

struct pipe_item {
    struct deal_placement p;
    struct deal_write w;
};

struct pipe_batch {
    size_t n;
    struct pipe_item items[PIPE_BATCH];
};

struct pipe {
    struct scan *sc;
    struct store *reader;
    int64_t org_id;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    struct pipe_batch *queue[PIPE_DEPTH]; /* a ring */
    size_t head, count;
    struct pipe_batch *filling; /* the reader's */
    bool read_done;             /* the reader has handed over its last */
    bool stop;                  /* the writer failed: the reader stops */
    fs_result read_result;
};

static void batch_free(struct pipe_batch *b)
{
    for (size_t i = 0; b && i < b->n; i++)
        deal_placement_clear(&b->items[i].p);
    free(b);
}

/* Hands the reader's batch over, waiting while the queue is full;
 * FS_ERR_BUSY when the writer has stopped. */
static fs_result pipe_hand_over(struct pipe *pp)
{
    fs_result r = FS_OK;

    pthread_mutex_lock(&pp->lock);
    while (pp->count == PIPE_DEPTH && !pp->stop)
        pthread_cond_wait(&pp->changed, &pp->lock);
    if (pp->stop) {
        r = FS_ERR_BUSY;
    } else {
        pp->queue[(pp->head + pp->count++) % PIPE_DEPTH] = pp->filling;
        pp->filling = NULL;
        pthread_cond_broadcast(&pp->changed);
    }
    pthread_mutex_unlock(&pp->lock);
    return r;
}

static fs_result on_deal_piped(void *ctx, struct deal_placement *p)
{
    struct pipe *pp = ctx;
    struct deal_write w;

    if (!place_deal(pp->sc, p, &w))
        return FS_OK;
    if (!pp->filling)
        pp->filling = xcalloc(1, sizeof(*pp->filling));
    struct pipe_item *it = &pp->filling->items[pp->filling->n++];
    it->p = *p;
    it->w = w;
    memset(p, 0, sizeof(*p)); /* its strings go with the item */
    return pp->filling->n == PIPE_BATCH ? pipe_hand_over(pp) : FS_OK;
}

static void *pipe_read(void *arg)
{
    struct pipe *pp = arg;
    fs_result r =
        store_placements_scan(pp->reader, pp->org_id, on_deal_piped, pp);

    if (r == FS_OK && pp->filling)
        r = pipe_hand_over(pp);
    batch_free(pp->filling);
    pp->filling = NULL;
    pthread_mutex_lock(&pp->lock);
    pp->read_result = r;
    pp->read_done = true;
    pthread_cond_broadcast(&pp->changed);
    pthread_mutex_unlock(&pp->lock);
    return NULL;
}

/* The next batch to write; NULL once the reader is done and all are
 * taken. */
static struct pipe_batch *pipe_take(struct pipe *pp)
{
    struct pipe_batch *b = NULL;

    pthread_mutex_lock(&pp->lock);
    while (pp->count == 0 && !pp->read_done)
        pthread_cond_wait(&pp->changed, &pp->lock);
    if (pp->count > 0) {
        b = pp->queue[pp->head];
        pp->head = (pp->head + 1) % PIPE_DEPTH;
        pp->count--;
        pthread_cond_broadcast(&pp->changed);
    }
    pthread_mutex_unlock(&pp->lock);
    return b;
}

/* Places and writes every deal of the org, reading on reader while
 * writing on s. */
static fs_result scan_piped(struct store *s, struct store *reader,
                            int64_t org_id, struct scan *sc)
{
    struct pipe pp = {.sc = sc, .reader = reader, .org_id = org_id};
    pthread_t thread;
    fs_result r = FS_OK;

    pthread_mutex_init(&pp.lock, NULL);
    pthread_cond_init(&pp.changed, NULL);
    if (pthread_create(&thread, NULL, pipe_read, &pp) != 0) {
        r = store_placements_scan(s, org_id, on_deal, sc);
        goto out;
    }
    struct pipe_batch *b;
    while ((b = pipe_take(&pp))) {
        for (size_t i = 0; i < b->n && r == FS_OK; i++)
            r = write_deal(s, &b->items[i].p, &b->items[i].w);
        batch_free(b);
        if (r != FS_OK)
            break;
    }
    pthread_mutex_lock(&pp.lock);
    pp.stop = r != FS_OK;
    pthread_cond_broadcast(&pp.changed);
    pthread_mutex_unlock(&pp.lock);
    pthread_join(thread, NULL);
    while ((b = pipe_take(&pp)))
        batch_free(b);
    if (r == FS_OK)
        r = pp.read_result;

out:
    pthread_cond_destroy(&pp.changed);
    pthread_mutex_destroy(&pp.lock);
    return r;
}

/* Whether a record is pending once its owner is as in owner: the other
 * fields are read only when the record's flag cannot tell. */
static fs_result pending_after(struct store *s, const struct deal_placement *w,
                               bool owner_was_pending, bool *out)
{
    struct record r = {0};

    if (!w->has_crm_id || merge_field_pending(&w->owner)) {
        *out = true;
        return FS_OK;
    }
    if (!w->pending || !owner_was_pending) {
        *out = w->pending;
        return FS_OK;
    }
    fs_result res = store_record_by_rowid(s, w->rowid, &r);
    *out = false;
    for (int f = 0; res == FS_OK && f < DEAL_FIELD_COUNT; f++) {
        if (f != DEAL_OWNER && merge_field_pending(&r.fields[f]))
            *out = true;
    }
    record_clear(&r);
    return res;
}

static fs_result write_territories(struct store *s, struct compose *c)
{
    fs_result r = FS_OK;

    for (size_t i = 0; i < c->n && r == FS_OK; i++) {
        struct draft *d = &c->drafts[i];
        if (!d->keep && !d->is_new)
            r = store_territory_delete(s, c->org_id, d->t.id);
    }
    for (size_t i = 0; i < c->n && r == FS_OK; i++) {
        struct draft *d = &c->drafts[i];
        if (!d->keep || !d->in)
            continue;
        const json_t *geometry =
            d->repaired ? d->repaired
                        : (d->in->has_geometry ? d->in->geometry : NULL);
        if (geometry) {
            free(d->t.geometry);
            d->t.geometry = json_dumps(geometry, JSON_COMPACT);
        }
        r = d->is_new ? store_territory_insert(s, &d->t)
                      : store_territory_update(s, &d->t);
    }
    return r;
}

static void plan_territories(struct territory_plan *plan, struct compose *c)
{
    for (size_t i = 0; i < c->n; i++) {
        if (!c->drafts[i].keep)
            continue;
        plan->territories =
            xrealloc(plan->territories,
                     (plan->n_territories + 1) * sizeof(*plan->territories));
        const struct territory *t = &c->drafts[i].t;
        /* What a plan shows of it: no geometry or rules. */
        plan->territories[plan->n_territories++] = (struct territory){
            .id = t->id,
            .org_id = t->org_id,
            .name = xstrdup(t->name),
            .owner_user_id = t->owner_user_id,
            .priority = t->priority,
        };
    }
}

static fs_result run_once(struct store *s, int64_t org_id,
                          const struct territory_change *change, bool apply,
                          struct territory_plan *plan,
                          struct territory_error *err)
{
    int64_t now = clock_now_ms();
    struct compose c = {.s = s, .org_id = org_id, .change = change};
    struct scan sc = {.plan = plan, .apply = apply ? s : NULL, .now = now};
    struct lookup *lk = NULL;
    struct store *reader = NULL;
    fs_result r = store_set_cache_mib(s, SCAN_CACHE_MIB);

    if (r == FS_OK && apply)
        r = store_begin(s);
    if (r != FS_OK)
        return r;
    /* Without a second connection (a database in memory, or none could
     * be opened) the apply reads and writes on one. */
    if (apply && store_open_reader(s, &reader) != FS_OK)
        reader = NULL;
    r = compose_change(&c, err);
    if (r == FS_OK)
        r = build_lookup(s, &c, plan, err, &lk);
    if (r != FS_OK)
        goto out;
    plan->provider = xstrdup(c.provider);
    plan_territories(plan, &c);

    sc.lk = lk;
    if (apply)
        r = write_territories(s, &c);
    if (r == FS_OK && apply && reader)
        r = scan_piped(s, reader, org_id, &sc);
    else if (r == FS_OK)
        r = store_placements_scan(s, org_id, on_deal, &sc);
    if (r == FS_OK && apply)
        r = store_territory_bump(s, org_id);
    if (r == FS_OK && apply) {
        char *detail = xasprintf(
            "territories=%zu deals=%zu moves=%zu unplaced=%zu repairs=%zu",
            plan->n_territories, plan->deals, plan->n_moves, plan->n_unplaced,
            plan->n_repairs);
        r = store_audit_add(s, org_id, "territory_change", NULL, "owner",
                            detail);
        free(detail);
    }
    if (r == FS_OK && apply)
        r = store_commit(s);

out:
    if (r != FS_OK && apply)
        store_rollback(s);
    store_close(reader);
    store_set_cache_mib(s, 0);
    memo_free(&sc.memo);
    lookup_free(lk);
    compose_clear(&c);
    return r;
}

fs_result territory_change_run(struct store *s, int64_t org_id,
                               const struct territory_change *change,
                               bool apply, struct territory_plan *plan,
                               struct territory_error *err)
{
    static const struct territory_change none = {0};

    memset(plan, 0, sizeof(*plan));
    fs_result r =
        run_once(s, org_id, change ? change : &none, apply, plan, err);
    if (r != FS_OK)
        territory_plan_clear(plan);
    if (r == FS_OK && apply)
        log_notice("event=territory_change org=%lld deals=%zu moves=%zu "
                   "unplaced=%zu",
                   (long long)org_id, plan->deals, plan->n_moves,
                   plan->n_unplaced);
    return r;
}

/* ---- the cache and the per-deal hook ---- */

struct cached {
    int64_t org_id;
    int64_t revision;
    struct lookup *lk;
    struct cached *next;
};

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cached *cache_head;

void territory_cache_clear(void)
{
    pthread_mutex_lock(&cache_lock);
    while (cache_head) {
        struct cached *e = cache_head;
        cache_head = e->next;
        lookup_free(e->lk);
        free(e);
    }
    pthread_mutex_unlock(&cache_lock);
}

/* The org's lookup as stored now, rebuilt when its revision moved on.
 * Called with cache_lock held. */
static fs_result cache_get(struct store *s, int64_t org_id, struct lookup **out)
{
    struct cached *e = cache_head;
    int64_t revision = 0;
    struct territory_error err = {0};

    fs_result r = store_territory_revision(s, org_id, &revision);
    if (r != FS_OK)
        return r;
    while (e && e->org_id != org_id)
        e = e->next;
    if (e && e->revision == revision) {
        *out = e->lk;
        return FS_OK;
    }

    struct compose c = {.s = s, .org_id = org_id, .change = NULL};
    struct territory_change none = {0};
    struct lookup *lk = NULL;
    c.change = &none;
    r = compose_change(&c, &err);
    if (r == FS_OK)
        r = build_lookup(s, &c, NULL, &err, &lk);
    compose_clear(&c);
    territory_error_clear(&err);
    if (r != FS_OK)
        return r == FS_ERR_INVALID ? FS_ERR_DB : r;
    if (!e) {
        e = xcalloc(1, sizeof(*e));
        e->org_id = org_id;
        e->next = cache_head;
        cache_head = e;
    }
    lookup_free(e->lk);
    e->lk = lk;
    e->revision = revision;
    log_info("event=territory_lookup_built org=%lld revision=%lld "
             "territories=%zu polygons=%zu",
             (long long)org_id, (long long)revision, lk->n,
             territory_index_polygons(lk->ix));
    *out = lk;
    return FS_OK;
}

/* Places r again and gives it its territory's owner. */
static fs_result replace_deal(struct store *s, struct record *r, int64_t now,
                              bool *moved)
{
    struct lookup *lk = NULL;
    char *owner = NULL;
    int64_t owner_user = 0;

    pthread_mutex_lock(&cache_lock);
    fs_result res = cache_get(s, r->org_id, &lk);
    if (res == FS_OK) {
        struct territory_match m = place(lk, r->fields[DEAL_POSTCODE].value,
                                         r->fields[DEAL_LOCATION].value,
                                         &r->located, &r->lat, &r->lng);
        ssize_t slot = lookup_slot(lk, m.id);
        r->territory_id = m.id;
        owner_user = slot >= 0 ? lk->owner_users[slot] : 0;
    }
    pthread_mutex_unlock(&cache_lock);
    if (res != FS_OK || owner_user == 0)
        return res;

    res = store_user_owner_id(s, r->org_id, owner_user, NULL, &owner);
    if (res == FS_ERR_NOT_FOUND)
        return FS_OK; /* its owner is not linked with this CRM: kept */
    if (res != FS_OK)
        return res;
    char *from = r->fields[DEAL_OWNER].value
                     ? xstrdup(r->fields[DEAL_OWNER].value)
                     : NULL;
    if (merge_local_edit(&r->fields[DEAL_OWNER], owner, now, 0) ==
        EDIT_APPLIED) {
        *moved = true;
        if (r->id) {
            char *detail =
                xasprintf("from=%s to=%s territory=%lld", from ? from : "-",
                          owner, (long long)r->territory_id);
            res = store_audit_add(s, r->org_id, "territory_move", r->id,
                                  "owner", detail);
            free(detail);
        }
    }
    free(from);
    free(owner);
    return res;
}

fs_result territory_save_deal(struct store *s, struct record *r, int64_t now,
                              bool *moved)
{
    char *postcode = NULL, *location = NULL;
    bool moved_here = false;
    fs_result res = FS_OK;

    if (r->rowid)
        res = store_record_place_values(s, r->rowid, &postcode, &location);
    bool changed =
        !merge_value_equal(postcode, r->fields[DEAL_POSTCODE].value) ||
        !merge_value_equal(location, r->fields[DEAL_LOCATION].value);
    free(postcode);
    free(location);
    if (res == FS_OK && changed && !r->deleted_at)
        res = replace_deal(s, r, now, &moved_here);
    if (res == FS_OK)
        res = store_record_save(s, r);
    if (moved)
        *moved = res == FS_OK && moved_here;
    return res;
}

/* ---- centroids and announcements ---- */

fs_result territory_load_centroids(struct store *s, int64_t org_id,
                                   const struct store_centroid *list, size_t n,
                                   bool replace)
{
    bool own = store_begin(s) == FS_OK;
    fs_result r = FS_OK;

    if (!own)
        return FS_ERR_BUSY;
    if (replace)
        r = store_centroids_clear(s, org_id);
    if (r == FS_OK)
        r = store_centroids_put(s, org_id, list, n);
    if (r == FS_OK)
        r = store_territory_bump(s, org_id);
    if (r == FS_OK)
        r = store_commit(s);
    else
        store_rollback(s);
    return r;
}

void territory_announce(struct store *s, struct live_stream *live,
                        struct stage_cache *stages, int64_t org_id,
                        const struct territory_plan *plan)
{
    if (!live || plan->n_moves == 0)
        return;
    if (plan->n_moves > TERRITORY_LIVE_DETAIL_MAX) {
        char *data = xasprintf("{\"moves\":%zu,\"deals\":%zu}", plan->n_moves,
                               plan->deals);
        live_stream_publish(live, org_id, "territories.reassigned", data);
        free(data);
        return;
    }
    for (size_t i = 0; i < plan->n_moves; i++) {
        struct record r = {0};
        if (store_record_get(s, org_id, plan->moves[i].deal_id, &r) == FS_OK)
            deal_publish(live, stages, s, &r, "deal.updated");
        record_clear(&r);
    }
}
