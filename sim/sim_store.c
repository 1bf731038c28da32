/* The simulated CRM's owners and deals: loading the seed CSVs, validating
 * property writes, and applying changes with HubSpot-like timestamps,
 * history and change events. */
#include "sim_store.h"

#include "sim_csv.h"

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest text value accepted for a property. */
#define MAX_VALUE_LEN 4096

struct sim_store {
    pthread_mutex_t mu;
    struct sim_deal **deals; /* deals[i] has id SIM_DEAL_ID_BASE + i */
    size_t deal_count;
    size_t deal_cap;
    struct sim_owner *owners;
    size_t owner_count;
    sim_on_event on_event;
    void *ctx;
};

static const char *const prop_names[SIM_PROP_COUNT] = {
    [SIM_P_DEALNAME] = "dealname",       [SIM_P_DEALSTAGE] = "dealstage",
    [SIM_P_PIPELINE] = "pipeline",       [SIM_P_AMOUNT] = "amount",
    [SIM_P_CLOSEDATE] = "closedate",     [SIM_P_OWNER] = "hubspot_owner_id",
    [SIM_P_ACCOUNT] = "account_name",    [SIM_P_PRODUCT] = "product_name",
    [SIM_P_ENGAGE_DATE] = "engage_date", [SIM_P_FIELDSYNC_ID] = "fieldsync_id",
    [SIM_P_POSTCODE] = "postcode",       [SIM_P_LOCATION] = "location",
};

static const char *const derived_props[] = {"createdate", "hs_lastmodifieddate",
                                            "hs_object_id"};

static const struct sim_stage stages[] = {
    {"prospecting", "Prospecting", "0.1", false},
    {"engaging", "Engaging", "0.4", false},
    {"closedwon", "Won", "1.0", true},
    {"closedlost", "Lost", "0.0", true},
};

const struct sim_stage *sim_stage_at(size_t index)
{
    return index < sizeof(stages) / sizeof(stages[0]) ? &stages[index] : NULL;
}

bool sim_stage_valid(const char *stage)
{
    for (size_t i = 0; i < sizeof(stages) / sizeof(stages[0]); i++)
        if (strcmp(stages[i].id, stage) == 0)
            return true;
    return false;
}

int sim_prop_index(const char *name)
{
    for (int i = 0; i < SIM_PROP_COUNT; i++)
        if (strcmp(prop_names[i], name) == 0)
            return i;
    return -1;
}

const char *sim_prop_name(int index)
{
    return index >= 0 && index < SIM_PROP_COUNT ? prop_names[index] : NULL;
}

static bool is_derived(const char *name)
{
    for (size_t i = 0; i < sizeof(derived_props) / sizeof(derived_props[0]);
         i++)
        if (strcmp(derived_props[i], name) == 0)
            return true;
    return false;
}

bool sim_prop_known(const char *name)
{
    return sim_prop_index(name) >= 0 || is_derived(name);
}

const char *sim_source_name(enum sim_source source)
{
    switch (source) {
    case SIM_SRC_IMPORT:
        return "IMPORT";
    case SIM_SRC_CRM_UI:
        return "CRM_UI";
    case SIM_SRC_INTEGRATION:
        return "INTEGRATION";
    }
    return "UNKNOWN";
}

struct sim_store *sim_store_new(void)
{
    struct sim_store *store = xcalloc(1, sizeof(*store));
    pthread_mutex_init(&store->mu, NULL);
    return store;
}

static void value_free_chain(struct sim_value *v)
{
    while (v) {
        struct sim_value *prev = v->prev;
        free(v->value);
        free(v->source_id);
        free(v);
        v = prev;
    }
}

static void deal_free(struct sim_deal *deal)
{
    if (!deal)
        return;
    for (int i = 0; i < SIM_PROP_COUNT; i++)
        value_free_chain(deal->props[i]);
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
        free(store->owners[i].email);
        free(store->owners[i].first_name);
        free(store->owners[i].last_name);
    }
    free(store->owners);
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
    for (size_t i = 0; i < store->owner_count; i++)
        if (strcmp(store->owners[i].id, id) == 0)
            return &store->owners[i];
    return NULL;
}

