/* The field API: JSON over HTTP for reps and admins. Every request is
 * authenticated by its bearer token and confined to the token's org; an
 * edit is validated whole, then applied in one transaction, published on
 * the live stream and handed to the pusher. */
#include "services/field_api.h"

#include "base/alloc.h"
#include "base/json_num.h"
#include "base/clock.h"
#include "base/failpoint.h"
#include "base/log.h"
#include "model/merge.h"
#include "providers/provider.h"
#include "services/api_call.h"
#include "services/app.h"
#include "services/deal_json.h"
#include "services/live_stream.h"
#include "services/territory.h"
#include "store/store.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define STATUS_LIMIT 1000

/* ---- query parsing ---- */

void field_api_query_clear(struct field_api_query *q)
{
    if (!q)
        return;
    free(q->owner);
    free(q->stage);
    free(q->cursor);
    memset(q, 0, sizeof(*q));
}

/* A decimal integer made of digits only, within [min, max]. */
static bool parse_int64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    int64_t v = 0;

    if (*s == '\0' || strlen(s) > 18)
        return false;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (*p - '0');
    }
    if (v < min || v > max)
        return false;
    *out = v;
    return true;
}

static bool is_cursor(const char *s)
{
    size_t len = strlen(s);

    if (len == 0 || len > API_ID_MAX_LEN)
        return false;
    for (const char *p = s; *p; p++) {
        if (!isxdigit((unsigned char)*p))
            return false;
    }
    return true;
}

enum query_param {
    PARAM_OWNER,
    PARAM_STAGE,
    PARAM_UPDATED_SINCE,
    PARAM_LIMIT,
    PARAM_CURSOR,
    PARAM_INCLUDE_DELETED,
    PARAM_BBOX,
    PARAM_COUNT
};

static const char *const param_names[PARAM_COUNT] = {
    [PARAM_OWNER] = "owner",
    [PARAM_STAGE] = "stage",
    [PARAM_UPDATED_SINCE] = "updated_since",
    [PARAM_LIMIT] = "limit",
    [PARAM_CURSOR] = "cursor",
    [PARAM_INCLUDE_DELETED] = "include_deleted",
    [PARAM_BBOX] = "bbox",
};

/* "min_lng,min_lat,max_lng,max_lat" in WGS84 degrees, as GeoJSON orders
 * a bbox. */
static bool parse_bbox(const char *s, double bbox[4])
{
    static const double lo[4] = {-180, -90, -180, -90};
    static const double hi[4] = {180, 90, 180, 90};
    const char *p = s;

    for (int i = 0; i < 4; i++) {
        char *end = NULL;
        errno = 0;
        bbox[i] = strtod(p, &end);
        if (errno != 0 || end == p || !isfinite(bbox[i]) || bbox[i] < lo[i] ||
            bbox[i] > hi[i])
            return false;
        if (i < 3 && *end != ',')
            return false;
        if (i == 3 && *end != '\0')
            return false;
        p = end + 1;
    }
    return bbox[0] <= bbox[2] && bbox[1] <= bbox[3];
}

/* Stores one decoded parameter value; takes value. */
static fs_result apply_param(enum query_param which, char *value,
                             struct field_api_query *q, struct api_error *err)
{
    const char *name = param_names[which];
    int64_t n = 0;

