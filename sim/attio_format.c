/* Attio's side of the simulated deals: the object's attributes, values
 * shown as envelopes with active_from, active_until and created_by_actor
 * from the store's history, written values taken back to canonical form,
 * and webhook deliveries of id-only events, one a POST. */
#include "attio_sim.h"

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/crypto.h"
#include "base/json_num.h"
#include "model/deal.h"
#include "model/postcode.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define ATTR_ID(n) "a77e0000-0000-4000-8000-0000000000" n

const struct attio_sim_attr attio_sim_attrs[] = {
    {"name", "Deal name", ATTR_ID("02"), ATTIO_SIM_TEXT, DEAL_NAME, true, false,
     true},
    {"stage", "Deal stage", ATTR_ID("03"), ATTIO_SIM_STATUS, DEAL_STAGE, true,
     false, true},
    {"owner", "Deal owner", ATTR_ID("04"), ATTIO_SIM_ACTOR, DEAL_OWNER, false,
     false, true},
    {"value", "Deal value", ATTR_ID("05"), ATTIO_SIM_CURRENCY, DEAL_AMOUNT,
     false, false, true},
    {"close_date", "Close date", ATTR_ID("06"), ATTIO_SIM_DATE, DEAL_CLOSE_DATE,
     false, false, false},
    {"account_name", "Account name", ATTR_ID("07"), ATTIO_SIM_TEXT,
     DEAL_ACCOUNT, false, false, false},
    {"product_name", "Product name", ATTR_ID("08"), ATTIO_SIM_TEXT,
     DEAL_PRODUCT, false, false, false},
    {"engage_date", "Engage date", ATTR_ID("09"), ATTIO_SIM_DATE,
     DEAL_ENGAGE_DATE, false, false, false},
    {"location", "Location", ATTR_ID("0a"), ATTIO_SIM_LOCATION, DEAL_LOCATION,
     false, false, false},
    {"fieldsync_id", "fieldsync id", ATTR_ID("0b"), ATTIO_SIM_TEXT,
     SIM_F_OUR_ID, false, true, false},
};
const size_t attio_sim_attr_count =
    sizeof(attio_sim_attrs) / sizeof(attio_sim_attrs[0]);

static const char *const type_names[] = {
    [ATTIO_SIM_TEXT] = "text",
    [ATTIO_SIM_STATUS] = "status",
    [ATTIO_SIM_ACTOR] = "actor-reference",
    [ATTIO_SIM_CURRENCY] = "currency",
    [ATTIO_SIM_DATE] = "date",
    [ATTIO_SIM_LOCATION] = "location",
};

bool attio_sim_has(const struct attio_sim_object *o,
                   const struct attio_sim_attr *a)
{
    size_t i = (size_t)(a - attio_sim_attrs);
    return i < attio_sim_attr_count && !o->omitted[i];
}

const struct attio_sim_attr *
attio_sim_attr_named(const struct attio_sim_object *o, const char *name)
{
    for (size_t i = 0; name && i < attio_sim_attr_count; i++) {
        const struct attio_sim_attr *a = &attio_sim_attrs[i];
        if ((strcmp(a->slug, name) == 0 || strcmp(a->id, name) == 0) &&
            attio_sim_has(o, a))
            return a;
    }
    return NULL;
}

const struct attio_sim_attr *
attio_sim_attr_of_field(const struct attio_sim_object *o, int field)
{
    if (field == DEAL_POSTCODE)
        field = DEAL_LOCATION;
    for (size_t i = 0; i < attio_sim_attr_count; i++) {
        const struct attio_sim_attr *a = &attio_sim_attrs[i];
        if (a->field == field && attio_sim_has(o, a))
            return a;
    }
    return NULL;
}

const char *attio_sim_time(int64_t ms, char buf[40])
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;

    gmtime_r(&secs, &tm);
    size_t n = strftime(buf, 40, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, 40 - n, ".%03d000000Z", (int)(ms % 1000));
    return buf;
}

static json_t *time_json(int64_t ms)
{
    char buf[40];
    return json_string(attio_sim_time(ms, buf));
}

