/* Attio's side of a connection as data: which attribute of the object
 * holds each deal field, checked against the object's attributes, and the
 * codecs between Attio's value envelopes and fieldsync's canonical
 * values. Pure: no I/O. */
#include "providers/attio.h"

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/json_num.h"
#include "model/postcode.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OUR_ID_SLOT (-1)

static const struct {
    enum attio_kind kind;
    const char *name;
} kind_names[] = {
    {ATTIO_KIND_TEXT, "text"},
    {ATTIO_KIND_NUMBER, "number"},
    {ATTIO_KIND_CURRENCY, "currency"},
    {ATTIO_KIND_DATE, "date"},
    {ATTIO_KIND_TIMESTAMP, "timestamp"},
    {ATTIO_KIND_STATUS, "status"},
    {ATTIO_KIND_ACTOR, "actor-reference"},
    {ATTIO_KIND_LOCATION, "location"},
};

const char *attio_kind_name(enum attio_kind kind)
{
    for (size_t i = 0; i < sizeof(kind_names) / sizeof(kind_names[0]); i++) {
        if (kind_names[i].kind == kind)
            return kind_names[i].name;
    }
    return "none";
}

enum attio_kind attio_kind_by_name(const char *type)
{
    for (size_t i = 0; type && i < sizeof(kind_names) / sizeof(kind_names[0]);
         i++) {
        if (strcmp(kind_names[i].name, type) == 0)
            return kind_names[i].kind;
    }
    return ATTIO_KIND_NONE;
}

/* The standard deals object (name, stage, owner, value) and the custom
 * attributes the README has an admin add. */
static const char *const default_slugs[DEAL_FIELD_COUNT] = {
    [DEAL_NAME] = "name",
    [DEAL_STAGE] = "stage",
    [DEAL_AMOUNT] = "value",
    [DEAL_CLOSE_DATE] = "close_date",
    [DEAL_OWNER] = "owner",
    [DEAL_ACCOUNT] = "account_name",
    [DEAL_PRODUCT] = "product_name",
    [DEAL_ENGAGE_DATE] = "engage_date",
    [DEAL_POSTCODE] = "location",
    [DEAL_LOCATION] = "location",
};

const char *attio_default_slug(int field)
{
    if (field == OUR_ID_SLOT)
        return "fieldsync_id";
    return field >= 0 && field < DEAL_FIELD_COUNT ? default_slugs[field] : NULL;
}

bool attio_field_is_core(int field)
{
    return field == DEAL_NAME || field == DEAL_STAGE || field == DEAL_OWNER ||
           field == DEAL_LOCATION;
}

/* The kinds a field may live in, in order of preference. */
static bool kind_fits(int field, enum attio_kind kind)
{
    if (field == OUR_ID_SLOT)
        return kind == ATTIO_KIND_TEXT;
    switch (field) {
    case DEAL_NAME:
    case DEAL_ACCOUNT:
    case DEAL_PRODUCT:
        return kind == ATTIO_KIND_TEXT;
    case DEAL_STAGE:
        return kind == ATTIO_KIND_STATUS;
    case DEAL_AMOUNT:
        return kind == ATTIO_KIND_CURRENCY || kind == ATTIO_KIND_NUMBER;
    case DEAL_CLOSE_DATE:
    case DEAL_ENGAGE_DATE:
        return kind == ATTIO_KIND_DATE || kind == ATTIO_KIND_TIMESTAMP;
    case DEAL_OWNER:
        return kind == ATTIO_KIND_ACTOR;
    case DEAL_POSTCODE:
    case DEAL_LOCATION:
        return kind == ATTIO_KIND_LOCATION || kind == ATTIO_KIND_TEXT;
    default:
        return false;
    }
}

