/* The simulated CRM's owners and deals: canonical field values with their
 * history, ids from the front-end, and the neutral change events. */
#include "sim_store.h"

#include "base/alloc.h"
#include "base/clock.h"

#include <ctype.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sim_store {
    pthread_mutex_t mu;
    struct sim_store_config config;
    struct sim_deal **deals;
    size_t deal_count;
    size_t deal_cap;
    json_t *by_id; /* deal id -> index into deals */
    struct sim_owner *owners;
    size_t owner_count;
    sim_on_event on_event;
    void *ctx;
};

const char *sim_field_name(int field)
{
    if (field >= 0 && field < DEAL_FIELD_COUNT)
        return deal_fields[field].name;
    if (field == SIM_F_OUR_ID)
        return "our_id";
    if (field == SIM_F_PIPELINE)
        return "pipeline";
    return NULL;
}

int sim_field_by_name(const char *name)
{
    for (int f = 0; name && f < SIM_FIELD_COUNT; f++)
        if (strcmp(sim_field_name(f), name) == 0)
            return f;
    return -1;
}

struct sim_store *sim_store_new(const struct sim_store_config *config)
{
    struct sim_store *store = xcalloc(1, sizeof(*store));
    store->config = *config;
    store->by_id = json_object();
    pthread_mutex_init(&store->mu, NULL);
    return store;
}

static void value_free_chain(struct sim_value *v)
{
    while (v) {
        struct sim_value *prev = v->prev;
        free(v->value);
        free(v->actor_id);
        free(v);
        v = prev;
    }
}

static void deal_free(struct sim_deal *deal)
{
    for (int i = 0; i < SIM_FIELD_COUNT; i++)
        value_free_chain(deal->fields[i]);
    free(deal->id);
    free(deal->seed);
    free(deal);
}

void sim_store_free(struct sim_store *store)
{
    if (!store)
        return;
    for (size_t i = 0; i < store->deal_count; i++)
        deal_free(store->deals[i]);
    free(store->deals);
    for (size_t i = 0; i < store->owner_count; i++) {
        free(store->owners[i].id);
        free(store->owners[i].user_id);
        free(store->owners[i].email);
        free(store->owners[i].first_name);
        free(store->owners[i].last_name);
    }
    free(store->owners);
    json_decref(store->by_id);
    pthread_mutex_destroy(&store->mu);
    free(store);
}

void sim_store_set_sink(struct sim_store *store, sim_on_event on_event,
                        void *ctx)
{
    store->on_event = on_event;
    store->ctx = ctx;
}

void sim_store_lock(struct sim_store *store)
{
    pthread_mutex_lock(&store->mu);
}

void sim_store_unlock(struct sim_store *store)
{
    pthread_mutex_unlock(&store->mu);
}

size_t sim_store_deal_count(const struct sim_store *store)
{
    return store->deal_count;
}

struct sim_deal *sim_store_deal_at(struct sim_store *store, size_t index)
{
    return index < store->deal_count ? store->deals[index] : NULL;
}

struct sim_deal *sim_store_find(struct sim_store *store, const char *id)
{
    json_t *index = id ? json_object_get(store->by_id, id) : NULL;
    return index ? store->deals[json_integer_value(index)] : NULL;
}

struct sim_deal *sim_store_resolve(struct sim_store *store, const char *id)
{
    struct sim_deal *deal = sim_store_find(store, id);
    while (deal && deal->merged_into)
        deal = deal->merged_into;
    return deal;
}

const char *sim_deal_value(const struct sim_deal *deal, int field)
{
    const struct sim_value *v = deal->fields[field];
    return v && v->value ? v->value : NULL;
}

int64_t sim_deal_time(const struct sim_deal *deal, int field)
{
    return deal->fields[field] ? deal->fields[field]->time_ms : 0;
}

/* The deal holding our id, live ones first; archived ones only when
 * live_only is false, and never one merged away. */