static const char *deal_value(const struct sim_deal *deal, int prop)
{
    const struct sim_value *v = deal->props[prop];
    return v && v->value ? v->value : NULL;
}

/* Parses a whole decimal id; false for anything else. */
static bool parse_id(const char *text, uint64_t *out)
{
    if (!text || !*text || strlen(text) > 19)
        return false;
    for (const char *p = text; *p; p++)
        if (!isdigit((unsigned char)*p))
            return false;
    *out = strtoull(text, NULL, 10);
    return true;
}

static struct sim_deal *deal_by_id(struct sim_store *store, uint64_t id)
{
    if (id < SIM_DEAL_ID_BASE || id - SIM_DEAL_ID_BASE >= store->deal_count)
        return NULL;
    return store->deals[id - SIM_DEAL_ID_BASE];
}

/* The deal holding fieldsync_id, live deals first. */
static struct sim_deal *find_by_fieldsync_id(struct sim_store *store,
                                             const char *value, bool live_only)
{
    struct sim_deal *archived = NULL;

    for (size_t i = 0; i < store->deal_count; i++) {
        struct sim_deal *deal = store->deals[i];
        const char *v = deal_value(deal, SIM_P_FIELDSYNC_ID);
        if (!v || strcmp(v, value) != 0)
            continue;
        if (!deal->archived)
            return deal;
        if (!archived && !deal->merged_into)
            archived = deal;
    }
    return live_only ? NULL : archived;
}

struct sim_deal *sim_store_find(struct sim_store *store, const char *id,
                                const char *id_property)
{
    struct sim_deal *deal = NULL;
    uint64_t n;

    if (id_property && strcmp(id_property, "fieldsync_id") == 0)
        return *id ? find_by_fieldsync_id(store, id, false) : NULL;
    if (id_property && *id_property && strcmp(id_property, "hs_object_id") != 0)
        return NULL;
    if (!parse_id(id, &n))
        return NULL;
    deal = deal_by_id(store, n);
    for (int hops = 0; deal && deal->merged_into && hops < 64; hops++)
        deal = deal_by_id(store, deal->merged_into);
    return deal;
}

void sim_error_clear(struct sim_error *err)
{
    free(err->message);
    json_decref(err->errors);
    memset(err, 0, sizeof(*err));
}

void sim_error_set(struct sim_error *err, int status, const char *category,
                   const char *fmt, ...)
{
    va_list ap;
    char *msg = NULL;

    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        abort();
    va_end(ap);
    free(err->message);
    err->status = status;
    err->category = category;
    err->message = msg;
}

void sim_write_clear(struct sim_write *w)
{
    for (int i = 0; i < SIM_PROP_COUNT; i++) {
        free(w->values[i]);
        w->values[i] = NULL;
    }
}

static void add_value_error(struct sim_error *err, const char *prop,
                            const char *code, const char *message)
{
    if (!err->errors)
        err->errors = json_array();
    json_array_append_new(
        err->errors, json_pack("{s:s, s:s, s:{s:[s]}}", "message", message,
                               "code", code, "context", "propertyName", prop));
}

/* A JSON property value as text, the way HubSpot coerces it; NULL when it
 * is an object or array. */
static char *value_text(const json_t *v)
{
    if (json_is_string(v))
        return xstrdup(json_string_value(v));
    if (json_is_integer(v))
        return xasprintf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
    if (json_is_real(v))
        return xasprintf("%.17g", json_real_value(v));
    if (json_is_true(v))
        return xstrdup("true");
    if (json_is_false(v))
        return xstrdup("false");
    if (json_is_null(v))
        return xstrdup("");
    return NULL;
}

static bool all_digits(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return false;
    return true;
}

/* Epoch ms from epoch-ms digits or ISO date/datetime text. */
static bool parse_time(const char *text, int64_t *out)
{
    if (all_digits(text) && strlen(text) <= 15) {
        *out = strtoll(text, NULL, 10);
        return true;
    }
    return clock_parse_iso(text, out) == 0;
}