static const char *fits_text(int field)
{
    if (field == OUR_ID_SLOT)
        return "a unique text attribute";
    switch (field) {
    case DEAL_STAGE:
        return "a status attribute";
    case DEAL_AMOUNT:
        return "a currency or number attribute";
    case DEAL_CLOSE_DATE:
    case DEAL_ENGAGE_DATE:
        return "a date or timestamp attribute";
    case DEAL_OWNER:
        return "an actor-reference attribute (a workspace member)";
    case DEAL_POSTCODE:
    case DEAL_LOCATION:
        return "a location or text attribute";
    default:
        return "a text attribute";
    }
}

static const char *slot_name(int field)
{
    return field == OUR_ID_SLOT ? "our record id" : deal_fields[field].name;
}

void attio_map_clear(struct attio_map *m)
{
    if (!m)
        return;
    free(m->object);
    free(m->object_id);
    free(m->workspace_id);
    for (int f = 0; f < DEAL_FIELD_COUNT; f++) {
        free(m->fields[f].slug);
        free(m->fields[f].id);
    }
    free(m->our_id.slug);
    free(m->our_id.id);
    memset(m, 0, sizeof(*m));
}

static const char *json_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

/* The live attribute with that slug (or id), or NULL. */
static const json_t *find_attribute(const json_t *attributes, const char *slug)
{
    size_t i;
    const json_t *a;

    json_array_foreach(attributes, i, a)
    {
        const char *s = json_str(a, "api_slug");
        const char *id = json_str(json_object_get(a, "id"), "attribute_id");
        if (json_is_true(json_object_get(a, "is_archived")))
            continue;
        if ((s && strcmp(s, slug) == 0) || (id && strcmp(id, slug) == 0))
            return a;
    }
    return NULL;
}

/* Checks one attribute for a slot and fills it. Returns an error text
 * (caller frees), or NULL when it fits. */
static char *take_attribute(const char *object, int field, const json_t *a,
                            struct attio_attr *out)
{
    const char *slug = json_str(a, "api_slug");
    const char *type = json_str(a, "type");
    const char *id = json_str(json_object_get(a, "id"), "attribute_id");
    enum attio_kind kind = attio_kind_by_name(type);

    if (!slug || !id)
        return xasprintf("the %s object lists an attribute without a slug "
                         "or id",
                         object);
    if (!kind_fits(field, kind))
        return xasprintf("attribute '%s' of %s is of type %s; %s needs %s",
                         slug, object, type ? type : "unknown",
                         slot_name(field), fits_text(field));
    if (json_is_true(json_object_get(a, "is_multiselect")))
        return xasprintf("attribute '%s' of %s takes several values; %s "
                         "needs a single-value attribute",
                         slug, object, slot_name(field));
    if (json_is_false(json_object_get(a, "is_writable")))
        return xasprintf("attribute '%s' of %s is not writable", slug, object);
    if (field == OUR_ID_SLOT && !json_is_true(json_object_get(a, "is_unique")))
        return xasprintf("attribute '%s' of %s must be unique (it holds our "
                         "record id, so a retried create finds the record)",
                         slug, object);
    out->slug = xstrdup(slug);
    out->id = xstrdup(id);
    out->kind = kind;
    return NULL;
}

/* Maps one slot; NULL, or the error text. */
static char *map_slot(const char *object, int field, const char *override,
                      const json_t *attributes, struct attio_attr *out,
                      struct buf *notes)
{
    const char *slug = override ? override : attio_default_slug(field);
    bool required = field == OUR_ID_SLOT || attio_field_is_core(field);

    if (override && !*override) {
        if (required)
            return xasprintf("%s is a core field and cannot be left out",
                             slot_name(field));
        buf_appendf(notes, "%s%s", notes->len ? ", " : "", slot_name(field));
        return NULL;
    }
    const json_t *a = find_attribute(attributes, slug);
    if (!a) {
        if (required || override)
            return xasprintf("the %s object has no attribute '%s' for %s "
                             "(%s)",
                             object, slug, slot_name(field), fits_text(field));
        buf_appendf(notes, "%s%s", notes->len ? ", " : "", slot_name(field));
        return NULL;
    }
    return take_attribute(object, field, a, out);
}