json_t *attio_sim_attr_json(const struct attio_sim_attr *a)
{
    /* The document's enums have no null: every attribute shows the
     * workspace's currency settings. */
    json_t *config = json_pack(
        "{s:{s:s, s:s}, s:{s:n}}", "currency", "default_currency_code", "USD",
        "display_type", a->type == ATTIO_SIM_CURRENCY ? "symbol" : "code",
        "record_reference", "allowed_object_ids");
    return json_pack(
        "{s:{s:s, s:s, s:s}, s:s, s:n, s:s, s:s, s:b, s:b, s:b, s:b, s:b, s:b, "
        "s:b, s:n, s:n, s:o, s:o}",
        "id", "workspace_id", ATTIO_SIM_WORKSPACE, "object_id",
        ATTIO_SIM_OBJECT, "attribute_id", a->id, "title", a->title,
        "description", "api_slug", a->slug, "type", type_names[a->type],
        "is_system_attribute", a->system, "is_writable", true, "is_required",
        a->required, "is_unique", a->unique, "is_multiselect", false,
        "is_default_value_enabled", a->required, "is_archived", false,
        "default_value", "relationship", "created_at", time_json(0), "config",
        config);
}

json_t *attio_sim_status_json(const struct sim_stage *s)
{
    return json_pack(
        "{s:{s:s, s:s, s:s, s:s}, s:s, s:b, s:b, s:n}", "id", "workspace_id",
        ATTIO_SIM_WORKSPACE, "object_id", ATTIO_SIM_OBJECT, "attribute_id",
        ATTR_ID("03"), "status_id", s->id, "title", s->label, "is_archived",
        false, "celebration_enabled", s->closed && s->probability > 0.5,
        "target_time_in_status");
}

/* ---- values shown ---- */

static json_t *actor_json(enum sim_actor_kind kind, const char *id)
{
    switch (kind) {
    case SIM_ACTOR_USER:
        return json_pack("{s:s, s:s}", "type", "workspace-member", "id",
                         id ? id : "");
    case SIM_ACTOR_TOKEN:
        return json_pack("{s:s, s:s}", "type", "api-token", "id",
                         id ? id : ATTIO_SIM_TOKEN_ID);
    case SIM_ACTOR_IMPORT:
        break;
    }
    return json_pack("{s:s, s:n}", "type", "system", "id");
}

static json_t *status_of(const struct attio_sim_object *o, const char *id)
{
    const struct sim_stage *s = sim_store_stage(o->store, id);
    if (s)
        return attio_sim_status_json(s);
    struct sim_stage unknown = {id, id, NULL, 0, false};
    return attio_sim_status_json(&unknown);
}

/* The type-specific keys of one value. */
static void put_value(const struct attio_sim_object *o,
                      const struct attio_sim_attr *a, const char *value,
                      const char *postcode, json_t *obj)
{
    double lat = 0, lng = 0;
    char text[32];

    json_object_set_new(obj, "attribute_type",
                        json_string(type_names[a->type]));
    switch (a->type) {
    case ATTIO_SIM_TEXT:
    case ATTIO_SIM_DATE:
        json_object_set_new(obj, "value", json_string(value));
        break;
    case ATTIO_SIM_STATUS:
        json_object_set_new(obj, "status", status_of(o, value));
        break;
    case ATTIO_SIM_ACTOR:
        json_object_set_new(obj, "referenced_actor_type",
                            json_string("workspace-member"));
        json_object_set_new(obj, "referenced_actor_id", json_string(value));
        break;
    case ATTIO_SIM_CURRENCY:
        json_object_set_new(obj, "currency_value", json_num_of(value));
        json_object_set_new(obj, "currency_code", json_string("USD"));
        break;
    case ATTIO_SIM_LOCATION: {
        static const char *const nulls[] = {"line_1", "line_2",   "line_3",
                                            "line_4", "locality", "region"};
        for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
            json_object_set_new(obj, nulls[i], json_null());
        json_object_set_new(obj, "postcode",
                            postcode ? json_string(postcode) : json_null());
        const char *country = postcode_country(postcode);
        json_object_set_new(obj, "country_code",
                            country ? json_string(country) : json_null());
        if (value && location_parse(value, &lat, &lng) == FS_OK) {
            snprintf(text, sizeof(text), "%.6f", lat);
            json_object_set_new(obj, "latitude", json_string(text));
            snprintf(text, sizeof(text), "%.6f", lng);
            json_object_set_new(obj, "longitude", json_string(text));
        } else {
            json_object_set_new(obj, "latitude", json_null());
            json_object_set_new(obj, "longitude", json_null());
        }
        break;
    }
    }
}