    if (strlen(value) > FIELD_API_MAX_PARAM) {
        api_error_set(err, 400, "invalid_param", name,
                      "%s is longer than %d bytes", name, FIELD_API_MAX_PARAM);
        goto fail;
    }
    switch (which) {
    case PARAM_OWNER:
        q->owner = value;
        return FS_OK;
    case PARAM_STAGE:
        q->stage = value;
        return FS_OK;
    case PARAM_CURSOR:
        if (!is_cursor(value)) {
            api_error_set(err, 400, "invalid_param", name,
                          "cursor is not one this API returned");
            goto fail;
        }
        q->cursor = value;
        return FS_OK;
    case PARAM_UPDATED_SINCE:
        if (!parse_int64(value, 0, INT64_MAX, &n)) {
            api_error_set(err, 400, "invalid_param", name,
                          "updated_since must be epoch milliseconds");
            goto fail;
        }
        q->updated_since = n;
        break;
    case PARAM_LIMIT:
        if (!parse_int64(value, 1, FIELD_API_MAX_LIMIT, &n)) {
            api_error_set(err, 400, "invalid_param", name,
                          "limit must be an integer from 1 to %d",
                          FIELD_API_MAX_LIMIT);
            goto fail;
        }
        q->limit = (int)n;
        break;
    case PARAM_INCLUDE_DELETED:
        if (strcmp(value, "true") == 0 || strcmp(value, "1") == 0) {
            q->include_deleted = true;
        } else if (strcmp(value, "false") == 0 || strcmp(value, "0") == 0) {
            q->include_deleted = false;
        } else {
            api_error_set(err, 400, "invalid_param", name,
                          "include_deleted must be true or false");
            goto fail;
        }
        break;
    case PARAM_BBOX:
        if (!parse_bbox(value, q->bbox)) {
            api_error_set(err, 400, "invalid_param", name,
                          "bbox is min_lng,min_lat,max_lng,max_lat in "
                          "degrees");
            goto fail;
        }
        q->has_bbox = true;
        break;
    case PARAM_COUNT:
        break;
    }
    free(value);
    return FS_OK;

fail:
    free(value);
    return FS_ERR_INVALID;
}

static fs_result apply_one(size_t which, char *value, void *ctx,
                           struct api_error *err)
{
    return apply_param((enum query_param)which, value, ctx, err);
}

fs_result field_api_parse_query(const char *raw_url,
                                struct field_api_query *out,
                                struct api_error *err)
{
    memset(out, 0, sizeof(*out));
    out->limit = FIELD_API_DEFAULT_LIMIT;
    fs_result result =
        api_query_each(raw_url, param_names, PARAM_COUNT, apply_one, out, err);
    if (result != FS_OK)
        field_api_query_clear(out);
    return result;
}

/* ---- edit bodies ---- */

void field_api_edit_clear(struct field_api_edit *edit)
{
    if (!edit)
        return;
    for (int i = 0; i < DEAL_FIELD_COUNT; i++)
        free(edit->values[i]);
    memset(edit, 0, sizeof(*edit));
}

static char *real_text(double v)
{
    for (int precision = 1; precision < 17; precision++) {
        char *text = xasprintf("%.*g", precision, v);
        if (strtod(text, NULL) == v)
            return text;
        free(text);
    }
    return xasprintf("%.17g", v);
}

/* The text of a field value: strings as they are, null as NULL, and JSON
 * numbers for the amount. */
static fs_result value_text(enum deal_field field, json_t *v, char **out,
                            bool *is_null)
{
    *out = NULL;
    *is_null = false;
    if (json_is_null(v)) {
        *is_null = true;
        return FS_OK;
    }
    if (json_is_string(v)) {
        *out = xstrndup(json_string_value(v), json_string_length(v));
        return FS_OK;
    }
    if (deal_fields[field].type == FIELD_AMOUNT && json_is_integer(v)) {
        *out = xasprintf("%lld", (long long)json_integer_value(v));
        return FS_OK;
    }
    if (deal_fields[field].type == FIELD_AMOUNT && json_is_real(v)) {
        *out = real_text(json_real_value(v));
        return FS_OK;
    }
    return FS_ERR_INVALID;
}

/* NULL, empty or spaces only: no name a person could read. */
static bool text_blank(const char *text)
{
    while (text && *text == ' ')
        text++;
    return !text || !*text;
}

static fs_result parse_fields(json_t *fields, struct field_api_edit *out,
                              struct api_error *err)
{
    const char *name;
    json_t *v;

    if (!json_is_object(fields)) {
        api_error_set(err, 400, "invalid_type", "fields",
                      "fields must be an object");
        return FS_ERR_INVALID;
    }
    if (json_object_size(fields) > FIELD_API_MAX_FIELDS) {
        api_error_set(err, 413, "too_large", "fields",
                      "more than %d fields in one request",
                      FIELD_API_MAX_FIELDS);
        return FS_ERR_TOO_LARGE;
    }