fs_result attio_map_build(const char *object, const char *object_id,
                          const char *const overrides[DEAL_FIELD_COUNT],
                          const char *our_id_override, const json_t *attributes,
                          struct attio_map *out, char **notes, char **error)
{
    struct buf skipped = {0};
    char *err = NULL;

    memset(out, 0, sizeof(*out));
    *error = NULL;
    if (notes)
        *notes = NULL;
    if (!json_is_array(attributes)) {
        *error = xasprintf("the %s object's attributes are not a list", object);
        return FS_ERR_INVALID;
    }
    out->object = xstrdup(object);
    out->object_id = object_id ? xstrdup(object_id) : NULL;

    for (int f = 0; f < DEAL_FIELD_COUNT && !err; f++)
        err = map_slot(object, f, overrides ? overrides[f] : NULL, attributes,
                       &out->fields[f], &skipped);
    if (!err)
        err = map_slot(object, OUR_ID_SLOT, our_id_override, attributes,
                       &out->our_id, &skipped);

    const struct attio_attr *pc = &out->fields[DEAL_POSTCODE];
    const struct attio_attr *loc = &out->fields[DEAL_LOCATION];
    if (!err && pc->kind == ATTIO_KIND_LOCATION &&
        loc->kind == ATTIO_KIND_LOCATION && strcmp(pc->slug, loc->slug) != 0)
        err = xasprintf("postcode and location are on two location "
                        "attributes ('%s', '%s'); one location value holds "
                        "both",
                        pc->slug, loc->slug);
    if (!err && pc->slug && loc->slug && pc->kind == ATTIO_KIND_TEXT &&
        strcmp(pc->slug, loc->slug) == 0)
        err = xasprintf("postcode and location share the text attribute "
                        "'%s'",
                        pc->slug);

    if (err) {
        attio_map_clear(out);
        buf_free(&skipped);
        *error = err;
        return FS_ERR_INVALID;
    }
    if (notes && skipped.len)
        *notes = buf_steal(&skipped);
    buf_free(&skipped);
    return FS_OK;
}

static json_t *attr_json(const struct attio_attr *a)
{
    return json_pack("{s:s, s:s, s:s}", "slug", a->slug, "id", a->id, "type",
                     attio_kind_name(a->kind));
}

json_t *attio_map_to_json(const struct attio_map *m)
{
    json_t *fields = json_object();
    json_t *root = json_object();

    for (int f = 0; f < DEAL_FIELD_COUNT; f++) {
        if (m->fields[f].slug)
            json_object_set_new(fields, deal_fields[f].name,
                                attr_json(&m->fields[f]));
    }
    json_object_set_new(root, "object", json_string(m->object));
    if (m->object_id)
        json_object_set_new(root, "object_id", json_string(m->object_id));
    if (m->workspace_id)
        json_object_set_new(root, "workspace_id", json_string(m->workspace_id));
    json_object_set_new(root, "fields", fields);
    json_object_set_new(root, "our_id", attr_json(&m->our_id));
    if (m->writes_per_s > 0)
        json_object_set_new(root, "writes_per_s",
                            json_integer(m->writes_per_s));
    return root;
}

static bool attr_from_json(const json_t *j, struct attio_attr *out)
{
    const char *slug = json_str(j, "slug");
    const char *id = json_str(j, "id");
    enum attio_kind kind = attio_kind_by_name(json_str(j, "type"));

    if (!slug || !*slug || !id || kind == ATTIO_KIND_NONE)
        return false;
    out->slug = xstrdup(slug);
    out->id = xstrdup(id);
    out->kind = kind;
    return true;
}