static json_t *envelope(int64_t from, int64_t until, enum sim_actor_kind kind,
                        const char *actor_id)
{
    json_t *obj = json_object();

    json_object_set_new(obj, "active_from", time_json(from));
    json_object_set_new(obj, "active_until",
                        until ? time_json(until) : json_null());
    json_object_set_new(obj, "created_by_actor", actor_json(kind, actor_id));
    return obj;
}

/* The value a field held at time t: the newest write at or before it. */
static const struct sim_value *held_at(const struct sim_value *v, int64_t t)
{
    while (v && v->time_ms > t)
        v = v->prev;
    return v;
}

static int by_time(const void *a, const void *b)
{
    const struct sim_value *x = *(const struct sim_value *const *)a;
    const struct sim_value *y = *(const struct sim_value *const *)b;
    return (x->time_ms > y->time_ms) - (x->time_ms < y->time_ms);
}

/* The location's values: postcode and location together, a new value at
 * every write of either (the one made then is its actor), oldest first;
 * historic false: the current one only. */
static json_t *location_values(const struct attio_sim_object *o,
                               const struct sim_deal *deal,
                               const struct attio_sim_attr *a, bool historic)
{
    const struct sim_value *writes[2 * SIM_HISTORY_MAX + 2];
    size_t n = 0;
    json_t *list = json_array();

    for (int f = DEAL_POSTCODE; f <= DEAL_LOCATION; f++) {
        for (const struct sim_value *v = deal->fields[f];
             v && n < sizeof(writes) / sizeof(writes[0]); v = v->prev)
            writes[n++] = v;
    }
    qsort(writes, n, sizeof(writes[0]), by_time);
    for (size_t i = historic ? 0 : (n ? n - 1 : 0); i < n; i++) {
        int64_t t = writes[i]->time_ms;
        if (i + 1 < n && writes[i + 1]->time_ms == t)
            continue; /* both written at once: one value */
        const struct sim_value *pc = held_at(deal->fields[DEAL_POSTCODE], t);
        const struct sim_value *loc = held_at(deal->fields[DEAL_LOCATION], t);
        if ((!pc || !pc->value) && (!loc || !loc->value))
            continue;
        int64_t until = i + 1 < n ? writes[i + 1]->time_ms : 0;
        json_t *obj = envelope(t, until, writes[i]->actor, writes[i]->actor_id);
        put_value(o, a, loc ? loc->value : NULL, pc ? pc->value : NULL, obj);
        json_array_append_new(list, obj);
    }
    return list;
}

json_t *attio_sim_values_json(const struct attio_sim_object *o,
                              const struct sim_deal *deal,
                              const struct attio_sim_attr *a, bool historic)
{
    json_t *list = json_array();

    if (a->type == ATTIO_SIM_LOCATION) {
        json_decref(list);
        return location_values(o, deal, a, historic);
    }

    /* Newest first in the store; a value ends where the next begins. */
    int64_t until = 0;
    for (const struct sim_value *v = deal->fields[a->field]; v; v = v->prev) {
        if (v->value && (historic || until == 0)) {
            json_t *obj = envelope(v->time_ms, until, v->actor, v->actor_id);
            put_value(o, a, v->value, NULL, obj);
            json_array_insert_new(list, 0, obj);
        }
        if (!historic)
            break;
        until = v->time_ms;
    }
    return list;
}

json_t *attio_sim_record_json(const struct attio_sim_object *o,
                              const struct sim_deal *deal)
{
    json_t *values = json_object();
    char *url = xasprintf("https://app.attio.com/crmsim/deals/%s", deal->id);

    for (size_t i = 0; i < attio_sim_attr_count; i++) {
        const struct attio_sim_attr *a = &attio_sim_attrs[i];
        if (attio_sim_has(o, a))
            json_object_set_new(values, a->slug,
                                attio_sim_values_json(o, deal, a, false));
    }
    json_t *rec = json_pack("{s:{s:s, s:s, s:s}, s:o, s:s, s:o}", "id",
                            "workspace_id", ATTIO_SIM_WORKSPACE, "object_id",
                            ATTIO_SIM_OBJECT, "record_id", deal->id,
                            "created_at", time_json(deal->created_ms),
                            "web_url", url, "values", values);
    free(url);
    return rec;
}