    json_object_foreach(fields, name, v)
    {
        int f = deal_field_by_name(name);
        char *text = NULL;
        bool is_null = false;

        if (f < 0) {
            api_error_set(err, 400, "unknown_field", name, "unknown field");
            return FS_ERR_INVALID;
        }
        if (value_text((enum deal_field)f, v, &text, &is_null) != FS_OK) {
            api_error_set(err, 400, "invalid_type", name,
                          deal_fields[f].type == FIELD_AMOUNT
                              ? "must be a string, a number or null"
                              : "must be a string or null");
            return FS_ERR_INVALID;
        }

        char *canonical = NULL;
        fs_result r = is_null ? FS_OK
                              : deal_field_canonical((enum deal_field)f, text,
                                                     &canonical);
        free(text);
        if (r == FS_ERR_TOO_LARGE) {
            api_error_set(err, 422, "invalid_value", name,
                          "longer than %zu bytes", deal_fields[f].max_len);
            return r;
        }
        if (r != FS_OK) {
            api_error_set(err, 422, "invalid_value", name,
                          "not a valid %s value", deal_fields[f].name);
            return r;
        }
        if (f == DEAL_NAME && text_blank(canonical)) {
            free(canonical);
            api_error_set(err, 422, "invalid_value", name,
                          "a deal needs a name");
            return FS_ERR_INVALID;
        }
        out->set[f] = true;
        out->values[f] = canonical;
        out->count++;
    }
    return FS_OK;
}

fs_result field_api_parse_edit(const char *body, size_t len,
                               struct field_api_edit *out,
                               struct api_error *err)
{
    json_t *root = NULL;
    const char *key;
    json_t *v;
    fs_result result = FS_ERR_INVALID;

    memset(out, 0, sizeof(*out));
    result = api_json_parse_object(body, len, &root, err);
    if (result != FS_OK)
        goto out;
    result = FS_ERR_INVALID;

    json_object_foreach(root, key, v)
    {
        if (strcmp(key, "fields") == 0)
            continue;
        if (strcmp(key, "client_time") != 0) {
            api_error_set(err, 400, "unknown_key", key, "unknown key");
            goto out;
        }
        if (!json_is_integer(v) || json_integer_value(v) < 0) {
            api_error_set(err, 400, "invalid_type", key,
                          "client_time must be epoch milliseconds");
            goto out;
        }
        out->client_time = json_integer_value(v);
    }

    v = json_object_get(root, "fields");
    if (!v) {
        api_error_set(err, 400, "missing_key", "fields",
                      "the body must hold \"fields\"");
        goto out;
    }
    result = parse_fields(v, out, err);

out:
    json_decref(root);
    if (result != FS_OK)
        field_api_edit_clear(out);
    return result;
}

/* ---- request handling ---- */

/* A rep owns a deal when its owner is the rep's CRM owner id. */
static bool rep_owns(const struct api_call *c, const struct record *r)
{
    return c->user.crm_owner_id && r->fields[DEAL_OWNER].value &&
           strcmp(c->user.crm_owner_id, r->fields[DEAL_OWNER].value) == 0;
}

static json_t *record_json(struct api_call *c, const struct record *r)
{
    struct sync_state sync = {0};
    bool have = r->rowid && store_sync_get(c->store, r->rowid, &sync) == FS_OK;
    json_t *obj = deal_json(r, have ? &sync : NULL, api_stages(c));

    sync_state_clear(&sync);
    return obj;
}

