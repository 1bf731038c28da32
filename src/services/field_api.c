/* The field API: JSON over HTTP for reps and admins. Every request is
 * authenticated by its bearer token and confined to the token's org; an
 * edit is validated whole, then applied in one transaction, published on
 * the live stream and handed to the pusher. */
#include "services/field_api.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "base/log.h"
#include "model/merge.h"
#include "services/app.h"
#include "services/deal_json.h"
#include "services/live_stream.h"
#include "services/territory.h"
#include "store/store.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define TOKEN_MAX_LEN 256
#define DEAL_ID_MAX_LEN 64
#define TXN_ATTEMPTS 4
#define STATUS_LIMIT 1000

/* ---- errors ---- */

void field_api_error_clear(struct field_api_error *err)
{
    if (!err)
        return;
    free(err->field);
    free(err->message);
    memset(err, 0, sizeof(*err));
}

static void set_error(struct field_api_error *err, int status, const char *code,
                      const char *field, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void set_error(struct field_api_error *err, int status, const char *code,
                      const char *field, const char *fmt, ...)
{
    va_list ap;
    char msg[512];

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    field_api_error_clear(err);
    err->status = status;
    err->code = code;
    err->field = field ? xstrdup(field) : NULL;
    err->message = xstrdup(msg);
}

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

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..len) ('+' is a space). NULL when an escape is
 * malformed or decodes to NUL. */