/* ---- values written ---- */

/* The inner value of a written item: the item itself, or its key. */
static const json_t *inner(const json_t *item, const char *key)
{
    return json_is_object(item) ? json_object_get(item, key) : item;
}

/* Says why an attribute's value was refused; returns NULL. */
static char *fail(char **message, const char *why, const char *slug)
{
    *message = xasprintf("%s (attribute \"%s\")", why, slug);
    return NULL;
}

/* The canonical text one item writes for the attribute, or NULL with
 * *message; *code says which error. */
static char *item_text(const struct attio_sim_object *o,
                       const struct sim_store *store,
                       const struct attio_sim_attr *a, const json_t *item,
                       const char **code, char **message)
{
    const json_t *v;

    *code = "validation_type";
    switch (a->type) {
    case ATTIO_SIM_TEXT:
    case ATTIO_SIM_DATE:
        v = inner(item, "value");
        if (!json_is_string(v))
            return fail(message, "Invalid value", a->slug);
        return xstrdup(json_string_value(v));
    case ATTIO_SIM_CURRENCY: {
        v = inner(item, "currency_value");
        if (json_is_object(item) && json_object_get(item, "currency_code"))
            return fail(message, "The currency cannot be set per value",
                        a->slug);
        char *text = json_num_text(v, 0);
        return text ? text : fail(message, "Invalid currency value", a->slug);
    }
    case ATTIO_SIM_STATUS: {
        v = inner(item, "status");
        const char *s = json_string_value(v);
        const struct sim_pipeline *p = sim_store_pipeline(store);
        for (size_t i = 0; s && i < p->stage_count; i++) {
            if (strcmp(p->stages[i].id, s) == 0 ||
                strcmp(p->stages[i].label, s) == 0)
                return xstrdup(p->stages[i].id);
        }
        *code = "value_not_found";
        return fail(message, "No status matches", a->slug);
    }
    case ATTIO_SIM_ACTOR: {
        const char *id = NULL;
        if (json_is_string(item)) {
            /* An email address names a member. */
            for (size_t i = 0; i < sim_store_owner_count(store); i++) {
                const struct sim_owner *ow = sim_store_owner_at(store, i);
                if (strcasecmp(ow->email, json_string_value(item)) == 0)
                    id = ow->id;
            }
        } else {
            const char *type = json_string_value(
                json_object_get(item, "referenced_actor_type"));
            if (!type || strcmp(type, "workspace-member") != 0)
                return fail(message, "Only workspace members can be written",
                            a->slug);
            id =
                json_string_value(json_object_get(item, "referenced_actor_id"));
            if (id && !sim_store_owner_find(store, id))
                id = NULL;
        }
        if (!id) {
            *code = "value_not_found";
            return fail(message, "No workspace member matches", a->slug);
        }
        return xstrdup(id);
    }
    case ATTIO_SIM_LOCATION:
        break;
    }
    (void)o;
    *code = "immutable_value";
    return fail(message, "Not writable", a->slug);
}

/* A location item into the postcode and location fields. */
static const char *take_location(const struct sim_store *store,
                                 const struct attio_sim_attr *a,
                                 const json_t *item, struct sim_write *w,
                                 char **message)
{
    const json_t *pc = json_object_get(item, "postcode");
    const json_t *lat = json_object_get(item, "latitude");
    const json_t *lng = json_object_get(item, "longitude");
    enum sim_bad why;

    if (!json_is_object(item) ||
        (pc && !json_is_null(pc) && !json_is_string(pc))) {
        *message = xasprintf("Invalid location for \"%s\".", a->slug);
        return "validation_type";
    }
    char *loc = NULL;
    if (json_is_string(lat) && json_is_string(lng))
        loc =
            xasprintf("%s,%s", json_string_value(lat), json_string_value(lng));
    else if (lat && !json_is_null(lat)) {
        *message = xasprintf("Invalid coordinates for \"%s\".", a->slug);
        return "validation_type";
    }
    fs_result r =
        sim_write_set(store, w, DEAL_POSTCODE,
                      json_is_string(pc) ? json_string_value(pc) : "", &why);
    if (r == FS_OK)
        r = sim_write_set(store, w, DEAL_LOCATION, loc ? loc : "", &why);
    free(loc);
    if (r != FS_OK) {
        *message = xasprintf("Invalid location for \"%s\".", a->slug);
        return "validation_type";
    }
    return NULL;
}