static struct sim_deal *our_id_holder(struct sim_store *store,
                                      const char *our_id, bool live_only)
{
    struct sim_deal *archived = NULL;

    for (size_t i = 0; our_id && *our_id && i < store->deal_count; i++) {
        struct sim_deal *deal = store->deals[i];
        const char *v = sim_deal_value(deal, SIM_F_OUR_ID);
        if (!v || strcmp(v, our_id) != 0)
            continue;
        if (!deal->archived)
            return deal;
        if (!archived && !deal->merged_into)
            archived = deal;
    }
    return live_only ? NULL : archived;
}

struct sim_deal *sim_store_find_our_id(struct sim_store *store,
                                       const char *our_id)
{
    return our_id_holder(store, our_id, false);
}

size_t sim_store_owner_count(const struct sim_store *store)
{
    return store->owner_count;
}

const struct sim_owner *sim_store_owner_at(const struct sim_store *store,
                                           size_t index)
{
    return index < store->owner_count ? &store->owners[index] : NULL;
}

const struct sim_owner *sim_store_owner_find(const struct sim_store *store,
                                             const char *id)
{
    for (size_t i = 0; id && i < store->owner_count; i++)
        if (strcmp(store->owners[i].id, id) == 0)
            return &store->owners[i];
    return NULL;
}

const struct sim_owner *sim_store_owner_named(const struct sim_store *store,
                                              const char *full_name)
{
    for (size_t i = 0; i < store->owner_count; i++) {
        const struct sim_owner *o = &store->owners[i];
        size_t first = strlen(o->first_name);
        if (strncmp(full_name, o->first_name, first) != 0)
            continue;
        const char *rest = full_name + first;
        if (*rest == ' ' ? strcmp(rest + 1, o->last_name) == 0
                         : !*rest && !*o->last_name)
            return o;
    }
    return NULL;
}

static char *owner_email(const char *first, const char *last)
{
    char *email = xasprintf("%s.%s@example.com", first, last);
    for (char *p = email; *p; p++) {
        *p = (char)tolower((unsigned char)*p);
        if (*p == ' ')
            *p = '.';
    }
    return email;
}

const struct sim_owner *sim_store_add_owner(struct sim_store *store,
                                            const char *full_name)
{
    const char *space = strchr(full_name, ' ');
    size_t i = store->owner_count++;
    const struct sim_store_config *c = &store->config;

    store->owners =
        xrealloc(store->owners, store->owner_count * sizeof(*store->owners));
    struct sim_owner *o = &store->owners[i];
    memset(o, 0, sizeof(*o));
    o->id = c->owner_id(c->ctx, i);
    o->user_id = c->user_id(c->ctx, i);
    o->first_name = space ? xstrndup(full_name, (size_t)(space - full_name))
                          : xstrdup(full_name);
    o->last_name = xstrdup(space ? space + 1 : "");
    o->email = owner_email(o->first_name, o->last_name);
    return o;
}

const struct sim_pipeline *sim_store_pipeline(const struct sim_store *store)
{
    return store->config.pipeline;
}

const struct sim_stage *sim_store_stage(const struct sim_store *store,
                                        const char *id)
{
    const struct sim_pipeline *p = store->config.pipeline;
    for (size_t i = 0; id && i < p->stage_count; i++)
        if (strcmp(p->stages[i].id, id) == 0)
            return &p->stages[i];
    return NULL;
}

/* ---- writes ---- */

void sim_write_clear(struct sim_write *w)
{
    for (int i = 0; i < SIM_FIELD_COUNT; i++) {
        free(w->values[i]);
        w->values[i] = NULL;
    }
}