static char *query_decode(const char *s, size_t len)
{
    char *out = xmalloc(len + 1);
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        if (s[i] == '+') {
            out[n++] = ' ';
        } else if (s[i] == '%') {
            int hi = i + 2 < len ? hex_value(s[i + 1]) : -1;
            int lo = i + 2 < len ? hex_value(s[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                free(out);
                return NULL;
            }
            out[n++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[n++] = s[i];
        }
    }
    out[n] = '\0';
    return out;
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

    if (len == 0 || len > DEAL_ID_MAX_LEN)
        return false;
    for (const char *p = s; *p; p++) {
        if (hex_value(*p) < 0)
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
                             struct field_api_query *q,
                             struct field_api_error *err)
{
    const char *name = param_names[which];
    int64_t n = 0;

    if (strlen(value) > FIELD_API_MAX_PARAM) {
        set_error(err, 400, "invalid_param", name, "%s is longer than %d bytes",
                  name, FIELD_API_MAX_PARAM);
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
            set_error(err, 400, "invalid_param", name,
                      "cursor is not one this API returned");
            goto fail;
        }
        q->cursor = value;
        return FS_OK;
    case PARAM_UPDATED_SINCE:
        if (!parse_int64(value, 0, INT64_MAX, &n)) {
            set_error(err, 400, "invalid_param", name,
                      "updated_since must be epoch milliseconds");
            goto fail;
        }
        q->updated_since = n;
        break;
    case PARAM_LIMIT:
        if (!parse_int64(value, 1, FIELD_API_MAX_LIMIT, &n)) {
            set_error(err, 400, "invalid_param", name,
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
            set_error(err, 400, "invalid_param", name,
                      "include_deleted must be true or false");
            goto fail;
        }
        break;
    case PARAM_BBOX:
        if (!parse_bbox(value, q->bbox)) {
            set_error(err, 400, "invalid_param", name,
                      "bbox is min_lng,min_lat,max_lng,max_lat in degrees");
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

fs_result field_api_parse_query(const char *raw_url,
                                struct field_api_query *out,
                                struct field_api_error *err)
{
    const char *p = raw_url ? strchr(raw_url, '?') : NULL;
    bool seen[PARAM_COUNT] = {false};
    fs_result result = FS_OK;

    memset(out, 0, sizeof(*out));
    out->limit = FIELD_API_DEFAULT_LIMIT;
    if (!p)
        return FS_OK;
    p++;

    while (*p && result == FS_OK) {
        size_t len = strcspn(p, "&");
        const char *eq = memchr(p, '=', len);
        size_t key_len = eq ? (size_t)(eq - p) : len;
        char *key = query_decode(p, key_len);
        char *value =
            eq ? query_decode(eq + 1, len - key_len - 1) : xstrdup("");
        int which = -1;

        for (int i = 0; key && i < PARAM_COUNT; i++) {
            if (strcmp(key, param_names[i]) == 0)
                which = i;
        }
        if (len == 0) {
            free(value);
        } else if (!key || !value) {
            set_error(err, 400, "invalid_param", key,
                      "malformed percent-encoding in the query");
            free(value);
            result = FS_ERR_INVALID;
        } else if (which < 0) {
            set_error(err, 400, "unknown_param", key,
                      "unknown query parameter");
            free(value);
            result = FS_ERR_INVALID;
        } else if (seen[which]) {
            set_error(err, 400, "invalid_param", key,
                      "query parameter given twice");
            free(value);
            result = FS_ERR_INVALID;
        } else {
            seen[which] = true;
            result = apply_param((enum query_param)which, value, out, err);
        }
        free(key);
        p += len;
        if (*p == '&')
            p++;
    }
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

int field_api_json_depth(const char *body, size_t len)
{
    int depth = 0;
    int deepest = 0;
    bool in_string = false;
    bool escaped = false;

    for (size_t i = 0; i < len; i++) {
        char c = body[i];
        if (in_string) {
            if (escaped)
                escaped = false;
            else if (c == '\\')
                escaped = true;
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            if (++depth > deepest)
                deepest = depth;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return deepest;
}

/* Whether a string (value or key) is over the limit; *where names the
 * key that holds it, when there is one. */
static bool has_long_string(json_t *v, const char *key, const char **where)
{
    const char *k;
    json_t *child;
    size_t i;

    switch (json_typeof(v)) {
    case JSON_STRING:
        if (json_string_length(v) > FIELD_API_MAX_STRING) {
            *where = key;
            return true;
        }
        return false;
    case JSON_OBJECT:
        json_object_foreach(v, k, child)
        {
            if (strlen(k) > FIELD_API_MAX_STRING) {
                *where = NULL;
                return true;
            }
            if (has_long_string(child, k, where))
                return true;
        }
        return false;
    case JSON_ARRAY:
        json_array_foreach(v, i, child)
        {
            if (has_long_string(child, key, where))
                return true;
        }
        return false;
    default:
        return false;
    }
}

/* The shortest text that reads back as the same double, so 0.1 stays
 * "0.1"; an exponent form is then refused by the canonical check rather
 * than silently rounded. */
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

static fs_result parse_fields(json_t *fields, struct field_api_edit *out,
                              struct field_api_error *err)
{
    const char *name;
    json_t *v;

    if (!json_is_object(fields)) {
        set_error(err, 400, "invalid_type", "fields",
                  "fields must be an object");
        return FS_ERR_INVALID;
    }
    if (json_object_size(fields) > FIELD_API_MAX_FIELDS) {
        set_error(err, 413, "too_large", "fields",
                  "more than %d fields in one request", FIELD_API_MAX_FIELDS);
        return FS_ERR_TOO_LARGE;
    }

    json_object_foreach(fields, name, v)
    {
        int f = deal_field_by_name(name);
        char *text = NULL;
        bool is_null = false;

        if (f < 0) {
            set_error(err, 400, "unknown_field", name, "unknown field");
            return FS_ERR_INVALID;
        }
        if (value_text((enum deal_field)f, v, &text, &is_null) != FS_OK) {
            set_error(err, 400, "invalid_type", name,
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
            set_error(err, 422, "invalid_value", name, "longer than %zu bytes",
                      deal_fields[f].max_len);
            return r;
        }
        if (r != FS_OK) {
            set_error(err, 422, "invalid_value", name, "not a valid %s value",
                      deal_fields[f].name);
            return r;
        }
        out->set[f] = true;
        out->values[f] = canonical;
        out->count++;
    }
    return FS_OK;
}

fs_result field_api_parse_edit(const char *body, size_t len,
                               struct field_api_edit *out,
                               struct field_api_error *err)
{
    json_t *root = NULL;
    json_error_t jerr;
    const char *key;
    const char *where = NULL;
    json_t *v;
    fs_result result = FS_ERR_INVALID;

    memset(out, 0, sizeof(*out));
    if (!body || len == 0) {
        set_error(err, 400, "invalid_json", NULL, "a JSON body is required");
        goto out;
    }
    if (field_api_json_depth(body, len) > FIELD_API_MAX_DEPTH) {
        set_error(err, 400, "too_deep", NULL,
                  "JSON nested deeper than %d levels", FIELD_API_MAX_DEPTH);
        goto out;
    }
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        set_error(err, 400, "invalid_json", NULL, "%s (line %d, column %d)",
                  jerr.text, jerr.line, jerr.column);
        goto out;
    }
    if (!json_is_object(root)) {
        set_error(err, 400, "invalid_json", NULL,
                  "the body must be a JSON object");
        goto out;
    }
    if (has_long_string(root, NULL, &where)) {
        set_error(err, 413, "too_large", where,
                  "a string is longer than %d bytes", FIELD_API_MAX_STRING);
        result = FS_ERR_TOO_LARGE;
        goto out;
    }

    json_object_foreach(root, key, v)
    {
        if (strcmp(key, "fields") == 0)
            continue;
        if (strcmp(key, "client_time") != 0) {
            set_error(err, 400, "unknown_key", key, "unknown key");
            goto out;
        }
        if (!json_is_integer(v) || json_integer_value(v) < 0) {
            set_error(err, 400, "invalid_type", key,
                      "client_time must be epoch milliseconds");
            goto out;
        }
        out->client_time = json_integer_value(v);
    }

    v = json_object_get(root, "fields");
    if (!v) {
        set_error(err, 400, "missing_key", "fields",
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

struct api_call {
    struct app *app;
    const struct http_request *req;
    struct http_response *resp;
    struct store *store;
    struct user user;
    bool authed;
};

/* The path with anything that could break a log line replaced. */
static void log_safe(const char *in, char *out, size_t size)
{
    size_t n = 0;

    for (; in && *in && n + 1 < size; in++) {
        unsigned char c = (unsigned char)*in;
        out[n++] = c > ' ' && c < 0x7f && c != '"' ? (char)c : '?';
    }
    out[n] = '\0';
}

void field_api_fail(const struct http_request *req, struct http_response *resp,
                    int64_t user_id, int status, const char *code,
                    const char *field, const char *message)
{
    char path[160];

    log_safe(req->path, path, sizeof(path));
    log_msg(status >= 500 ? LOG_ERROR : LOG_INFO,
            "api_error method=%s path=%s status=%d code=%s field=%s user=%lld",
            req->method, path, status, code, field ? field : "-",
            (long long)user_id);
    if (status == 401)
        http_response_add_header(resp, "WWW-Authenticate", "Bearer");
    if (status == 503)
        http_response_add_header(resp, "Retry-After", "1");
    http_response_error(resp, status, code, field, message);
}

static void fail(struct api_call *c, int status, const char *code,
                 const char *field, const char *message)
{
    field_api_fail(c->req, c->resp, c->authed ? c->user.id : 0, status, code,
                   field, message);
}

static void respond_error(struct api_call *c, const struct field_api_error *e)
{
    fail(c, e->status, e->code, e->field, e->message);
}

/* A store failure: busy means come back shortly, anything else is ours. */
static void fail_store(struct api_call *c, fs_result r)
{
    if (r == FS_ERR_BUSY) {
        fail(c, 503, "busy", NULL, "the database is busy; try again");
        return;
    }
    log_error("api_store_failed result=%s detail=\"%s\"", fs_result_name(r),
              store_last_error(c->store));
    fail(c, 500, "internal", NULL, "the store failed");
}

static void respond_json(struct api_call *c, int status, json_t *obj)
{
    http_response_set_body(c->resp, status, json_dumps(obj, JSON_COMPACT));
    json_decref(obj);
}

static bool authenticate(struct api_call *c)
{
    const char *h = http_request_header(c->req, "Authorization");

    if (!h || strncasecmp(h, "Bearer ", 7) != 0) {
        fail(c, 401, "unauthorized", NULL, "a bearer token is required");
        return false;
    }
    const char *token = h + 7;
    while (*token == ' ')
        token++;
    if (*token == '\0' || strlen(token) > TOKEN_MAX_LEN) {
        fail(c, 401, "unauthorized", NULL, "unknown or revoked token");
        return false;
    }

    fs_result r = store_user_by_token(c->store, token, &c->user);
    if (r == FS_ERR_AUTH || r == FS_ERR_NOT_FOUND) {
        fail(c, 401, "unauthorized", NULL, "unknown or revoked token");
        return false;
    }
    if (r != FS_OK) {
        fail_store(c, r);
        return false;
    }
    c->authed = true;
    return true;
}

static bool is_admin(const struct api_call *c)
{
    return c->user.role == USER_ROLE_ADMIN;
}

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
    json_t *obj = deal_json(r, have ? &sync : NULL);

    sync_state_clear(&sync);
    return obj;
}

bool field_api_authenticate(struct app *app, struct store *store,
                            const struct http_request *req,
                            struct http_response *resp, struct user *user)
{
    struct api_call c = {.app = app, .req = req, .resp = resp, .store = store};

    if (!authenticate(&c))
        return false;
    *user = c.user;
    return true;
}

/* GET /api/v1/deals */
static void handle_list(struct api_call *c)
{
    struct field_api_query q;
    struct field_api_error err = {0};
    struct record *records = NULL;
    size_t n = 0;

    if (field_api_parse_query(c->req->raw_url, &q, &err) != FS_OK) {
        respond_error(c, &err);
        field_api_error_clear(&err);
        return;
    }

    struct record_filter filter = {
        .org_id = c->user.org_id,
        .owner = q.owner,
        .stage = q.stage,
        .updated_since = q.updated_since,
        .include_deleted = q.include_deleted,
        .after_id = q.cursor,
        .limit = q.limit,
        .has_bbox = q.has_bbox,
    };
    memcpy(filter.bbox, q.bbox, sizeof(filter.bbox));
    fs_result r = store_records_list(c->store, &filter, &records, &n);
    if (r != FS_OK) {
        fail_store(c, r);
        goto out;
    }

    json_t *deals = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(deals, record_json(c, &records[i]));
    json_t *next = n > 0 && n == (size_t)q.limit
                       ? json_string(records[n - 1].id)
                       : json_null();
    respond_json(c, 200,
                 json_pack("{s:o, s:o}", "deals", deals, "next_cursor", next));

out:
    store_records_free(records, n);
    field_api_query_clear(&q);
}

/* Loads a deal of the caller's org; another org's id is just not found. */
static bool load_deal(struct api_call *c, const char *id, struct record *r)
{
    fs_result res = store_record_get(c->store, c->user.org_id, id, r);

    if (res == FS_ERR_NOT_FOUND) {
        fail(c, 404, "not_found", NULL, "no such deal");
        return false;
    }
    if (res != FS_OK) {
        fail_store(c, res);
        return false;
    }
    return true;
}

/* GET /api/v1/deals/{id} */
static void handle_get(struct api_call *c, const char *id)
{
    struct record r = {0};

    if (load_deal(c, id, &r))
        respond_json(c, 200, record_json(c, &r));
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

/* What a rep may not do with an edit: give the deal to someone else. */
static bool rep_owner_allowed(const struct api_call *c,
                              const struct field_api_edit *edit)
{
    if (!edit->set[DEAL_OWNER])
        return true;
    return c->user.crm_owner_id && edit->values[DEAL_OWNER] &&
           strcmp(edit->values[DEAL_OWNER], c->user.crm_owner_id) == 0;
}

/* Applies the edit's fields to r at server time now. */
static void apply_edit(struct record *r, const struct field_api_edit *edit,
                       int64_t now, enum edit_outcome *outcomes)
{
    for (int f = 0; f < DEAL_FIELD_COUNT; f++) {
        if (edit->set[f])
            outcomes[f] = merge_local_edit(&r->fields[f], edit->values[f], now,
                                           edit->client_time);
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

/* One attempt at the whole PATCH transaction. A client error fills err
 * and returns FS_ERR_INVALID; store failures come back as they are. */
static fs_result patch_once(struct api_call *c, const char *id,
                            const struct field_api_edit *edit,
                            enum edit_outcome *outcomes, struct record *r,
                            struct field_api_error *err)
{
    fs_result res = store_begin(c->store);
    if (res != FS_OK)
        return res;

    res = store_record_get(c->store, c->user.org_id, id, r);
    if (res == FS_ERR_NOT_FOUND) {
        set_error(err, 404, "not_found", NULL, "no such deal");
        res = FS_ERR_INVALID;
    } else if (res == FS_OK && r->deleted_at) {
        set_error(err, 409, "deleted", NULL, "the deal was deleted (%s)",
                  r->deleted_reason ? r->deleted_reason : "deleted");
        res = FS_ERR_INVALID;
    } else if (res == FS_OK && !is_admin(c) && !rep_owns(c, r)) {
        set_error(err, 403, "forbidden", NULL,
                  "reps may edit only the deals they own");
        res = FS_ERR_INVALID;
    } else if (res == FS_OK && !is_admin(c) && !rep_owner_allowed(c, edit)) {
        set_error(err, 403, "forbidden", "owner",
                  "reps may not give a deal to another owner");
        res = FS_ERR_INVALID;
    }
    if (res != FS_OK)
        goto fail;

    int64_t now = clock_now_ms();
    apply_edit(r, edit, now, outcomes);
    res = territory_save_deal(c->store, r, now, NULL);
    if (res == FS_OK)
        res = audit_superseded(c, r, edit, outcomes);
    if (res == FS_OK)
        res = store_commit(c->store);
    if (res == FS_OK)
        return FS_OK;

fail:
    store_rollback(c->store);
    return res;
}

/* Publishes the deal on the live stream and hands it to the pusher. */
static void announce(struct api_call *c, const char *type, json_t *deal)
{
    char *text = json_dumps(deal, JSON_COMPACT);

    live_stream_publish(app_live_stream(c->app), c->user.org_id, type, text);
    free(text);
    app_wake_pusher(c->app);
}

/* PATCH /api/v1/deals/{id} */
static void handle_patch(struct api_call *c, const char *id)
{
    struct field_api_edit edit;
    struct field_api_error err = {0};
    enum edit_outcome outcomes[DEAL_FIELD_COUNT] = {EDIT_UNCHANGED};
    struct record r = {0};
    fs_result res = FS_ERR_BUSY;

    if (field_api_parse_edit(c->req->body, c->req->body_len, &edit, &err) !=
        FS_OK) {
        respond_error(c, &err);
        goto out;
    }
    if (edit.count == 0) {
        fail(c, 400, "missing_key", "fields", "no field to change");
        goto out;
    }

    for (int attempt = 0; attempt < TXN_ATTEMPTS && res == FS_ERR_BUSY;
         attempt++) {
        record_clear(&r);
        memset(&r, 0, sizeof(r));
        if (attempt > 0)
            clock_sleep_ms(10 * attempt);
        res = patch_once(c, id, &edit, outcomes, &r, &err);
    }
    if (res == FS_ERR_INVALID && err.status != 0) {
        respond_error(c, &err);
        goto out;
    }
    if (res != FS_OK) {
        fail_store(c, res);
        goto out;
    }

    bool changed = false;
    json_t *edits = json_object();
    for (int f = 0; f < DEAL_FIELD_COUNT; f++) {
        if (!edit.set[f])
            continue;
        changed = changed || outcomes[f] == EDIT_APPLIED;
        json_object_set_new(edits, deal_fields[f].name,
                            json_string(edit_outcome_name(outcomes[f])));
    }
    json_t *deal = record_json(c, &r);
    if (changed)
        announce(c, "deal.updated", deal);
    respond_json(c, 200, json_pack("{s:o, s:o}", "deal", deal, "edits", edits));

out:
    record_clear(&r);
    field_api_edit_clear(&edit);
    field_api_error_clear(&err);
}

/* One attempt at creating the record. */
static fs_result create_once(struct api_call *c,
                             const struct field_api_edit *edit,
                             struct record *r, struct field_api_error *err)
{
    struct connection conn = {0};
    enum edit_outcome outcomes[DEAL_FIELD_COUNT];

    fs_result res = store_begin(c->store);
    if (res != FS_OK)
        return res;

    res = store_connection_for_org(c->store, c->user.org_id, &conn);
    if (res == FS_ERR_NOT_FOUND) {
        set_error(err, 409, "no_connection", NULL, "org has no CRM connection");
        res = FS_ERR_INVALID;
        goto fail;
    }
    if (res != FS_OK)
        goto fail;

    r->org_id = c->user.org_id;
    r->connection_id = conn.id;
    int64_t now = clock_now_ms();
    apply_edit(r, edit, now, outcomes);
    res = territory_save_deal(c->store, r, now, NULL);
    if (res == FS_OK)
        res = store_commit(c->store);
    if (res == FS_OK)
        goto out;

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
    struct field_api_error err = {0};
    struct record r = {0};
    fs_result res = FS_ERR_BUSY;

    if (field_api_parse_edit(c->req->body, c->req->body_len, &edit, &err) !=
        FS_OK) {
        respond_error(c, &err);
        goto out;
    }
    if (!edit.values[DEAL_NAME]) {
        fail(c, 422, "invalid_value", "name", "a deal needs a name");
        goto out;
    }
    if (!is_admin(c)) {
        if (!c->user.crm_owner_id) {
            fail(c, 403, "forbidden", "owner",
                 "your user has no CRM owner id; ask an admin");
            goto out;
        }
        if (!rep_owner_allowed(c, &edit)) {
            fail(c, 403, "forbidden", "owner",
                 "reps may not create deals for another owner");
            goto out;
        }
        if (!edit.set[DEAL_OWNER]) {
            edit.set[DEAL_OWNER] = true;
            edit.values[DEAL_OWNER] = xstrdup(c->user.crm_owner_id);
            edit.count++;
        }
    }

    for (int attempt = 0; attempt < TXN_ATTEMPTS && res == FS_ERR_BUSY;
         attempt++) {
        record_clear(&r);
        memset(&r, 0, sizeof(r));
        if (attempt > 0)
            clock_sleep_ms(10 * attempt);
        res = create_once(c, &edit, &r, &err);
    }
    if (res == FS_ERR_INVALID && err.status != 0) {
        respond_error(c, &err);
        goto out;
    }
    if (res != FS_OK) {
        fail_store(c, res);
        goto out;
    }

    json_t *deal = record_json(c, &r);
    announce(c, "deal.created", deal);
    char *location = xasprintf("/api/v1/deals/%s", r.id);
    http_response_add_header(c->resp, "Location", location);
    free(location);
    respond_json(c, 201, deal);

out:
    record_clear(&r);
    field_api_edit_clear(&edit);
    field_api_error_clear(&err);
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

/* Whether a rep sees the entry: only deals they own. */
static fs_result rep_sees(struct api_call *c, const struct sync_status_entry *e,
                          bool *out)
{
    struct record r = {0};
    fs_result res =
        store_record_get(c->store, c->user.org_id, e->record_id, &r);

    *out = res == FS_OK && rep_owns(c, &r);
    record_clear(&r);
    return res == FS_ERR_NOT_FOUND ? FS_OK : res;
}

/* GET /api/v1/sync/status */
static void handle_sync_status(struct api_call *c)
{
    struct sync_status_entry *entries = NULL;
    size_t n = 0;
    int64_t pending = 0;
    int64_t failed = 0;

    fs_result res =
        store_sync_status(c->store, c->user.org_id, STATUS_LIMIT, &entries, &n);
    if (res != FS_OK) {
        fail_store(c, res);
        return;
    }

    json_t *list = json_array();
    for (size_t i = 0; i < n && res == FS_OK; i++) {
        bool visible = true;
        if (!is_admin(c))
            res = rep_sees(c, &entries[i], &visible);
        if (res != FS_OK || !visible)
            continue;
        if (entries[i].failed)
            failed++;
        else
            pending++;
        json_array_append_new(list, status_entry_json(&entries[i]));
    }
    if (res != FS_OK) {
        json_decref(list);
        fail_store(c, res);
    } else {
        respond_json(c, 200,
                     json_pack("{s:I, s:I, s:o}", "pending",
                               (json_int_t)pending, "failed",
                               (json_int_t)failed, "records", list));
    }
    store_sync_status_free(entries, n);
}

/* POST /api/v1/sync/retry: puts the org's failed records back in line. */
static void handle_sync_retry(struct api_call *c)
{
    int64_t count = 0;
    fs_result res = store_sync_retry_failed(c->store, c->user.org_id, &count);

    if (res != FS_OK) {
        fail_store(c, res);
        return;
    }
    log_info("api_sync_retry org=%lld user=%lld requeued=%lld",
             (long long)c->user.org_id, (long long)c->user.id,
             (long long)count);
    app_wake_pusher(c->app);
    respond_json(c, 200, json_pack("{s:I}", "requeued", (json_int_t)count));
}

/* GET /api/v1/me */
static void handle_me(struct api_call *c)
{
    char *org_name = NULL;
    fs_result res = store_org_name(c->store, c->user.org_id, &org_name);

    if (res != FS_OK) {
        fail_store(c, res);
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
    respond_json(c, 200, obj);
}

/* ---- routing ---- */

enum route {
    ROUTE_NONE,
    ROUTE_DEALS,
    ROUTE_DEAL,
    ROUTE_SYNC_STATUS,
    ROUTE_SYNC_RETRY,
    ROUTE_EVENTS,
    ROUTE_ME,
};

struct route_def {
    const char *path;
    enum route route;
    const char *methods; /* for the Allow header */
};

static const struct route_def routes[] = {
    {"/api/v1/deals", ROUTE_DEALS, "GET, POST"},
    {"/api/v1/sync/status", ROUTE_SYNC_STATUS, "GET"},
    {"/api/v1/sync/retry", ROUTE_SYNC_RETRY, "POST"},
    {"/api/v1/events", ROUTE_EVENTS, "GET"},
    {"/api/v1/me", ROUTE_ME, "GET"},
};

static const char deal_prefix[] = "/api/v1/deals/";

/* The route for path; a deal's id is left in *id. */
static const struct route_def *match_route(const char *path, const char **id)
{
    static const struct route_def deal = {NULL, ROUTE_DEAL, "GET, PATCH"};
    size_t prefix_len = sizeof(deal_prefix) - 1;

    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (strcmp(path, routes[i].path) == 0)
            return &routes[i];
    }
    if (strncmp(path, deal_prefix, prefix_len) == 0) {
        const char *rest = path + prefix_len;
        size_t len = strlen(rest);
        if (len > 0 && len <= DEAL_ID_MAX_LEN && !strchr(rest, '/')) {
            *id = rest;
            return &deal;
        }
    }
    return NULL;
}

static bool method_allowed(const struct route_def *rd, const char *method)
{
    size_t len = strlen(method);
    const char *p = rd->methods;

    while ((p = strstr(p, method)) != NULL) {
        bool starts = p == rd->methods || p[-1] == ' ';
        bool ends = p[len] == '\0' || p[len] == ',';
        if (starts && ends)
            return true;
        p += len;
    }
    return false;
}

static void dispatch(struct api_call *c, enum route route, const char *id)
{
    bool get = strcmp(c->req->method, "GET") == 0;

    switch (route) {
    case ROUTE_DEALS:
        if (get)
            handle_list(c);
        else
            handle_create(c);
        break;
    case ROUTE_DEAL:
        if (get)
            handle_get(c, id);
        else
            handle_patch(c, id);
        break;
    case ROUTE_SYNC_STATUS:
        handle_sync_status(c);
        break;
    case ROUTE_SYNC_RETRY:
        handle_sync_retry(c);
        break;
    case ROUTE_ME:
        handle_me(c);
        break;
    case ROUTE_EVENTS:
    case ROUTE_NONE:
        break;
    }
}

void field_api_handle(struct app *app, const struct http_request *req,
                      struct http_response *resp)
{
    struct api_call c = {.app = app, .req = req, .resp = resp};
    const char *id = NULL;
    const struct route_def *rd = match_route(req->path, &id);

    if (!rd) {
        fail(&c, 404, "not_found", NULL, "no such endpoint");
        return;
    }
    if (!method_allowed(rd, req->method)) {
        http_response_add_header(resp, "Allow", rd->methods);
        fail(&c, 405, "method_not_allowed", NULL,
             "method not allowed on this endpoint");
        return;
    }

    c.store = app_store_acquire(app);
    if (!c.store) {
        fail(&c, 503, "unavailable", NULL, "the database is unavailable");
        return;
    }
    if (authenticate(&c)) {
        if (rd->route == ROUTE_EVENTS) {
            /* The stream outlives this call: give the store back first. */
            app_store_release(app, c.store);
            c.store = NULL;
            live_stream_subscribe(app_live_stream(app), c.user.org_id, resp);
        } else {
            dispatch(&c, rd->route, id);
        }
    }
    if (c.store)
        app_store_release(app, c.store);
    user_clear(&c.user);
}