const char *attio_sim_take(const struct attio_sim_object *o,
                           const struct sim_store *store,
                           const struct attio_sim_attr *a, const json_t *value,
                           struct sim_write *w, char **message)
{
    const json_t *item = value;
    const char *code = NULL;
    enum sim_bad why;

    *message = NULL;
    if (json_is_array(value)) {
        if (json_array_size(value) > 1) {
            *message =
                xasprintf("Attribute \"%s\" takes a single value.", a->slug);
            return "validation_type";
        }
        item = json_array_get(value, 0);
    }
    if (!item || json_is_null(item)) {
        if (a->type == ATTIO_SIM_LOCATION) {
            sim_write_set(store, w, DEAL_POSTCODE, "", &why);
            sim_write_set(store, w, DEAL_LOCATION, "", &why);
        } else {
            sim_write_set(store, w, a->field, "", &why);
        }
        return NULL;
    }
    if (a->type == ATTIO_SIM_LOCATION)
        return take_location(store, a, item, w, message);

    char *text = item_text(o, store, a, item, &code, message);
    if (!text)
        return code;
    fs_result r = sim_write_set(store, w, a->field, text, &why);
    free(text);
    if (r != FS_OK) {
        *message = xasprintf("Invalid value for attribute \"%s\".", a->slug);
        return "validation_type";
    }
    return NULL;
}

/* ---- webhooks ---- */

static json_t *event_json(const char *type, const struct sim_deal *deal,
                          const struct attio_sim_attr *a,
                          const struct sim_actor *actor)
{
    json_t *id =
        json_pack("{s:s, s:s, s:s}", "workspace_id", ATTIO_SIM_WORKSPACE,
                  "object_id", ATTIO_SIM_OBJECT, "record_id", deal->id);
    if (a)
        json_object_set_new(id, "attribute_id", json_string(a->id));
    return json_pack("{s:s, s:o, s:o}", "event_type", type, "id", id, "actor",
                     actor_json(actor->kind, actor->id));
}

/* The value at a dot path of the event ("id.object_id"), as text. */
static const char *path_value(const json_t *event, const char *path)
{
    const json_t *v = event;

    while (path && v) {
        const char *dot = strchr(path, '.');
        size_t len = dot ? (size_t)(dot - path) : strlen(path);
        char *part = xstrndup(path, len);
        v = json_object_get(v, part);
        free(part);
        path = dot ? dot + 1 : NULL;
    }
    return json_string_value(v);
}

/* A subscription filter ({"$and"|"$or": [{field, operator, value}]} or
 * null) against the event. */
static bool filter_match(const json_t *filter, const json_t *event)
{
    const json_t *all = json_object_get(filter, "$and");
    const json_t *any = json_object_get(filter, "$or");
    size_t i;
    const json_t *cond;

    if (!filter || json_is_null(filter))
        return true;
    json_array_foreach(all ? all : any, i, cond)
    {
        const char *v = path_value(
            event, json_string_value(json_object_get(cond, "field")));
        const char *want = json_string_value(json_object_get(cond, "value"));
        const char *op = json_string_value(json_object_get(cond, "operator"));
        bool eq = v && want && strcmp(v, want) == 0;
        bool ok = op && strcmp(op, "not_equals") == 0 ? !eq : eq;
        if (all && !ok)
            return false;
        if (any && ok)
            return true;
    }
    return all != NULL;
}

static bool subscribed(struct attio_sim_object *o, const json_t *event)
{
    const char *type = json_string_value(json_object_get(event, "event_type"));
    size_t i;
    const json_t *sub;
    bool yes = false;

    pthread_mutex_lock(&o->mu);
    if (!o->subscriptions)
        yes = true;
    json_array_foreach(o->subscriptions, i, sub)
    {
        const char *t = json_string_value(json_object_get(sub, "event_type"));
        if (t && strcmp(t, type) == 0 &&
            filter_match(json_object_get(sub, "filter"), event))
            yes = true;
    }
    pthread_mutex_unlock(&o->mu);
    return yes;
}