/* GET /api/v1/deals */
static void handle_list(struct api_call *c)
{
    struct field_api_query q;
    struct api_error err = {0};
    struct record *records = NULL;
    size_t n = 0;

    if (field_api_parse_query(c->req->raw_url, &q, &err) != FS_OK) {
        api_fail_with(c, &err);
        api_error_clear(&err);
        return;
    }

    struct record_filter filter = {
        .org_id = c->user.org_id,
        .owner = q.owner,
        .updated_since = q.updated_since,
        .include_deleted = q.include_deleted,
        .after_id = q.cursor,
        .limit = q.limit,
        .has_bbox = q.has_bbox,
    };
    memcpy(filter.bbox, q.bbox, sizeof(filter.bbox));
    const char **crm_stages = NULL;
    if (q.stage) {
        /* The org's stage stands for every CRM stage mapped onto it. */
        const struct stage_map *map = api_stages(c);
        if (!map) {
            api_fail_store(c, FS_ERR_DB);
            goto out;
        }
        if (!stage_map_find(map, q.stage)) {
            api_fail(c, 400, "unknown_stage", "stage",
                     "not one of the org's stages");
            goto out;
        }
        crm_stages = stage_map_crm_stages_of(map, q.stage, &filter.n_stages);
        filter.stages = crm_stages;
        filter.by_stage = true;
    }
    fs_result r = store_records_list(c->store, &filter, &records, &n);
    if (r != FS_OK) {
        api_fail_store(c, r);
        goto out;
    }

    json_t *deals = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(deals, record_json(c, &records[i]));
    json_t *next = n > 0 && n == (size_t)q.limit
                       ? json_string(records[n - 1].id)
                       : json_null();
    api_respond(c, 200,
                json_pack("{s:o, s:o}", "deals", deals, "next_cursor", next));

out:
    free(crm_stages);
    store_records_free(records, n);
    field_api_query_clear(&q);
}

/* Loads a deal of the caller's org; another org's id is just not found. */
static bool load_deal(struct api_call *c, const char *id, struct record *r)
{
    fs_result res = store_record_get(c->store, c->user.org_id, id, r);

    if (res == FS_ERR_NOT_FOUND) {
        api_fail(c, 404, "not_found", NULL, "no such deal");
        return false;
    }
    if (res != FS_OK) {
        api_fail_store(c, res);
        return false;
    }
    return true;
}

/* GET /api/v1/deals/{id} */
static void handle_get(struct api_call *c, const char *id)
{
    struct record r = {0};

    if (load_deal(c, id, &r))
        api_respond(c, 200, record_json(c, &r));
    record_clear(&r);
}

static const char *edit_outcome_name(enum edit_outcome o)
{
    switch (o) {
    case EDIT_APPLIED:
        return "applied";
    case EDIT_UNCHANGED:
        return "unchanged";
    case EDIT_SUPERSEDED:
        return "superseded";
    }
    return "unchanged";
}

/* The answer for one field's edit. A stage applied as a CRM stage that
 * reads back as another org stage (In Quote written as Engaging, which
 * reads as Qualified) is "remapped": the deal does not read as the stage
 * asked, and its "stage" says which it does. */
static const char *edit_answer(struct api_call *c,
                               const struct field_api_edit *edit,
                               const struct record *r, int field,
                               enum edit_outcome outcome)
{
    if (field == DEAL_STAGE && outcome == EDIT_APPLIED &&
        edit->values[DEAL_STAGE]) {
        const char *reads_as =
            stage_map_key_of(api_stages(c), r->fields[DEAL_STAGE].value);
        if (reads_as && strcmp(reads_as, edit->values[DEAL_STAGE]) != 0)
            return "remapped";
    }
    return edit_outcome_name(outcome);
}

/* What a rep may not do with an edit: give the deal to someone else. */
static bool rep_owner_allowed(const struct api_call *c,
                              const struct field_api_edit *edit)
{
    if (!edit->set[DEAL_OWNER])
        return true;
    return c->user.crm_owner_id && edit->values[DEAL_OWNER] &&
           strcmp(edit->values[DEAL_OWNER], c->user.crm_owner_id) == 0;
}

/* The edit's stage is one of the org's; the record takes the CRM stage
 * that puts it there (its own when that already maps to it). On failure
 * err says why and nothing is set. */
static fs_result stage_for_write(struct api_call *c, const struct record *r,
                                 const struct field_api_edit *edit,
                                 const char **out, struct api_error *err)
{
    const struct stage_map *map = api_stages(c);
    const char *key = edit->values[DEAL_STAGE];

    *out = NULL;
    if (!edit->set[DEAL_STAGE] || !key)
        return FS_OK;
    if (!map)
        return FS_ERR_DB;
    fs_result res =
        stage_map_for_write(map, key, r->fields[DEAL_STAGE].value, out);
    if (res == FS_ERR_NOT_FOUND)
        api_error_set(err, 422, "unknown_stage", "stage",
                      "\"%s\" is not one of the org's stages", key);
    else if (res != FS_OK)
        api_error_set(err, 422, "stage_not_mapped", "stage",
                      "stage %s has no CRM stage to write in this deal's "
                      "pipeline; an admin maps it",
                      key);
    return res == FS_OK ? FS_OK : FS_ERR_INVALID;
}