fs_result attio_map_from_settings(const char *settings, struct attio_map *out)
{
    json_t *root = settings ? json_loads(settings, 0, NULL) : NULL;
    const json_t *fields = json_object_get(root, "fields");
    const char *object = json_str(root, "object");
    const json_t *writes = json_object_get(root, "writes_per_s");
    fs_result result = FS_ERR_INVALID;

    memset(out, 0, sizeof(*out));
    if (!object || !*object || !json_is_object(fields))
        goto out;
    out->object = xstrdup(object);
    if (json_str(root, "object_id"))
        out->object_id = xstrdup(json_str(root, "object_id"));
    if (json_str(root, "workspace_id"))
        out->workspace_id = xstrdup(json_str(root, "workspace_id"));
    if (json_is_integer(writes) && json_integer_value(writes) > 0 &&
        json_integer_value(writes) <= 100000)
        out->writes_per_s = (int)json_integer_value(writes);
    for (int f = 0; f < DEAL_FIELD_COUNT; f++) {
        const json_t *j = json_object_get(fields, deal_fields[f].name);
        if (j && !attr_from_json(j, &out->fields[f]))
            goto out;
    }
    if (!attr_from_json(json_object_get(root, "our_id"), &out->our_id))
        goto out;
    for (int f = 0; f < DEAL_FIELD_COUNT; f++) {
        if (attio_field_is_core(f) && !out->fields[f].slug)
            goto out;
    }
    result = FS_OK;
out:
    if (result != FS_OK)
        attio_map_clear(out);
    json_decref(root);
    return result;
}

int attio_map_field_of_attribute(const struct attio_map *m, const char *id)
{
    if (!id)
        return -1;
    for (int f = DEAL_FIELD_COUNT - 1; f >= 0; f--) {
        if (m->fields[f].id && strcmp(m->fields[f].id, id) == 0)
            return f;
    }
    return -1;
}

unsigned attio_map_synced(const struct attio_map *m)
{
    unsigned bits = 0;

    for (int f = 0; f < DEAL_FIELD_COUNT; f++) {
        if (m->fields[f].slug)
            bits |= 1u << f;
    }
    return bits;
}

/* ---- values in ---- */

/* The id of a status value: an object with id.status_id, or the id as
 * text. */
static const char *status_id(const json_t *status)
{
    if (json_is_string(status))
        return json_string_value(status);
    return json_str(json_object_get(status, "id"), "status_id");
}

static fs_result canonical(int field, const char *text, char **out)
{
    if (!text)
        return FS_ERR_INVALID;
    return deal_field_canonical((enum deal_field)field, text, out);
}

static fs_result location_in(int field, const json_t *value, char **out)
{
    if (field == DEAL_POSTCODE) {
        const char *pc = json_str(value, "postcode");
        if (!pc || !*pc)
            return FS_OK;
        return canonical(field, pc, out);
    }
    const json_t *lat = json_object_get(value, "latitude");
    const json_t *lng = json_object_get(value, "longitude");
    if (json_is_null(lat) || json_is_null(lng) || !lat || !lng)
        return FS_OK;
    char *lat_text = json_num_text(lat, 1);
    char *lng_text = json_num_text(lng, 1);
    fs_result result = FS_ERR_INVALID;
    if (lat_text && lng_text) {
        char *pair = xasprintf("%s,%s", lat_text, lng_text);
        result = canonical(field, pair, out);
        free(pair);
    }
    free(lat_text);
    free(lng_text);
    return result;
}

/* A date or timestamp value as its UTC day. */
static fs_result day_in(int field, const json_t *value, char **out)
{
    const char *text = json_str(value, "value");
    char day[32];
    int64_t ms;

    if (!text || clock_parse_iso(text, &ms) != 0)
        return FS_ERR_INVALID;
    clock_format_iso(ms, day);
    day[10] = '\0';
    return canonical(field, day, out);
}