static void add(struct attio_sim_object *o, json_t *events, json_t *event)
{
    if (subscribed(o, event))
        json_array_append_new(events, event);
    else
        json_decref(event);
}

/* record.updated for each changed attribute the object has (postcode and
 * location are one). */
static void updates(struct attio_sim_object *o, const struct sim_event *ev,
                    json_t *events)
{
    const struct attio_sim_attr *done[SIM_FIELD_COUNT] = {NULL};
    size_t n_done = 0;

    for (size_t i = 0; i < ev->change_count; i++) {
        const struct attio_sim_attr *a =
            attio_sim_attr_of_field(o, ev->changes[i].field);
        bool seen = false;
        for (size_t j = 0; j < n_done; j++)
            seen |= done[j] == a;
        if (!a || seen)
            continue;
        done[n_done++] = a;
        add(o, events, event_json("record.updated", ev->deal, a, &ev->actor));
    }
}

static void on_event(void *ctx, const struct sim_event *ev, json_t *events)
{
    struct attio_sim_object *o = ctx;

    switch (ev->kind) {
    case SIM_EV_CREATED:
    case SIM_EV_RESTORED:
        add(o, events,
            event_json("record.created", ev->deal, NULL, &ev->actor));
        break;
    case SIM_EV_CHANGED:
        updates(o, ev, events);
        break;
    case SIM_EV_DELETED:
        add(o, events,
            event_json("record.deleted", ev->deal, NULL, &ev->actor));
        break;
    case SIM_EV_MERGED:
        /* One event per record that went into the result. */
        for (size_t i = 0; i < ev->merged_count; i++) {
            json_t *e = event_json("record.merged", ev->deal, NULL, &ev->actor);
            json_object_set_new(e, "duplicate_object_id",
                                json_string(ATTIO_SIM_OBJECT));
            json_object_set_new(e, "duplicate_record_id",
                                json_string(ev->merged[i]->id));
            add(o, events, e);
        }
        break;
    }
}

static void on_format(void *ctx, json_t *events, int attempt,
                      const char *delivery_id, const char *url,
                      struct webhook_post *out)
{
    struct attio_sim_object *o = ctx;
    uint8_t mac[CRYPTO_SHA256_LEN];

    (void)attempt;
    (void)url;
    pthread_mutex_lock(&o->mu);
    json_t *body =
        json_pack("{s:s, s:O}", "webhook_id", o->webhook_id, "events", events);
    char *secret = xstrdup(o->secret);
    pthread_mutex_unlock(&o->mu);

    out->body = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
    out->body_len = strlen(out->body);
    crypto_hmac_sha256(secret, strlen(secret), out->body, out->body_len, mac);
    char *sig = crypto_hex(mac, sizeof(mac));
    webhook_post_add_header(out, "Content-Type: application/json");
    webhook_post_add_header(out, "Attio-Signature: %s", sig);
    webhook_post_add_header(out, "X-Attio-Signature: %s", sig);
    webhook_post_add_header(out, "Idempotency-Key: %s", delivery_id);
    webhook_post_add_header(out, "User-Agent: Attio-Webhooks (crmsim)");
    free(sig);
    free(secret);
    json_decref(body);
}

/* Attio retries up to 10 times over about 3 days; the simulator keeps
 * the count and the growth, compressed to seconds. */
static const int64_t retry_delays_ms[] = {200, 500, 1000, 2000, 4000, 8000};

void attio_sim_webhook_format(struct attio_sim_object *o,
                              struct webhook_format *out)
{
    memset(out, 0, sizeof(*out));
    out->batch_max = 1;
    out->collect_ms = 0;
    out->max_attempts = 10;
    out->retry_delays_ms = retry_delays_ms;
    out->retry_delay_count =
        sizeof(retry_delays_ms) / sizeof(retry_delays_ms[0]);
    out->on_event = on_event;
    out->on_format = on_format;
    out->ctx = o;
}