/* An edit may only set fields the connection syncs: one the CRM object
 * has no attribute for would stay pending forever. */
static fs_result check_synced(const struct connection *conn,
                              const struct field_api_edit *edit,
                              struct api_error *err)
{
    unsigned synced = provider_synced_fields(conn);

    for (int f = 0; f < DEAL_FIELD_COUNT; f++) {
        if (edit->set[f] && !(synced & (1u << f))) {
            api_error_set(err, 422, "field_not_synced", deal_fields[f].name,
                          "the org's %s connection does not sync %s",
                          conn->provider, deal_fields[f].name);
            return FS_ERR_INVALID;
        }
    }
    return FS_OK;
}

/* The same for the connection a record is synced through (none: any). */
static fs_result check_record_synced(struct api_call *c, const struct record *r,
                                     const struct field_api_edit *edit,
                                     struct api_error *err)
{
    struct connection conn = {0};

    if (!r->connection_id)
        return FS_OK;
    fs_result res = store_connection_get(c->store, r->connection_id, &conn);
    if (res == FS_OK)
        res = check_synced(&conn, edit, err);
    else if (res == FS_ERR_NOT_FOUND)
        res = FS_OK;
    connection_clear(&conn);
    return res;
}

/* Applies the edit's fields to r at server time now, the stage as the
 * CRM stage given. */
static void apply_edit(struct record *r, const struct field_api_edit *edit,
                       const char *crm_stage, int64_t now,
                       enum edit_outcome *outcomes)
{
    for (int f = 0; f < DEAL_FIELD_COUNT; f++) {
        if (!edit->set[f])
            continue;
        const char *value =
            f == DEAL_STAGE && crm_stage ? crm_stage : edit->values[f];
        outcomes[f] =
            merge_local_edit(&r->fields[f], value, now, edit->client_time);
    }
}

static fs_result audit_superseded(struct api_call *c, const struct record *r,
                                  const struct field_api_edit *edit,
                                  const enum edit_outcome *outcomes)
{
    for (int f = 0; f < DEAL_FIELD_COUNT; f++) {
        if (!edit->set[f] || outcomes[f] != EDIT_SUPERSEDED)
            continue;
        char *detail =
            xasprintf("user=%lld client_time=%lld", (long long)c->user.id,
                      (long long)edit->client_time);
        fs_result res =
            store_audit_add(c->store, c->user.org_id, "edit_superseded", r->id,
                            deal_fields[f].name, detail);
        free(detail);
        if (res != FS_OK)
            return res;
    }
    return FS_OK;
}

/* An owner the CRM does not have would only fail at push time: refused
 * now, while the rep still sees the form. */
static fs_result check_owner(struct api_call *c, int64_t connection_id,
                             const struct field_api_edit *edit,
                             struct api_error *err)
{
    const char *owner = edit->values[DEAL_OWNER];
    bool known = true;

    if (!edit->set[DEAL_OWNER] || !owner)
        return FS_OK;
    fs_result res =
        store_crm_owner_known(c->store, connection_id, owner, &known);
    if (res == FS_OK && !known) {
        api_error_set(err, 422, "unknown_owner", "owner",
                      "%s is not an owner in the CRM", owner);
        res = FS_ERR_INVALID;
    }
    return res;
}

/* One attempt at the whole PATCH transaction. A client error fills err
 * and returns FS_ERR_INVALID; store failures come back as they are. */
static fs_result patch_once(struct api_call *c, const char *id,
                            const struct field_api_edit *edit,
                            enum edit_outcome *outcomes, struct record *r,
                            struct api_error *err)
{
    fs_result res = store_begin(c->store);
    if (res != FS_OK)
        return res;