fs_result attio_value_in(enum attio_kind kind, int field, const json_t *value,
                         char **out)
{
    char *text = NULL;
    fs_result result;

    *out = NULL;
    if (!json_is_object(value) || field < 0 || field >= DEAL_FIELD_COUNT)
        return FS_ERR_INVALID;
    switch (kind) {
    case ATTIO_KIND_TEXT:
        return canonical(field, json_str(value, "value"), out);
    case ATTIO_KIND_NUMBER:
    case ATTIO_KIND_CURRENCY:
        text = json_num_text(json_object_get(value, kind == ATTIO_KIND_NUMBER
                                                        ? "value"
                                                        : "currency_value"),
                             1);
        result = canonical(field, text, out);
        free(text);
        return result;
    case ATTIO_KIND_DATE:
    case ATTIO_KIND_TIMESTAMP:
        return day_in(field, value, out);
    case ATTIO_KIND_STATUS:
        return canonical(field, status_id(json_object_get(value, "status")),
                         out);
    case ATTIO_KIND_ACTOR: {
        const char *type = json_str(value, "referenced_actor_type");
        if (!type || strcmp(type, "workspace-member") != 0)
            return FS_ERR_INVALID;
        return canonical(field, json_str(value, "referenced_actor_id"), out);
    }
    case ATTIO_KIND_LOCATION:
        return location_in(field, value, out);
    case ATTIO_KIND_NONE:
        break;
    }
    return FS_ERR_INVALID;
}

/* ---- values out ---- */

static json_t *one(json_t *value)
{
    json_t *list = json_array();
    json_array_append_new(list, value);
    return list;
}

static json_t *location_json(const char *postcode, const char *location)
{
    double lat = 0, lng = 0;
    json_t *v = json_pack("{s:n, s:n, s:n, s:n, s:n, s:n, s:n, s:n}", "line_1",
                          "line_2", "line_3", "line_4", "locality", "region",
                          "postcode", "country_code");

    json_object_set_new(v, "postcode",
                        postcode ? json_string(postcode) : json_null());
    const char *country = postcode_country(postcode);
    json_object_set_new(v, "country_code",
                        country ? json_string(country) : json_null());
    if (location && location_parse(location, &lat, &lng) == FS_OK) {
        char text[32];
        snprintf(text, sizeof(text), "%.6f", lat);
        json_object_set_new(v, "latitude", json_string(text));
        snprintf(text, sizeof(text), "%.6f", lng);
        json_object_set_new(v, "longitude", json_string(text));
    } else {
        json_object_set_new(v, "latitude", json_null());
        json_object_set_new(v, "longitude", json_null());
    }
    return v;
}

fs_result attio_value_out(const struct attio_map *m, int field,
                          const char *const values[DEAL_FIELD_COUNT],
                          json_t **out)
{
    const struct attio_attr *a = &m->fields[field];
    const char *v = values[field];
    json_t *item = NULL;
    double lat, lng;
    int64_t ms;

    *out = NULL;
    if (!a->slug)
        return FS_ERR_INVALID;
    if (a->kind == ATTIO_KIND_LOCATION) {
        const char *pc = NULL, *loc = NULL;
        if (m->fields[DEAL_POSTCODE].kind == ATTIO_KIND_LOCATION)
            pc = values[DEAL_POSTCODE];
        if (m->fields[DEAL_LOCATION].kind == ATTIO_KIND_LOCATION)
            loc = values[DEAL_LOCATION];
        if (loc && location_parse(loc, &lat, &lng) != FS_OK)
            return FS_ERR_INVALID;
        *out = pc || loc ? one(location_json(pc, loc)) : json_array();
        return FS_OK;
    }
    if (!v || !*v) {
        *out = json_array();
        return FS_OK;
    }
    switch (a->kind) {
    case ATTIO_KIND_TEXT:
        item = json_string(v);
        break;
    case ATTIO_KIND_NUMBER:
        item = json_num_of(v);
        if (item)
            item = json_pack("{s:o}", "value", item);
        break;
    case ATTIO_KIND_CURRENCY:
        item = json_num_of(v);
        if (item)
            item = json_pack("{s:o}", "currency_value", item);
        break;
    case ATTIO_KIND_DATE:
        if (clock_parse_iso(v, &ms) == 0 && strlen(v) == 10)
            item = json_string(v);
        break;
    case ATTIO_KIND_TIMESTAMP:
        if (clock_parse_iso(v, &ms) == 0 && strlen(v) == 10) {
            char *ts = xasprintf("%sT00:00:00.000000000Z", v);
            item = json_string(ts);
            free(ts);
        }
        break;
    case ATTIO_KIND_STATUS:
        item = json_pack("{s:s}", "status", v);
        break;
    case ATTIO_KIND_ACTOR:
        item = json_pack("{s:s, s:s}", "referenced_actor_type",
                         "workspace-member", "referenced_actor_id", v);
        break;
    case ATTIO_KIND_LOCATION:
    case ATTIO_KIND_NONE:
        break;
    }
    if (!item)
        return FS_ERR_INVALID;
    *out = one(item);
    return FS_OK;
}