static bool parse_amount(const char *text)
{
    char *end = NULL;

    errno = 0;
    double d = strtod(text, &end);
    return end != text && *end == '\0' && errno == 0 && isfinite(d);
}

static void format_date(int64_t ms, char out[16])
{
    char iso[32];
    clock_format_iso(ms, iso);
    memcpy(out, iso, 10);
    out[10] = '\0';
}

/* Checks one value and rewrites it into stored form; returns the error
 * code or NULL when valid. */
static const char *normalise(struct sim_store *store, int prop, char **text)
{
    char *v = *text;
    int64_t ms;

    if (strlen(v) > MAX_VALUE_LEN)
        return "INVALID_LENGTH";
    if (!*v)
        return NULL;
    switch (prop) {
    case SIM_P_DEALSTAGE:
        return sim_stage_valid(v) ? NULL : "INVALID_OPTION";
    case SIM_P_PIPELINE:
        return strcmp(v, "default") == 0 ? NULL : "INVALID_OPTION";
    case SIM_P_AMOUNT:
        return parse_amount(v) ? NULL : "INVALID_INTEGER";
    case SIM_P_OWNER:
        return sim_store_owner_find(store, v) ? NULL : "INVALID_OWNER_ID";
    case SIM_P_CLOSEDATE:
        if (!parse_time(v, &ms))
            return "INVALID_DATE";
        free(v);
        *text = xasprintf("%" PRId64, ms);
        return NULL;
    case SIM_P_ENGAGE_DATE: {
        char day[16];
        if (!parse_time(v, &ms) || ms % 86400000 != 0)
            return "INVALID_DATE";
        format_date(ms, day);
        free(v);
        *text = xstrdup(day);
        return NULL;
    }
    default:
        return NULL;
    }
}

fs_result sim_store_parse_write(struct sim_store *store, json_t *props,
                                struct sim_write *w, struct sim_error *err)
{
    const char *name;
    json_t *v;

    memset(w, 0, sizeof(*w));
    if (!json_is_object(props)) {
        sim_error_set(err, 400, "VALIDATION_ERROR",
                      "Invalid input JSON: \"properties\" must be an object");
        return FS_ERR_INVALID;
    }
    json_object_foreach(props, name, v)
    {
        int prop = sim_prop_index(name);
        char *text = NULL;
        const char *code = NULL;

        if (prop < 0) {
            code =
                is_derived(name) ? "READ_ONLY_VALUE" : "PROPERTY_DOESNT_EXIST";
            char *msg =
                xasprintf("Property \"%s\" %s", name,
                          is_derived(name) ? "is read-only" : "does not exist");
            add_value_error(err, name, code, msg);
            free(msg);
            continue;
        }
        text = value_text(v);
        code = text ? normalise(store, prop, &text) : "INVALID_VALUE";
        if (code) {
            char *msg = xasprintf("%s was not a valid value for %s",
                                  text ? text : "(object)", name);
            add_value_error(err, name, code, msg);
            free(msg);
            free(text);
            continue;
        }
        free(w->values[prop]);
        w->values[prop] = text;
    }
    if (err->errors) {
        sim_error_set(err, 400, "VALIDATION_ERROR",
                      "Property values were not valid");
        sim_write_clear(w);
        return FS_ERR_INVALID;
    }
    return FS_OK;
}

/* The next change time for the deal: now, but always after its last. */
static int64_t next_ts(struct sim_deal *deal)
{
    int64_t now = clock_now_ms();
    return now > deal->updated_ms ? now : deal->updated_ms + 1;
}