    res = store_record_get(c->store, c->user.org_id, id, r);
    if (res == FS_ERR_NOT_FOUND) {
        api_error_set(err, 404, "not_found", NULL, "no such deal");
        res = FS_ERR_INVALID;
    } else if (res == FS_OK && r->deleted_at) {
        api_error_set(err, 409, "deleted", NULL, "the deal was deleted (%s)",
                      r->deleted_reason ? r->deleted_reason : "deleted");
        res = FS_ERR_INVALID;
    } else if (res == FS_OK && !api_is_admin(c) && !rep_owns(c, r)) {
        api_error_set(err, 403, "forbidden", NULL,
                      "reps may edit only the deals they own");
        res = FS_ERR_INVALID;
    } else if (res == FS_OK && !api_is_admin(c) &&
               !rep_owner_allowed(c, edit)) {
        api_error_set(err, 403, "forbidden", "owner",
                      "reps may not give a deal to another owner");
        res = FS_ERR_INVALID;
    }
    const char *crm_stage = NULL;
    if (res == FS_OK)
        res = check_record_synced(c, r, edit, err);
    if (res == FS_OK)
        res = check_owner(c, r->connection_id, edit, err);
    if (res == FS_OK)
        res = stage_for_write(c, r, edit, &crm_stage, err);
    if (res != FS_OK)
        goto fail;

    int64_t now = clock_now_ms();
    apply_edit(r, edit, crm_stage, now, outcomes);
    res = territory_save_deal(c->store, r, now, NULL);
    if (res == FS_OK)
        res = audit_superseded(c, r, edit, outcomes);
    if (res == FS_OK)
        res = store_commit(c->store);
    if (res == FS_OK) {
        failpoint("edit.committed");
        return FS_OK;
    }

fail:
    store_rollback(c->store);
    return res;
}

/* Publishes the deal on the live stream and hands it to the pusher. */
static void announce(struct api_call *c, const char *type, json_t *deal)
{
    char *text = json_num_dumps(deal, JSON_COMPACT);

    live_stream_publish(app_live_stream(c->app), c->user.org_id, type, text);
    free(text);
    app_wake_pusher(c->app);
}

/* PATCH /api/v1/deals/{id} */
static void handle_patch(struct api_call *c, const char *id)
{
    struct field_api_edit edit;
    struct api_error err = {0};
    enum edit_outcome outcomes[DEAL_FIELD_COUNT] = {EDIT_UNCHANGED};
    struct record r = {0};
    fs_result res = FS_ERR_BUSY;

    if (field_api_parse_edit(c->req->body, c->req->body_len, &edit, &err) !=
        FS_OK) {
        api_fail_with(c, &err);
        goto out;
    }
    if (edit.count == 0) {
        api_fail(c, 400, "missing_key", "fields", "no field to change");
        goto out;
    }

    int64_t started = clock_mono_ms();
    for (int attempt = 0; res == FS_ERR_BUSY && api_txn_again(attempt, started);
         attempt++) {
        record_clear(&r);
        memset(&r, 0, sizeof(r));
        if (attempt > 0)
            clock_sleep_ms(10 * attempt);
        res = patch_once(c, id, &edit, outcomes, &r, &err);
    }
    if (res == FS_ERR_INVALID && err.status != 0) {
        api_fail_with(c, &err);
        goto out;
    }
    if (res != FS_OK) {
        api_fail_store(c, res);
        goto out;
    }

    bool changed = false;
    json_t *edits = json_object();
    for (int f = 0; f < DEAL_FIELD_COUNT; f++) {
        if (!edit.set[f])
            continue;
        changed = changed || outcomes[f] == EDIT_APPLIED;
        json_object_set_new(
            edits, deal_fields[f].name,
            json_string(edit_answer(c, &edit, &r, f, outcomes[f])));
    }
    json_t *deal = record_json(c, &r);
    if (changed)
        announce(c, "deal.updated", deal);
    api_respond(c, 200, json_pack("{s:o, s:o}", "deal", deal, "edits", edits));

out:
    record_clear(&r);
    field_api_edit_clear(&edit);
    api_error_clear(&err);
}

/* One attempt at creating the record. */
static fs_result create_once(struct api_call *c,
                             const struct field_api_edit *edit,
                             struct record *r, struct api_error *err)
{
    struct connection conn = {0};
    enum edit_outcome outcomes[DEAL_FIELD_COUNT];