/* ---- records ---- */

/* The current value of a value list: the one with no active_until (the
 * newest active_from when several claim it). */
static const json_t *current_value(const json_t *list, int64_t *from)
{
    const json_t *best = NULL;
    size_t i;
    const json_t *v;

    *from = 0;
    json_array_foreach(list, i, v)
    {
        const json_t *until = json_object_get(v, "active_until");
        int64_t t = 0;
        if (until && !json_is_null(until))
            continue;
        const char *text = json_str(v, "active_from");
        if (text && clock_parse_iso(text, &t) != 0)
            t = 0;
        if (!best || t > *from) {
            best = v;
            *from = t;
        }
    }
    return best;
}

enum change_actor attio_actor(const struct connection *conn,
                              const json_t *actor)
{
    const char *type = json_str(actor, "type");
    const char *id = json_str(actor, "id");

    if (!type)
        return ACTOR_UNKNOWN;
    if (strcmp(type, "api-token") != 0)
        return ACTOR_OTHER;
    /* Until our token's id is learnt, a token's write may be ours. */
    if (!conn->app_id || !*conn->app_id)
        return ACTOR_UNKNOWN;
    return id && strcmp(id, conn->app_id) == 0 ? ACTOR_US : ACTOR_OTHER;
}

fs_result attio_deal_from_record(const struct connection *conn,
                                 const struct attio_map *m,
                                 const json_t *record, struct crm_deal *out)
{
    const json_t *values = json_object_get(record, "values");
    const char *id = json_str(json_object_get(record, "id"), "record_id");
    int64_t created = 0;

    memset(out, 0, sizeof(*out));
    if (!id || !*id || !json_is_object(values))
        return FS_ERR_INVALID;
    out->crm_id = xstrdup(id);
    if (json_str(record, "created_at"))
        clock_parse_iso(json_str(record, "created_at"), &created);
    out->modified = created;

    int64_t from = 0;
    const json_t *cur =
        current_value(json_object_get(values, m->our_id.slug), &from);
    if (cur && json_str(cur, "value") && *json_str(cur, "value"))
        out->our_id = xstrdup(json_str(cur, "value"));

    for (int f = 0; f < DEAL_FIELD_COUNT; f++) {
        const struct attio_attr *a = &m->fields[f];
        if (!a->slug)
            continue;
        cur = current_value(json_object_get(values, a->slug), &from);
        if (!cur) {
            /* Emptied at a time a read does not show. */
            out->times[f] = CRM_TIME_UNKNOWN;
            continue;
        }
        out->actors[f] =
            attio_actor(conn, json_object_get(cur, "created_by_actor"));
        if (attio_value_in(a->kind, f, cur, &out->values[f]) != FS_OK) {
            /* Never wins a merge. */
            out->values[f] = NULL;
            out->times[f] = 0;
            continue;
        }
        out->times[f] = from;
        if (from > out->modified)
            out->modified = from;
    }
    return FS_OK;
}