fs_result sim_write_set(const struct sim_store *store, struct sim_write *w,
                        int field, const char *value, enum sim_bad *why)
{
    char *canonical = NULL;

    if (field < 0 || field >= SIM_FIELD_COUNT) {
        *why = SIM_BAD_VALUE;
        return FS_ERR_INVALID;
    }
    /* Our id and the pipeline are checked as text, like a name. */
    enum deal_field as =
        field < DEAL_FIELD_COUNT ? (enum deal_field)field : DEAL_NAME;
    fs_result result = deal_field_canonical(as, value, &canonical);
    if (result != FS_OK) {
        *why = result == FS_ERR_TOO_LARGE ? SIM_BAD_TOO_LONG : SIM_BAD_VALUE;
        return FS_ERR_INVALID;
    }
    if (canonical) {
        *why = SIM_BAD_VALUE;
        if (field == DEAL_STAGE && !sim_store_stage(store, canonical))
            *why = SIM_BAD_STAGE;
        else if (field == DEAL_OWNER && !sim_store_owner_find(store, canonical))
            *why = SIM_BAD_OWNER;
        else if (field == SIM_F_PIPELINE &&
                 strcmp(canonical, store->config.pipeline->id) != 0)
            *why = SIM_BAD_PIPELINE;
        if (*why != SIM_BAD_VALUE) {
            free(canonical);
            return FS_ERR_INVALID;
        }
    }
    if (canonical && store->config.same_as_empty &&
        store->config.same_as_empty(store->config.ctx, field, canonical)) {
        free(canonical);
        canonical = NULL;
    }
    free(w->values[field]);
    w->values[field] = canonical ? canonical : xstrdup("");
    return FS_OK;
}

/* ---- changes ---- */

static void emit(struct sim_store *store, const struct sim_event *ev)
{
    if (store->on_event)
        store->on_event(store->ctx, ev);
}

/* The next change time for the deal: now, but always after its last. */
static int64_t next_time(const struct sim_deal *deal)
{
    int64_t now = clock_now_ms();
    return now > deal->modified_ms ? now : deal->modified_ms + 1;
}

static void trim_history(struct sim_value *v)
{
    for (int n = 1; v && v->prev; n++, v = v->prev) {
        if (n >= SIM_HISTORY_MAX) {
            value_free_chain(v->prev);
            v->prev = NULL;
            return;
        }
    }
}

static void set_value(struct sim_deal *deal, int field, const char *value,
                      int64_t time_ms, const struct sim_actor *actor)
{
    struct sim_value *v = xcalloc(1, sizeof(*v));
    v->value = value && *value ? xstrdup(value) : NULL;
    v->time_ms = time_ms;
    v->actor = actor->kind;
    v->actor_id = actor->id ? xstrdup(actor->id) : NULL;
    v->prev = deal->fields[field];
    deal->fields[field] = v;
    trim_history(v);
}