    fs_result res = store_begin(c->store);
    if (res != FS_OK)
        return res;

    res = store_connection_for_org(c->store, c->user.org_id, &conn);
    if (res == FS_ERR_NOT_FOUND) {
        api_error_set(err, 409, "no_connection", NULL,
                      "org has no CRM connection");
        res = FS_ERR_INVALID;
        goto fail;
    }
    if (res != FS_OK)
        goto fail;

    r->org_id = c->user.org_id;
    r->connection_id = conn.id;
    const char *crm_stage = NULL;
    res = check_synced(&conn, edit, err);
    if (res == FS_OK)
        res = check_owner(c, conn.id, edit, err);
    if (res == FS_OK)
        res = stage_for_write(c, r, edit, &crm_stage, err);
    if (res != FS_OK)
        goto fail;
    int64_t now = clock_now_ms();
    apply_edit(r, edit, crm_stage, now, outcomes);
    res = territory_save_deal(c->store, r, now, NULL);
    if (res == FS_OK)
        res = store_commit(c->store);
    if (res == FS_OK) {
        failpoint("create.committed");
        goto out;
    }

fail:
    store_rollback(c->store);
out:
    connection_clear(&conn);
    return res;
}

/* POST /api/v1/deals */
static void handle_create(struct api_call *c)
{
    struct field_api_edit edit;
    struct api_error err = {0};
    struct record r = {0};
    fs_result res = FS_ERR_BUSY;

    if (field_api_parse_edit(c->req->body, c->req->body_len, &edit, &err) !=
        FS_OK) {
        api_fail_with(c, &err);
        goto out;
    }
    if (!edit.values[DEAL_NAME]) {
        api_fail(c, 422, "invalid_value", "name", "a deal needs a name");
        goto out;
    }
    if (!api_is_admin(c)) {
        if (!c->user.crm_owner_id) {
            api_fail(c, 403, "forbidden", "owner",
                     "your user has no CRM owner id; ask an admin");
            goto out;
        }
        if (!rep_owner_allowed(c, &edit)) {
            api_fail(c, 403, "forbidden", "owner",
                     "reps may not create deals for another owner");
            goto out;
        }
        if (!edit.set[DEAL_OWNER]) {
            edit.set[DEAL_OWNER] = true;
            edit.values[DEAL_OWNER] = xstrdup(c->user.crm_owner_id);
            edit.count++;
        }
    }

    int64_t started = clock_mono_ms();
    for (int attempt = 0; res == FS_ERR_BUSY && api_txn_again(attempt, started);
         attempt++) {
        record_clear(&r);
        memset(&r, 0, sizeof(r));
        if (attempt > 0)
            clock_sleep_ms(10 * attempt);
        res = create_once(c, &edit, &r, &err);
    }
    if (res == FS_ERR_INVALID && err.status != 0) {
        api_fail_with(c, &err);
        goto out;
    }
    if (res != FS_OK) {
        api_fail_store(c, res);
        goto out;
    }

    json_t *deal = record_json(c, &r);
    announce(c, "deal.created", deal);
    char *location = xasprintf("/api/v1/deals/%s", r.id);
    http_response_add_header(c->resp, "Location", location);
    free(location);
    api_respond(c, 201, deal);

out:
    record_clear(&r);
    field_api_edit_clear(&edit);
    api_error_clear(&err);
}

static json_t *pending_field_names(unsigned mask)
{
    json_t *names = json_array();

    for (int f = 0; f < DEAL_FIELD_COUNT; f++) {
        if (mask & (1u << f))
            json_array_append_new(names, json_string(deal_fields[f].name));
    }
    return names;
}

static json_t *status_entry_json(const struct sync_status_entry *e)
{
    json_t *obj = json_pack(
        "{s:s, s:o, s:s, s:i, s:o, s:I, s:I, s:o}", "id", e->record_id,
        "crm_id", e->crm_id ? json_string(e->crm_id) : json_null(), "state",
        e->failed ? "failed" : "pending", "attempts", e->attempts, "error",
        e->last_error ? json_string(e->last_error) : json_null(),
        "first_failure_at", (json_int_t)e->first_failure_at, "next_try_at",
        (json_int_t)e->next_try_at, "fields",
        pending_field_names(e->pending_mask));
    if (e->failed)
        json_object_set_new(obj, "message",
                            json_string("couldn't sync to CRM"));
    return obj;
}