static void emit(struct sim_store *store, const struct sim_event *ev)
{
    if (store->on_event)
        store->on_event(store->ctx, ev);
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

static void set_value(struct sim_deal *deal, int prop, const char *value,
                      int64_t ts, const struct sim_actor *actor)
{
    struct sim_value *v = xcalloc(1, sizeof(*v));
    v->value = value && *value ? xstrdup(value) : NULL;
    v->ts = ts;
    v->source = actor->source;
    v->source_id = xstrdup(actor->source_id);
    v->prev = deal->props[prop];
    deal->props[prop] = v;
    trim_history(v);
}

static void emit_property(struct sim_store *store, struct sim_deal *deal,
                          int prop, int64_t ts, const struct sim_actor *actor)
{
    const char *value = deal_value(deal, prop);
    struct sim_event ev = {
        .kind = SIM_EV_PROPERTY_CHANGE,
        .object_id = deal->id,
        .occurred_at = ts,
        .property_name = prop_names[prop],
        .property_value = value ? value : "",
        .source = actor->source,
        .source_id = actor->source_id,
    };
    emit(store, &ev);
}

static bool same_value(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

/* True when fieldsync_id would collide with another live deal. */
static struct sim_deal *unique_clash(struct sim_store *store,
                                     const struct sim_deal *self,
                                     const struct sim_write *w)
{
    const char *v = w->values[SIM_P_FIELDSYNC_ID];
    if (!v || !*v)
        return NULL;
    struct sim_deal *other = find_by_fieldsync_id(store, v, true);
    return other != self ? other : NULL;
}

static void conflict_error(struct sim_error *err, const struct sim_deal *other)
{
    sim_error_set(err, 409, "CONFLICT",
                  "A deal already has that value for property fieldsync_id. "
                  "Existing ID: %" PRIu64,
                  other->id);
}

static struct sim_deal *append_deal(struct sim_store *store, int64_t ts)
{
    if (store->deal_count == store->deal_cap) {
        store->deal_cap = store->deal_cap ? store->deal_cap * 2 : 1024;
        store->deals =
            xrealloc(store->deals, store->deal_cap * sizeof(*store->deals));
    }
    struct sim_deal *deal = xcalloc(1, sizeof(*deal));
    deal->id = SIM_DEAL_ID_BASE + store->deal_count;
    deal->created_ms = ts;
    deal->updated_ms = ts;
    store->deals[store->deal_count++] = deal;
    return deal;
}

fs_result sim_store_create(struct sim_store *store, const struct sim_write *w,
                           const struct sim_actor *actor, struct sim_deal **out,
                           struct sim_error *err)
{
    struct sim_deal *clash = unique_clash(store, NULL, w);
    if (clash) {
        conflict_error(err, clash);
        return FS_ERR_CONFLICT;
    }

    int64_t ts = clock_now_ms();
    if (store->deal_count > 0) {
        struct sim_deal *last = store->deals[store->deal_count - 1];
        if (ts < last->created_ms)
            ts = last->created_ms;
    }
    struct sim_deal *deal = append_deal(store, ts);
    struct sim_event ev = {
        .kind = SIM_EV_CREATION,
        .object_id = deal->id,
        .occurred_at = ts,
        .source = actor->source,
        .source_id = actor->source_id,
    };

    for (int i = 0; i < SIM_PROP_COUNT; i++)
        if (w->values[i] && *w->values[i])
            set_value(deal, i, w->values[i], ts, actor);
    if (!deal_value(deal, SIM_P_PIPELINE))
        set_value(deal, SIM_P_PIPELINE, "default", ts, actor);

    emit(store, &ev);
    for (int i = 0; i < SIM_PROP_COUNT; i++)
        if (deal_value(deal, i))
            emit_property(store, deal, i, ts, actor);
    *out = deal;
    return FS_OK;
}

fs_result sim_store_update(struct sim_store *store, struct sim_deal *deal,
                           const struct sim_write *w,
                           const struct sim_actor *actor, struct sim_error *err)
{
    struct sim_deal *clash = unique_clash(store, deal, w);
    bool changed[SIM_PROP_COUNT] = {false};
    bool any = false;

    if (clash) {
        conflict_error(err, clash);
        return FS_ERR_CONFLICT;
    }
    for (int i = 0; i < SIM_PROP_COUNT; i++) {
        if (w->values[i] && !same_value(w->values[i], deal_value(deal, i))) {
            changed[i] = true;
            any = true;
        }
    }
    if (!any)
        return FS_OK;

    int64_t ts = next_ts(deal);
    deal->updated_ms = ts;
    for (int i = 0; i < SIM_PROP_COUNT; i++)
        if (changed[i])
            set_value(deal, i, w->values[i], ts, actor);
    for (int i = 0; i < SIM_PROP_COUNT; i++)
        if (changed[i])
            emit_property(store, deal, i, ts, actor);
    return FS_OK;
}

static void emit_simple(struct sim_store *store, enum sim_event_kind kind,
                        const struct sim_deal *deal, int64_t ts,
                        const struct sim_actor *actor)
{
    struct sim_event ev = {
        .kind = kind,
        .object_id = deal->id,
        .occurred_at = ts,
        .source = actor->source,
        .source_id = actor->source_id,
    };
    emit(store, &ev);
}

void sim_store_archive(struct sim_store *store, struct sim_deal *deal,
                       const struct sim_actor *actor)
{
    if (deal->archived)
        return;
    int64_t ts = next_ts(deal);
    deal->archived = true;
    deal->archived_ms = ts;
    deal->updated_ms = ts;
    emit_simple(store, SIM_EV_DELETION, deal, ts, actor);
}

fs_result sim_store_restore(struct sim_store *store, struct sim_deal *deal,
                            const struct sim_actor *actor,
                            struct sim_error *err)
{
    if (!deal->archived || deal->merged_into) {
        sim_error_set(err, 400, "VALIDATION_ERROR",
                      "Deal %" PRIu64 " is not archived", deal->id);
        return FS_ERR_INVALID;
    }
    const char *fsid = deal_value(deal, SIM_P_FIELDSYNC_ID);
    struct sim_deal *clash =
        fsid ? find_by_fieldsync_id(store, fsid, true) : NULL;
    if (clash) {
        conflict_error(err, clash);
        return FS_ERR_CONFLICT;
    }
    int64_t ts = next_ts(deal);
    deal->archived = false;
    deal->archived_ms = 0;
    deal->updated_ms = ts;
    emit_simple(store, SIM_EV_RESTORE, deal, ts, actor);
    return FS_OK;
}

fs_result sim_store_merge(struct sim_store *store, struct sim_deal *primary,
                          struct sim_deal *other, const struct sim_actor *actor,
                          struct sim_error *err)
{
    bool moved[SIM_PROP_COUNT] = {false};
    int moved_count = 0;

    if (primary == other) {
        sim_error_set(err, 400, "VALIDATION_ERROR",
                      "Cannot merge a deal with itself");
        return FS_ERR_INVALID;
    }
    if (primary->archived || other->archived) {
        sim_error_set(err, 404, "OBJECT_NOT_FOUND",
                      "One of the deals to merge is archived");
        return FS_ERR_NOT_FOUND;
    }

    int64_t ts = next_ts(primary);
    if (ts <= other->updated_ms)
        ts = other->updated_ms + 1;
    for (int i = 0; i < SIM_PROP_COUNT; i++) {
        if (!deal_value(primary, i) && deal_value(other, i)) {
            moved[i] = true;
            moved_count++;
            set_value(primary, i, deal_value(other, i), ts, actor);
        }
    }
    primary->updated_ms = ts;
    other->archived = true;
    other->archived_ms = ts;
    other->updated_ms = ts;
    other->merged_into = primary->id;

    struct sim_event ev = {
        .kind = SIM_EV_MERGE,
        .object_id = primary->id,
        .occurred_at = ts,
        .source = actor->source,
        .source_id = actor->source_id,
        .merged_id = other->id,
        .properties_moved = moved_count,
    };
    emit(store, &ev);
    for (int i = 0; i < SIM_PROP_COUNT; i++)
        if (moved[i])
            emit_property(store, primary, i, ts, actor);
    return FS_OK;
}

const char *sim_deal_rest_value(const struct sim_deal *deal, const char *name,
                                char buf[64])
{
    int prop = sim_prop_index(name);

    if (strcmp(name, "hs_object_id") == 0) {
        snprintf(buf, 64, "%" PRIu64, deal->id);
        return buf;
    }
    if (strcmp(name, "createdate") == 0) {
        clock_format_iso(deal->created_ms, buf);
        return buf;
    }
    if (strcmp(name, "hs_lastmodifieddate") == 0) {
        clock_format_iso(deal->updated_ms, buf);
        return buf;
    }
    if (prop < 0)
        return NULL;
    const char *v = deal_value(deal, prop);
    if (v && prop == SIM_P_CLOSEDATE) {
        clock_format_iso(strtoll(v, NULL, 10), buf);
        return buf;
    }
    return v;
}

bool sim_deal_number(const struct sim_deal *deal, const char *name, double *out)
{
    int prop = sim_prop_index(name);
    int64_t ms;
    char *end = NULL;

    if (strcmp(name, "hs_object_id") == 0) {
        *out = (double)deal->id;
        return true;
    }
    if (strcmp(name, "createdate") == 0) {
        *out = (double)deal->created_ms;
        return true;
    }
    if (strcmp(name, "hs_lastmodifieddate") == 0) {
        *out = (double)deal->updated_ms;
        return true;
    }
    if (prop < 0)
        return false;
    const char *v = deal_value(deal, prop);
    if (!v)
        return false;
    if (prop == SIM_P_ENGAGE_DATE) {
        if (clock_parse_iso(v, &ms) != 0)
            return false;
        *out = (double)ms;
        return true;
    }
    *out = strtod(v, &end);
    return end != v && *end == '\0';
}

/* Owners from sales_teams.csv: ids in file order, email first.last. */
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

static void add_owner(struct sim_store *store, const char *full_name)
{
    const char *space = strchr(full_name, ' ');
    size_t i = store->owner_count++;
    struct sim_owner *o;

    store->owners =
        xrealloc(store->owners, store->owner_count * sizeof(*store->owners));
    o = &store->owners[i];
    memset(o, 0, sizeof(*o));
    snprintf(o->id, sizeof(o->id), "%zu", SIM_OWNER_ID_BASE + i);
    o->user_id = SIM_USER_ID_BASE + (int64_t)i;
    o->first_name = space ? xstrndup(full_name, (size_t)(space - full_name))
                          : xstrdup(full_name);
    o->last_name = xstrdup(space ? space + 1 : "");
    o->email = owner_email(o->first_name, o->last_name);
}

static FILE *open_csv(const char *dir, const char *name, char **err)
{
    char *path = xasprintf("%s/%s", dir, name);
    FILE *in = fopen(path, "r");
    if (!in)
        *err = xasprintf("cannot open %s: %s", path, strerror(errno));
    free(path);
    return in;
}

static fs_result load_owners(struct sim_store *store, const char *dir,
                             char **err)
{
    struct sim_csv_row row = {0};
    fs_result result;
    size_t line = 0;
    FILE *in = open_csv(dir, "sales_teams.csv", err);

    if (!in)
        return FS_ERR_IO;
    while ((result = sim_csv_next(in, &row)) == FS_OK) {
        line++;
        if (line == 1) {
            if (row.count < 1 || strcmp(row.fields[0], "sales_agent") != 0)
                goto bad;
            continue;
        }
        if (row.count == 1 && !*row.fields[0])
            continue;
        if (row.count < 3 || !*row.fields[0])
            goto bad;
        add_owner(store, row.fields[0]);
    }
    if (result == FS_ERR_NOT_FOUND)
        result = FS_OK;
    else
        goto bad;
    goto out;
bad:
    *err = xasprintf("sales_teams.csv line %zu is malformed", line + 1);
    result = FS_ERR_INVALID;
out:
    sim_csv_row_clear(&row);
    fclose(in);
    return result;
}

static const char *stage_of(const char *csv_stage)
{
    static const char *const map[][2] = {{"Prospecting", "prospecting"},
                                         {"Engaging", "engaging"},
                                         {"Won", "closedwon"},
                                         {"Lost", "closedlost"}};
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(map[i][0], csv_stage) == 0)
            return map[i][1];
    return NULL;
}

static const struct sim_owner *owner_by_name(const struct sim_store *store,
                                             const char *name)
{
    for (size_t i = 0; i < store->owner_count; i++) {
        const struct sim_owner *o = &store->owners[i];
        size_t first = strlen(o->first_name);
        if (strncmp(name, o->first_name, first) == 0 &&
            (name[first] == ' ' || (!name[first] && !*o->last_name)) &&
            strcmp(name[first] ? name + first + 1 : "", o->last_name) == 0)
            return o;
    }
    return NULL;
}

/* One sales_pipeline.csv row as a deal; false when a value is invalid. */
static bool add_seed_deal(struct sim_store *store, struct sim_csv_row *row,
                          int64_t now)
{
    static const struct sim_actor import = {SIM_SRC_IMPORT, "import"};
    const char *stage = stage_of(row->fields[4]);
    const struct sim_owner *owner = owner_by_name(store, row->fields[1]);
    int64_t engage_ms = 0, close_ms = 0;
    char close_text[32];

    if (!stage || !*row->fields[0])
        return false;
    if (*row->fields[5] && clock_parse_iso(row->fields[5], &engage_ms) != 0)
        return false;
    if (*row->fields[6] && clock_parse_iso(row->fields[6], &close_ms) != 0)
        return false;
    if (*row->fields[7] && !parse_amount(row->fields[7]))
        return false;

    struct sim_deal *deal = append_deal(store, now);
    if (*row->fields[5] && engage_ms < now)
        deal->created_ms = engage_ms;
    set_value(deal, SIM_P_DEALNAME, row->fields[0], now, &import);
    set_value(deal, SIM_P_DEALSTAGE, stage, now, &import);
    set_value(deal, SIM_P_PIPELINE, "default", now, &import);
    set_value(deal, SIM_P_AMOUNT, row->fields[7], now, &import);
    if (*row->fields[6]) {
        snprintf(close_text, sizeof(close_text), "%" PRId64, close_ms);
        set_value(deal, SIM_P_CLOSEDATE, close_text, now, &import);
    }
    if (owner)
        set_value(deal, SIM_P_OWNER, owner->id, now, &import);
    set_value(deal, SIM_P_ACCOUNT, row->fields[3], now, &import);
    set_value(deal, SIM_P_PRODUCT, row->fields[2], now, &import);
    set_value(deal, SIM_P_ENGAGE_DATE, row->fields[5], now, &import);
    return true;
}

static fs_result load_deals(struct sim_store *store, const char *dir,
                            char **err)
{
    struct sim_csv_row row = {0};
    fs_result result;
    size_t line = 0;
    int64_t now = clock_now_ms();
    FILE *in = open_csv(dir, "sales_pipeline.csv", err);

    if (!in)
        return FS_ERR_IO;
    while ((result = sim_csv_next(in, &row)) == FS_OK) {
        line++;
        if (line == 1) {
            if (row.count < 8 || strcmp(row.fields[0], "opportunity_id") != 0)
                goto bad;
            continue;
        }
        if (row.count == 1 && !*row.fields[0])
            continue;
        if (row.count < 8 || !add_seed_deal(store, &row, now))
            goto bad;
    }
    if (result == FS_ERR_NOT_FOUND)
        result = FS_OK;
    else
        goto bad;
    goto out;
bad:
    *err = xasprintf("sales_pipeline.csv line %zu is malformed", line + 1);
    result = FS_ERR_INVALID;
out:
    sim_csv_row_clear(&row);
    fclose(in);
    return result;
}

fs_result sim_store_load(struct sim_store *store, const char *dir, char **err)
{
    fs_result result;

    sim_store_lock(store);
    result = load_owners(store, dir, err);
    if (result == FS_OK)
        result = load_deals(store, dir, err);
    sim_store_unlock(store);
    return result;
}