static bool same_value(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

static struct sim_deal *append_deal(struct sim_store *store, int64_t created)
{
    const struct sim_store_config *c = &store->config;

    if (store->deal_count == store->deal_cap) {
        store->deal_cap = store->deal_cap ? store->deal_cap * 2 : 1024;
        store->deals =
            xrealloc(store->deals, store->deal_cap * sizeof(*store->deals));
    }
    struct sim_deal *deal = xcalloc(1, sizeof(*deal));
    deal->id = c->deal_id(c->ctx, store->deal_count);
    deal->created_ms = created;
    deal->modified_ms = created;
    json_object_set_new(store->by_id, deal->id,
                        json_integer((json_int_t)store->deal_count));
    store->deals[store->deal_count++] = deal;
    return deal;
}

/* A create's time: now, never before the last deal made. */
static int64_t create_time(const struct sim_store *store)
{
    int64_t now = clock_now_ms();
    if (store->deal_count > 0) {
        const struct sim_deal *last = store->deals[store->deal_count - 1];
        if (now < last->created_ms)
            now = last->created_ms;
    }
    return now;
}

struct sim_deal *sim_store_import(struct sim_store *store,
                                  const struct sim_write *w, const char *seed,
                                  int64_t created_ms)
{
    static const struct sim_actor import = {SIM_ACTOR_IMPORT, NULL};
    int64_t now = clock_now_ms();
    struct sim_deal *deal = append_deal(store, now);

    if (created_ms > 0 && created_ms < now)
        deal->created_ms = created_ms;
    deal->seed = seed ? xstrdup(seed) : NULL;
    for (int f = 0; f < SIM_FIELD_COUNT; f++)
        if (w->values[f])
            set_value(deal, f, w->values[f], now, &import);
    if (!sim_deal_value(deal, SIM_F_PIPELINE))
        set_value(deal, SIM_F_PIPELINE, store->config.pipeline->id, now,
                  &import);
    return deal;
}

/* The live deal other than self holding the our_id the writes set. */
static struct sim_deal *our_id_clash(struct sim_store *store,
                                     const struct sim_deal *self,
                                     const struct sim_write *w)
{
    struct sim_deal *other =
        our_id_holder(store, w->values[SIM_F_OUR_ID], true);
    return other != self ? other : NULL;
}

/* Every field of the deal that has a value, as changes from empty. */
static size_t initial_changes(const struct sim_deal *deal,
                              struct sim_change *out)
{
    size_t n = 0;
    for (int f = 0; f < SIM_FIELD_COUNT; f++)
        if (sim_deal_value(deal, f))
            out[n++] = (struct sim_change){f, NULL, sim_deal_value(deal, f)};
    return n;
}

fs_result sim_store_create(struct sim_store *store, const struct sim_write *w,
                           const struct sim_actor *actor, struct sim_deal **out,
                           struct sim_deal **clash)
{
    struct sim_change changes[SIM_FIELD_COUNT];

    *clash = our_id_clash(store, NULL, w);
    if (*clash)
        return FS_ERR_CONFLICT;

    int64_t t = create_time(store);
    struct sim_deal *deal = append_deal(store, t);
    for (int f = 0; f < SIM_FIELD_COUNT; f++)
        if (w->values[f] && *w->values[f])
            set_value(deal, f, w->values[f], t, actor);
    if (!sim_deal_value(deal, SIM_F_PIPELINE))
        set_value(deal, SIM_F_PIPELINE, store->config.pipeline->id, t, actor);

    struct sim_event ev = {
        .kind = SIM_EV_CREATED,
        .deal = deal,
        .time_ms = t,
        .actor = *actor,
        .changes = changes,
        .change_count = initial_changes(deal, changes),
    };
    emit(store, &ev);
    *out = deal;
    return FS_OK;
}

fs_result sim_store_update(struct sim_store *store, struct sim_deal *deal,
                           const struct sim_write *w,
                           const struct sim_actor *actor,
                           struct sim_deal **clash)
{
    struct sim_change changes[SIM_FIELD_COUNT];
    struct sim_value *old[SIM_FIELD_COUNT];
    size_t n = 0;

    *clash = our_id_clash(store, deal, w);
    if (*clash)
        return FS_ERR_CONFLICT;
    for (int f = 0; f < SIM_FIELD_COUNT; f++)
        if (w->values[f] && !same_value(w->values[f], sim_deal_value(deal, f)))
            changes[n++].field = f;
    if (n == 0)
        return FS_OK;

    int64_t t = next_time(deal);
    deal->modified_ms = t;
    for (size_t i = 0; i < n; i++) {
        int f = changes[i].field;
        old[i] = deal->fields[f];
        set_value(deal, f, w->values[f], t, actor);
        changes[i].old_value = old[i] ? old[i]->value : NULL;
        changes[i].new_value = sim_deal_value(deal, f);
    }
    struct sim_event ev = {
        .kind = SIM_EV_CHANGED,
        .deal = deal,
        .time_ms = t,
        .actor = *actor,
        .changes = changes,
        .change_count = n,
    };
    emit(store, &ev);
    return FS_OK;
}

static void emit_simple(struct sim_store *store, enum sim_event_kind kind,
                        const struct sim_deal *deal, int64_t t,
                        const struct sim_actor *actor)
{
    struct sim_event ev = {
        .kind = kind, .deal = deal, .time_ms = t, .actor = *actor};
    emit(store, &ev);
}

static void archive(struct sim_deal *deal, int64_t t)
{
    deal->archived = true;
    deal->archived_ms = t;
    deal->modified_ms = t;
}

void sim_store_delete(struct sim_store *store, struct sim_deal *deal,
                      const struct sim_actor *actor)
{
    if (deal->archived)
        return;
    int64_t t = next_time(deal);
    archive(deal, t);
    emit_simple(store, SIM_EV_DELETED, deal, t, actor);
}

fs_result sim_store_restore(struct sim_store *store, struct sim_deal *deal,
                            const struct sim_actor *actor,
                            struct sim_deal **clash)
{
    *clash = NULL;
    if (!deal->archived || deal->merged_into)
        return FS_ERR_INVALID;
    *clash = our_id_holder(store, sim_deal_value(deal, SIM_F_OUR_ID), true);
    if (*clash)
        return FS_ERR_CONFLICT;
    int64_t t = next_time(deal);
    deal->archived = false;
    deal->archived_ms = 0;
    deal->modified_ms = t;
    emit_simple(store, SIM_EV_RESTORED, deal, t, actor);
    return FS_OK;
}

static fs_result check_merge(struct sim_deal *primary,
                             struct sim_deal *const *others, size_t n)
{
    if (primary->archived)
        return FS_ERR_NOT_FOUND;
    for (size_t i = 0; i < n; i++) {
        if (others[i] == primary)
            return FS_ERR_INVALID;
        for (size_t j = 0; j < i; j++)
            if (others[j] == others[i])
                return FS_ERR_INVALID;
        if (others[i]->archived)
            return FS_ERR_NOT_FOUND;
    }
    return n > 0 ? FS_OK : FS_ERR_INVALID;
}

fs_result sim_store_merge(struct sim_store *store, struct sim_deal *primary,
                          struct sim_deal *const *others, size_t other_count,
                          const struct sim_actor *actor,
                          struct sim_deal **result)
{
    struct sim_change changes[SIM_FIELD_COUNT];
    size_t n = 0;

    fs_result r = check_merge(primary, others, other_count);
    if (r != FS_OK)
        return r;

    int64_t t = next_time(primary);
    for (size_t i = 0; i < other_count; i++)
        if (t <= others[i]->modified_ms)
            t = others[i]->modified_ms + 1;

    bool mint = store->config.merge_mints_id;
    struct sim_deal *res = primary;
    if (mint) {
        if (t < create_time(store))
            t = create_time(store);
        res = append_deal(store, t);
        for (int f = 0; f < SIM_FIELD_COUNT; f++)
            if (sim_deal_value(primary, f))
                set_value(res, f, sim_deal_value(primary, f), t, actor);
    }
    for (size_t i = 0; i < other_count; i++) {
        for (int f = 0; f < SIM_FIELD_COUNT; f++) {
            const char *v = sim_deal_value(others[i], f);
            if (!v || sim_deal_value(res, f))
                continue;
            set_value(res, f, v, t, actor);
            changes[n++] = (struct sim_change){f, NULL, sim_deal_value(res, f)};
        }
    }

    const struct sim_deal **merged = xcalloc(other_count + 1, sizeof(*merged));
    size_t merged_count = 0;
    if (mint) {
        archive(primary, t);
        primary->merged_into = res;
        merged[merged_count++] = primary;
    }
    for (size_t i = 0; i < other_count; i++) {
        archive(others[i], t);
        others[i]->merged_into = res;
        merged[merged_count++] = others[i];
    }
    res->modified_ms = t;

    struct sim_event ev = {
        .kind = SIM_EV_MERGED,
        .deal = res,
        .time_ms = t,
        .actor = *actor,
        .changes = changes,
        .change_count = n,
        .primary = primary,
        .merged = merged,
        .merged_count = merged_count,
    };
    emit(store, &ev);
    free(merged);
    *result = res;
    return FS_OK;
}