/* GET /api/v1/sync/status: the counts are whole, the list the first
 * STATUS_LIMIT; a rep's both of their own deals only. */
static void handle_sync_status(struct api_call *c, const char *id)
{
    struct sync_status_entry *entries = NULL;
    size_t n = 0;
    int64_t pending = 0;
    int64_t failed = 0;
    const char *owner = api_is_admin(c) ? NULL : c->user.crm_owner_id;
    fs_result res = FS_OK;

    if (api_is_admin(c) || owner) {
        res = store_sync_status_counts(c->store, c->user.org_id, owner,
                                       &pending, &failed);
        if (res == FS_OK)
            res = store_sync_status(c->store, c->user.org_id, owner,
                                    STATUS_LIMIT, &entries, &n);
    }
    if (res != FS_OK) {
        api_fail_store(c, res);
        return;
    }

    json_t *list = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, status_entry_json(&entries[i]));
    api_respond(c, 200,
                json_pack("{s:I, s:I, s:o}", "pending", (json_int_t)pending,
                          "failed", (json_int_t)failed, "records", list));
    store_sync_status_free(entries, n);
}

/* POST /api/v1/sync/retry: puts the org's failed records back in line. */
static void handle_sync_retry(struct api_call *c, const char *id)
{
    int64_t count = 0;
    fs_result res = store_sync_retry_failed(c->store, c->user.org_id, &count);

    if (res != FS_OK) {
        api_fail_store(c, res);
        return;
    }
    log_info("api_sync_retry org=%lld user=%lld requeued=%lld",
             (long long)c->user.org_id, (long long)c->user.id,
             (long long)count);
    app_wake_pusher(c->app);
    api_respond(c, 200, json_pack("{s:I}", "requeued", (json_int_t)count));
}

/* GET /api/v1/me */
static void handle_me(struct api_call *c, const char *id)
{
    char *org_name = NULL;
    fs_result res = store_org_name(c->store, c->user.org_id, &org_name);

    if (res != FS_OK) {
        api_fail_store(c, res);
        return;
    }
    json_t *obj = json_pack(
        "{s:I, s:s, s:o, s:s, s:{s:I, s:s}, s:o}", "id", (json_int_t)c->user.id,
        "name", c->user.name, "email",
        c->user.email ? json_string(c->user.email) : json_null(), "role",
        store_role_name(c->user.role), "org", "id", (json_int_t)c->user.org_id,
        "name", org_name, "crm_owner_id",
        c->user.crm_owner_id ? json_string(c->user.crm_owner_id) : json_null());
    free(org_name);
    api_respond(c, 200, obj);
}

/* ---- routing ---- */

static void handle_deals(struct api_call *c, const char *id)
{
    if (strcmp(c->req->method, "GET") == 0)
        handle_list(c);
    else
        handle_create(c);
}

static void handle_deal(struct api_call *c, const char *id)
{
    if (strcmp(c->req->method, "GET") == 0)
        handle_get(c, id);
    else
        handle_patch(c, id);
}

/* The stream outlives this call: the store goes back first. */
static void handle_events(struct api_call *c, const char *id)
{
    app_store_release(c->app, c->store);
    c->store = NULL;
    live_stream_subscribe(app_live_stream(c->app), c->user.org_id, c->resp);
}

const struct api_route field_api_routes[] = {
    {"/api/v1/deals", "GET, POST", handle_deals},
    {"/api/v1/deals/{id}", "GET, PATCH", handle_deal},
    {"/api/v1/sync/status", "GET", handle_sync_status},
    {"/api/v1/sync/retry", "POST", handle_sync_retry},
    {"/api/v1/events", "GET", handle_events},
    {"/api/v1/me", "GET", handle_me},
};
const size_t field_api_route_count =
    sizeof(field_api_routes) / sizeof(field_api_routes[0]);
