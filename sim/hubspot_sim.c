/* The simulated HubSpot CRM v3 API (deals, owners, pipelines) over the
 * neutral simulator core: routing, auth, rate limits, API faults, and the
 * HubSpot JSON shapes of objects, batches, searches and errors; and the
 * `crmsim hubspot` command that starts it. */
#include "hubspot_sim.h"

#include "sim_control.h"
#include "sim_limits.h"
#include "sim_oauth.h"
#include "sim_serve.h"
#include "sim_util.h"

#include "base/alloc.h"
#include "base/clock.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define BATCH_MAX 100
#define BATCH_HISTORY_MAX 50
#define LIST_MAX 100
#define SEARCH_LIMIT_MAX 200
#define SEARCH_RESULTS_MAX 10000
#define SEARCH_GROUPS_MAX 5
#define SEARCH_FILTERS_PER_GROUP_MAX 6
#define SEARCH_FILTERS_MAX 18
#define OWNERS_MAX 500

/* Ids as HubSpot shows them in this portal. */
#define DEAL_ID_BASE 20000000001ULL
#define OWNER_ID_BASE 100001
#define USER_ID_BASE 5100001

enum call_kind {
    KIND_LIST,
    KIND_GET,
    KIND_BATCH_READ,
    KIND_CREATE,
    KIND_BATCH_CREATE,
    KIND_UPDATE,
    KIND_BATCH_UPDATE,
    KIND_BATCH_ARCHIVE,
    KIND_SEARCH,
    KIND_ARCHIVE,
    KIND_MERGE,
    KIND_OWNERS,
    KIND_PIPELINES,
    KIND_OAUTH_TOKEN,
    KIND_COUNT,
};

static const struct sim_call_kind call_kinds[KIND_COUNT] = {
    [KIND_LIST] = {"list", SIM_CALL_READ},
    [KIND_GET] = {"get", SIM_CALL_READ},
    [KIND_BATCH_READ] = {"batch_read", SIM_CALL_READ},
    [KIND_CREATE] = {"create", SIM_CALL_WRITE},
    [KIND_BATCH_CREATE] = {"batch_create", SIM_CALL_WRITE},
    [KIND_UPDATE] = {"update", SIM_CALL_WRITE},
    [KIND_BATCH_UPDATE] = {"batch_update", SIM_CALL_WRITE},
    [KIND_BATCH_ARCHIVE] = {"batch_archive", SIM_CALL_WRITE},
    [KIND_SEARCH] = {"search", SIM_CALL_SEARCH},
    [KIND_ARCHIVE] = {"archive", SIM_CALL_WRITE},
    [KIND_MERGE] = {"merge", SIM_CALL_WRITE},
    [KIND_OWNERS] = {"owners", SIM_CALL_META},
    [KIND_PIPELINES] = {"pipelines", SIM_CALL_META},
    [KIND_OAUTH_TOKEN] = {"oauth_token", SIM_CALL_META},
};

/* The one pipeline, "default"; the stages of the seed CSV. */
static const struct sim_stage stages[] = {
    {"prospecting", "Prospecting", "Prospecting", 0.1, false},
    {"engaging", "Engaging", "Engaging", 0.4, false},
    {"closedwon", "Won", "Won", 1.0, true},
    {"closedlost", "Lost", "Lost", 0.0, true},
};

static const struct sim_pipeline pipeline = {
    "default", "Sales Pipeline", stages, sizeof(stages) / sizeof(stages[0])};

struct hubspot_sim_config {
    const char *token; /* expected bearer token */
    const char *client_secret;
    int64_t app_id;
    int64_t portal_id;
    int rate_10s;     /* calls per rolling 10 s */
    int rate_daily;   /* calls per UTC day */
    int search_per_s; /* search calls per rolling second */
    /* OAuth (off without oauth_client_id): the install's refresh token,
     * the lifetime of access tokens, and whether each refresh mints a
     * new refresh token (HubSpot keeps it; Pipedrive-style rotation is a
     * test knob). */
    const char *oauth_client_id;
    const char *refresh_token;
    int64_t token_ttl_s;
    bool rotate_refresh;
};

struct hubspot_sim {
    struct hubspot_sim_config config;
    char app_id[32]; /* the integration's token id: sourceId of API changes */
    struct hubspot_webhooks hooks;
    struct sim_store *store;
    struct sim_control *control;

    struct sim_oauth *oauth; /* NULL without oauth_client_id */

    pthread_mutex_t mu; /* guards the limits */
    struct sim_window ten_secondly;
    struct sim_window secondly_search;
    struct sim_daily daily;
};

/* One request on its way through a handler. */
struct call {
    struct hubspot_sim *sim;
    const struct http_request *req;
    struct http_response *resp;
    struct sim_path path;
    const char *id;     /* object id from the path, if any */
    const char *sub_id; /* second id (stage), if any */
    json_t *body;       /* parsed JSON body for POST/PATCH */
};

typedef void (*handler_fn)(struct call *c);

/* Why a write was refused, shaped like HubSpot's error body. */
struct hs_error {
    int status;           /* 400, 404, 409 */
    const char *category; /* VALIDATION_ERROR, OBJECT_NOT_FOUND, CONFLICT */
    char *message;
    json_t *errors; /* array of {message, code, context}, or NULL */
};

/* ---- small helpers ---------------------------------------------------- */

static void hs_error_clear(struct hs_error *err)
{
    free(err->message);
    json_decref(err->errors);
    memset(err, 0, sizeof(*err));
}

static void hs_error_set(struct hs_error *err, int status, const char *category,
                         const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void hs_error_set(struct hs_error *err, int status, const char *category,
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

static json_t *iso_json(int64_t ms)
{
    char buf[32];
    clock_format_iso(ms, buf);
    return json_string(buf);
}

static void reply(struct http_response *resp, int status, json_t *obj)
{
    sim_reply(resp, status, obj);
}

static json_t *error_body(const char *category, const char *message)
{
    char *cid = sim_uuid_new();
    json_t *obj =
        json_pack("{s:s, s:s, s:s, s:s}", "status", "error", "message", message,
                  "correlationId", cid, "category", category);
    free(cid);
    return obj;
}

static void reply_error(struct http_response *resp, int status,
                        const char *category, const char *message)
{
    reply(resp, status, error_body(category, message));
}

static void reply_hs_error(struct http_response *resp,
                           const struct hs_error *err)
{
    json_t *obj = error_body(err->category ? err->category : "ERROR",
                             err->message ? err->message : "error");
    if (err->errors)
        json_object_set(obj, "errors", err->errors);
    reply(resp, err->status ? err->status : 400, obj);
}

/* Accepts "123" or 123 as an id; returns text in buf or NULL. */
static const char *id_text(const json_t *v, char buf[32])
{
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_integer(v)) {
        snprintf(buf, 32, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return buf;
    }
    return NULL;
}

static bool parse_long(const char *s, long lo, long hi, long *out)
{
    char *end = NULL;
    if (!s || !*s)
        return false;
    long v = strtol(s, &end, 10);
    if (*end != '\0' || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

/* "a,b,c" as a JSON array of strings; NULL for NULL or empty text. */
static json_t *split_list(const char *s)
{
    if (!s || !*s)
        return NULL;
    json_t *arr = json_array();
    const char *p = s;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len > 0)
            json_array_append_new(arr, json_stringn(p, len));
        p += len + (comma ? 1 : 0);
    }
    return arr;
}

static bool query_true(const struct http_request *req, const char *name)
{
    const char *v = http_request_query(req, name);
    return v && strcmp(v, "true") == 0;
}

/* ---- rate limiting ---------------------------------------------------- */

static void add_rate_headers(struct hubspot_sim *sim,
                             struct http_response *resp, int64_t now)
{
    char v[32];

    snprintf(v, sizeof(v), "%d", sim->ten_secondly.cap);
    http_response_add_header(resp, "X-HubSpot-RateLimit-Max", v);
    snprintf(v, sizeof(v), "%d", sim_window_remaining(&sim->ten_secondly, now));
    http_response_add_header(resp, "X-HubSpot-RateLimit-Remaining", v);
    http_response_add_header(resp, "X-HubSpot-RateLimit-Interval-Milliseconds",
                             "10000");
    snprintf(v, sizeof(v), "%d", sim->config.rate_daily);
    http_response_add_header(resp, "X-HubSpot-RateLimit-Daily", v);
    snprintf(v, sizeof(v), "%" PRId64, sim_daily_remaining(&sim->daily));
    http_response_add_header(resp, "X-HubSpot-RateLimit-Daily-Remaining", v);
}

static void reply_rate_limited(struct hubspot_sim *sim,
                               struct http_response *resp, const char *policy)
{
    char *cid = sim_uuid_new();
    char *group = NULL;
    const char *message = "You have reached your ten_secondly_rolling limit.";

    if (strcmp(policy, "DAILY") == 0) {
        message = "You have reached your daily limit.";
        group = xasprintf("publicapi:private_app-api-calls-daily:%" PRId64
                          ":%" PRId64,
                          sim->config.app_id, sim->config.portal_id);
    } else if (strcmp(policy, "SECONDLY") == 0) {
        message = "You have reached your secondly limit.";
        group = xasprintf("publicapi:search-secondly:%" PRId64,
                          sim->config.portal_id);
    } else {
        group = xasprintf("publicapi:private_app-api-calls-ten-secondly:"
                          "%" PRId64 ":%" PRId64,
                          sim->config.app_id, sim->config.portal_id);
    }
    json_t *obj = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "status", "error",
                            "message", message, "errorType", "RATE_LIMIT",
                            "correlationId", cid, "policyName", policy,
                            "groupName", group);
    free(cid);
    free(group);
    reply(resp, 429, obj);
}

/* The policy that refuses the call, or NULL when it is admitted (and
 * counted against the budgets). Called with sim->mu held. Search has its
 * own per-second limit and is exempt from the others. */
static const char *limit_policy(struct hubspot_sim *sim, enum call_kind kind,
                                int64_t now)
{
    if (kind == KIND_SEARCH)
        return sim_window_take(&sim->secondly_search, now) ? NULL : "SECONDLY";
    if (!sim_daily_allows(&sim->daily, now, 1))
        return "DAILY";
    if (!sim_window_take(&sim->ten_secondly, now))
        return "TEN_SECONDLY_ROLLING";
    sim_daily_count(&sim->daily, 1);
    return NULL;
}

/* Takes the call from its budget; on refusal answers 429 and returns
 * false. */
static bool admit(struct hubspot_sim *sim, enum call_kind kind,
                  struct http_response *resp)
{
    int64_t now = clock_now_ms();

    pthread_mutex_lock(&sim->mu);
    const char *policy = limit_policy(sim, kind, now);
    if (policy)
        reply_rate_limited(sim, resp, policy);
    if (kind != KIND_SEARCH)
        add_rate_headers(sim, resp, now);
    pthread_mutex_unlock(&sim->mu);
    sim_control_count_call(sim->control, kind, policy != NULL);
    return policy == NULL;
}

/* ---- object JSON ------------------------------------------------------ */

static const char *const default_props[] = {
    "amount",    "closedate",           "createdate",   "dealname",
    "dealstage", "hs_lastmodifieddate", "hs_object_id", "pipeline",
};

static const char *const always_props[] = {"createdate", "hs_lastmodifieddate",
                                           "hs_object_id"};

struct select {
    const json_t *props;   /* array of names; NULL = the default set */
    const json_t *history; /* array of names, or NULL */
    bool all;              /* every property (write answers) */
};

/* A property's value as REST shows it (times ISO), or NULL when empty or
 * not a property; buf is scratch space. */
static const char *rest_value(const struct sim_deal *deal, const char *name,
                              char buf[32])
{
    const struct hubspot_prop *p = hubspot_prop_named(name);

    if (!p)
        return NULL;
    if (p->kind != HUBSPOT_DERIVED)
        return hubspot_shown(p, sim_deal_value(deal, p->field), false, buf);
    if (strcmp(name, "hs_object_id") == 0)
        return deal->id;
    clock_format_iso(strcmp(name, "createdate") == 0 ? deal->created_ms
                                                     : deal->modified_ms,
                     buf);
    return buf;
}

/* The value as a sortable number (times and dates epoch ms, amounts,
 * ids); false when empty or not numeric. */
static bool deal_number(const struct sim_deal *deal, const char *name,
                        double *out)
{
    const struct hubspot_prop *p = hubspot_prop_named(name);
    const char *v = NULL;
    char *end = NULL;
    int64_t ms;

    if (!p)
        return false;
    if (strcmp(name, "createdate") == 0 ||
        strcmp(name, "hs_lastmodifieddate") == 0) {
        *out = (double)(name[0] == 'c' ? deal->created_ms : deal->modified_ms);
        return true;
    }
    v = p->kind == HUBSPOT_DERIVED ? deal->id : sim_deal_value(deal, p->field);
    if (!v)
        return false;
    if (p->kind == HUBSPOT_DATE || p->kind == HUBSPOT_DATETIME) {
        if (clock_parse_iso(v, &ms) != 0)
            return false;
        *out = (double)ms;
        return true;
    }
    *out = strtod(v, &end);
    return end != v && *end == '\0';
}

static bool prop_known(const char *name)
{
    return hubspot_prop_named(name) != NULL;
}

static void put_prop(json_t *obj, const struct sim_deal *deal, const char *name)
{
    char buf[32];
    const char *v = rest_value(deal, name, buf);
    json_object_set_new(obj, name, v ? json_string(v) : json_null());
}

static json_t *history_json(const struct sim_deal *deal,
                            const struct hubspot_prop *p)
{
    json_t *arr = json_array();
    char buf[32], src[80];

    for (const struct sim_value *v = deal->fields[p->field]; v; v = v->prev) {
        const char *value = hubspot_shown(p, v->value, false, buf);
        json_t *entry = json_object();
        json_object_set_new(entry, "value", json_string(value ? value : ""));
        json_object_set_new(entry, "timestamp", iso_json(v->time_ms));
        json_object_set_new(entry, "sourceType",
                            json_string(hubspot_source_type(v->actor)));
        json_object_set_new(
            entry, "sourceId",
            json_string(hubspot_source_id(v->actor, v->actor_id, src)));
        json_array_append_new(arr, entry);
    }
    return arr;
}

static json_t *properties_json(const struct sim_deal *deal,
                               const struct select *sel)
{
    json_t *props = json_object();
    size_t i;
    json_t *name;

    if (sel->all) {
        for (i = 0; i < hubspot_prop_count; i++)
            put_prop(props, deal, hubspot_props[i].name);
        return props;
    }
    if (!sel->props) {
        for (i = 0; i < sizeof(default_props) / sizeof(default_props[0]); i++)
            put_prop(props, deal, default_props[i]);
        return props;
    }
    json_array_foreach(sel->props, i, name)
    {
        const char *n = json_string_value(name);
        if (n && prop_known(n))
            put_prop(props, deal, n);
    }
    for (i = 0; i < sizeof(always_props) / sizeof(always_props[0]); i++)
        put_prop(props, deal, always_props[i]);
    return props;
}

static json_t *deal_json(const struct sim_deal *deal, const struct select *sel)
{
    json_t *obj = json_object();

    json_object_set_new(obj, "id", json_string(deal->id));
    json_object_set_new(obj, "properties", properties_json(deal, sel));
    if (sel->history && json_array_size(sel->history) > 0) {
        json_t *hist = json_object();
        size_t i;
        json_t *name;
        json_array_foreach(sel->history, i, name)
        {
            const struct hubspot_prop *p =
                hubspot_prop_named(json_string_value(name));
            if (p && p->kind != HUBSPOT_DERIVED)
                json_object_set_new(hist, p->name, history_json(deal, p));
        }
        json_object_set_new(obj, "propertiesWithHistory", hist);
    }
    json_object_set_new(obj, "createdAt", iso_json(deal->created_ms));
    json_object_set_new(obj, "updatedAt", iso_json(deal->modified_ms));
    json_object_set_new(obj, "archived", json_boolean(deal->archived));
    if (deal->archived)
        json_object_set_new(obj, "archivedAt", iso_json(deal->archived_ms));
    return obj;
}

static json_t *batch_body(json_t *results, json_t *errors, int64_t started)
{
    json_t *obj = json_object();
    json_object_set_new(obj, "status", json_string("COMPLETE"));
    json_object_set_new(obj, "results", results);
    if (errors && json_array_size(errors) > 0) {
        json_object_set_new(obj, "numErrors",
                            json_integer((json_int_t)json_array_size(errors)));
        json_object_set(obj, "errors", errors);
    }
    json_decref(errors);
    json_object_set_new(obj, "startedAt", iso_json(started));
    json_object_set_new(obj, "completedAt", iso_json(clock_now_ms()));
    return obj;
}

static json_t *batch_error(const char *category, const char *message,
                           const char *context_key, const char *context_value)
{
    json_t *err = json_pack("{s:s, s:s, s:s}", "status", "error", "category",
                            category, "message", message);
    if (context_key)
        json_object_set_new(err, "context",
                            json_pack("{s:[s]}", context_key, context_value));
    return err;
}

/* ---- deal REST handlers ----------------------------------------------- */

/* Changes through the API are the integration's: sourceId is the app. */
static struct sim_actor api_actor(const struct hubspot_sim *sim)
{
    return (struct sim_actor){SIM_ACTOR_TOKEN, sim->app_id};
}

/* The deal an id (or, with idProperty fieldsync_id, our record id)
 * stands for: merged-away ids lead to the survivor. */
static struct sim_deal *find_deal(struct hubspot_sim *sim, const char *id,
                                  const char *id_property)
{
    if (id_property && strcmp(id_property, "fieldsync_id") == 0)
        return *id ? sim_store_find_our_id(sim->store, id) : NULL;
    if (id_property && *id_property && strcmp(id_property, "hs_object_id") != 0)
        return NULL;
    return sim_store_resolve(sim->store, id);
}

static void add_value_error(struct hs_error *err, const char *prop,
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

/* Checks a JSON object of property values into canonical writes. Unknown
 * or read-only properties and bad values fail with a VALIDATION_ERROR
 * naming each. */
static fs_result parse_write(struct hubspot_sim *sim, json_t *props,
                             struct sim_write *w, struct hs_error *err)
{
    const char *name;
    json_t *v;

    memset(w, 0, sizeof(*w));
    if (!json_is_object(props)) {
        hs_error_set(err, 400, "VALIDATION_ERROR",
                     "Invalid input JSON: \"properties\" must be an object");
        return FS_ERR_INVALID;
    }
    json_object_foreach(props, name, v)
    {
        const struct hubspot_prop *p = hubspot_prop_named(name);
        if (!p || p->kind == HUBSPOT_DERIVED) {
            char *msg = xasprintf("Property \"%s\" %s", name,
                                  p ? "is read-only" : "does not exist");
            add_value_error(err, name,
                            p ? "READ_ONLY_VALUE" : "PROPERTY_DOESNT_EXIST",
                            msg);
            free(msg);
            continue;
        }
        char *text = value_text(v);
        const char *code =
            text ? hubspot_take(sim->store, p, text, w) : "INVALID_VALUE";
        if (code) {
            char *msg = xasprintf("%s was not a valid value for %s",
                                  text ? text : "(object)", name);
            add_value_error(err, name, code, msg);
            free(msg);
        }
        free(text);
    }
    if (err->errors) {
        hs_error_set(err, 400, "VALIDATION_ERROR",
                     "Property values were not valid");
        sim_write_clear(w);
        return FS_ERR_INVALID;
    }
    return FS_OK;
}

static void conflict_error(struct hs_error *err, const struct sim_deal *other)
{
    hs_error_set(err, 409, "CONFLICT",
                 "A deal already has that value for property fieldsync_id. "
                 "Existing ID: %s",
                 other->id);
}

static bool need_body(struct call *c)
{
    if (json_is_object(c->body))
        return true;
    reply_error(c->resp, 400, "VALIDATION_ERROR",
                "Invalid input JSON: the request body must be a JSON object");
    return false;
}

static void h_list(struct call *c)
{
    struct hubspot_sim *sim = c->sim;
    long limit = 10;
    long after = 0;
    bool archived = query_true(c->req, "archived");
    const char *limit_text = http_request_query(c->req, "limit");
    const char *after_text = http_request_query(c->req, "after");
    json_t *props = split_list(http_request_query(c->req, "properties"));
    json_t *history =
        split_list(http_request_query(c->req, "propertiesWithHistory"));
    struct select sel = {props, history, false};

    if (limit_text && !parse_long(limit_text, 1, LIST_MAX, &limit)) {
        reply_error(c->resp, 400, "VALIDATION_ERROR",
                    "limit must be between 1 and 100");
        goto out;
    }
    if (after_text && !parse_long(after_text, 0, 1L << 40, &after)) {
        reply_error(c->resp, 400, "VALIDATION_ERROR",
                    "after is not a valid paging cursor");
        goto out;
    }

    json_t *results = json_array();
    json_t *obj = json_object();
    sim_store_lock(sim->store);
    size_t n = sim_store_deal_count(sim->store);
    size_t i = (size_t)after;
    for (; i < n; i++) {
        struct sim_deal *d = sim_store_deal_at(sim->store, i);
        bool wanted = archived ? d->archived && !d->merged_into : !d->archived;
        if (!wanted)
            continue;
        if (json_array_size(results) == (size_t)limit)
            break;
        json_array_append_new(results, deal_json(d, &sel));
    }
    sim_store_unlock(sim->store);
    json_object_set_new(obj, "results", results);
    if (i < n) {
        char next[32];
        snprintf(next, sizeof(next), "%zu", i);
        json_object_set_new(obj, "paging",
                            json_pack("{s:{s:s}}", "next", "after", next));
    }
    reply(c->resp, 200, obj);
out:
    json_decref(props);
    json_decref(history);
}

static void h_get(struct call *c)
{
    struct hubspot_sim *sim = c->sim;
    json_t *props = split_list(http_request_query(c->req, "properties"));
    json_t *history =
        split_list(http_request_query(c->req, "propertiesWithHistory"));
    struct select sel = {props, history, false};
    const char *id_prop = http_request_query(c->req, "idProperty");
    bool archived = query_true(c->req, "archived");

    sim_store_lock(sim->store);
    struct sim_deal *d = find_deal(sim, c->id, id_prop);
    json_t *obj = d && (!d->archived || archived) ? deal_json(d, &sel) : NULL;
    sim_store_unlock(sim->store);
    if (obj)
        reply(c->resp, 200, obj);
    else
        reply_error(c->resp, 404, "OBJECT_NOT_FOUND", "resource not found");
    json_decref(props);
    json_decref(history);
}

static void h_batch_read(struct call *c)
{
    struct hubspot_sim *sim = c->sim;
    int64_t started = clock_now_ms();

    if (!need_body(c))
        return;
    json_t *inputs = json_object_get(c->body, "inputs");
    json_t *props = json_object_get(c->body, "properties");
    json_t *history = json_object_get(c->body, "propertiesWithHistory");
    const char *id_prop =
        json_string_value(json_object_get(c->body, "idProperty"));
    size_t max = json_array_size(history) > 0 ? BATCH_HISTORY_MAX : BATCH_MAX;
    struct select sel = {json_is_array(props) && json_array_size(props) ? props
                                                                        : NULL,
                         json_is_array(history) ? history : NULL, false};

    if (!json_is_array(inputs) || json_array_size(inputs) > max) {
        char *msg =
            xasprintf("inputs must be an array of at most %zu ids", max);
        reply_error(c->resp, 400, "VALIDATION_ERROR", msg);
        free(msg);
        return;
    }

    json_t *results = json_array();
    json_t *missing = json_array();
    size_t i;
    json_t *input;
    sim_store_lock(sim->store);
    json_array_foreach(inputs, i, input)
    {
        char buf[32];
        const char *id = id_text(json_object_get(input, "id"), buf);
        struct sim_deal *d = id ? find_deal(sim, id, id_prop) : NULL;
        if (d && !d->archived)
            json_array_append_new(results, deal_json(d, &sel));
        else
            json_array_append_new(missing, json_string(id ? id : ""));
    }
    sim_store_unlock(sim->store);

    json_t *errors = NULL;
    if (json_array_size(missing) > 0) {
        json_t *err = json_pack("{s:s, s:s, s:s, s:{s:O}}", "status", "error",
                                "category", "OBJECT_NOT_FOUND", "message",
                                "Could not get some DEAL objects", "context",
                                "ids", missing);
        errors = json_pack("[o]", err);
    }
    json_decref(missing);
    int status = errors ? 207 : 200;
    reply(c->resp, status, batch_body(results, errors, started));
}

/* Creates one deal from {"properties":{...}}; returns the object or NULL
 * with err filled. Called with the store locked. */
static json_t *create_one(struct hubspot_sim *sim, json_t *props,
                          struct hs_error *err)
{
    struct sim_write w;
    struct sim_actor actor = api_actor(sim);
    struct sim_deal *deal = NULL, *clash = NULL;
    struct select all = {NULL, NULL, true};

    if (parse_write(sim, props, &w, err) != FS_OK)
        return NULL;
    fs_result r = sim_store_create(sim->store, &w, &actor, &deal, &clash);
    sim_write_clear(&w);
    if (r != FS_OK)
        conflict_error(err, clash);
    return r == FS_OK ? deal_json(deal, &all) : NULL;
}

static void h_create(struct call *c)
{
    struct hs_error err = {0};

    if (!need_body(c))
        return;
    sim_store_lock(c->sim->store);
    json_t *obj =
        create_one(c->sim, json_object_get(c->body, "properties"), &err);
    sim_store_unlock(c->sim->store);
    if (obj)
        reply(c->resp, 201, obj);
    else
        reply_hs_error(c->resp, &err);
    hs_error_clear(&err);
}

static void h_batch_create(struct call *c)
{
    int64_t started = clock_now_ms();

    if (!need_body(c))
        return;
    json_t *inputs = json_object_get(c->body, "inputs");
    if (!json_is_array(inputs) || json_array_size(inputs) > BATCH_MAX) {
        reply_error(c->resp, 400, "VALIDATION_ERROR",
                    "inputs must be an array of at most 100 objects");
        return;
    }

    json_t *results = json_array();
    json_t *errors = json_array();
    size_t i;
    json_t *input;
    sim_store_lock(c->sim->store);
    json_array_foreach(inputs, i, input)
    {
        struct hs_error err = {0};
        const char *trace =
            json_string_value(json_object_get(input, "objectWriteTraceId"));
        json_t *obj =
            create_one(c->sim, json_object_get(input, "properties"), &err);
        if (obj) {
            if (trace)
                json_object_set_new(obj, "objectWriteTraceId",
                                    json_string(trace));
            json_array_append_new(results, obj);
        } else {
            json_t *e = batch_error(err.category, err.message,
                                    trace ? "objectWriteTraceId" : NULL, trace);
            if (err.errors)
                json_object_set(e, "errors", err.errors);
            json_array_append_new(errors, e);
        }
        hs_error_clear(&err);
    }
    sim_store_unlock(c->sim->store);
    int status = json_array_size(errors) > 0 ? 207 : 201;
    reply(c->resp, status, batch_body(results, errors, started));
}

/* Applies one update; returns the object or NULL with err filled. Called
 * with the store locked. */
static json_t *update_one(struct hubspot_sim *sim, struct sim_deal *deal,
                          json_t *props, struct hs_error *err)
{
    struct sim_write w;
    struct sim_actor actor = api_actor(sim);
    struct sim_deal *clash = NULL;
    struct select all = {NULL, NULL, true};

    if (parse_write(sim, props, &w, err) != FS_OK)
        return NULL;
    fs_result r = sim_store_update(sim->store, deal, &w, &actor, &clash);
    sim_write_clear(&w);
    if (r != FS_OK)
        conflict_error(err, clash);
    return r == FS_OK ? deal_json(deal, &all) : NULL;
}

static void h_update(struct call *c)
{
    struct hs_error err = {0};
    const char *id_prop = http_request_query(c->req, "idProperty");

    if (!need_body(c))
        return;
    sim_store_lock(c->sim->store);
    struct sim_deal *d = find_deal(c->sim, c->id, id_prop);
    json_t *obj = NULL;
    if (!d || d->archived)
        hs_error_set(&err, 404, "OBJECT_NOT_FOUND", "resource not found");
    else
        obj =
            update_one(c->sim, d, json_object_get(c->body, "properties"), &err);
    sim_store_unlock(c->sim->store);
    if (obj)
        reply(c->resp, 200, obj);
    else
        reply_hs_error(c->resp, &err);
    hs_error_clear(&err);
}

static bool has_duplicate_ids(const json_t *inputs)
{
    size_t i, j;
    json_t *a, *b;
    char ba[32], bb[32];

    json_array_foreach(inputs, i, a)
    {
        const char *ia = id_text(json_object_get(a, "id"), ba);
        for (j = i + 1; ia && j < json_array_size(inputs); j++) {
            b = json_array_get(inputs, j);
            const char *ib = id_text(json_object_get(b, "id"), bb);
            if (ib && strcmp(ia, ib) == 0)
                return true;
        }
    }
    return false;
}

static void h_batch_update(struct call *c)
{
    int64_t started = clock_now_ms();

    if (!need_body(c))
        return;
    json_t *inputs = json_object_get(c->body, "inputs");
    if (!json_is_array(inputs) || json_array_size(inputs) > BATCH_MAX) {
        reply_error(c->resp, 400, "VALIDATION_ERROR",
                    "inputs must be an array of at most 100 objects");
        return;
    }
    if (has_duplicate_ids(inputs)) {
        reply_error(c->resp, 400, "VALIDATION_ERROR",
                    "Duplicate IDs found in batch input");
        return;
    }

    const char *top_id_prop =
        json_string_value(json_object_get(c->body, "idProperty"));
    json_t *results = json_array();
    json_t *errors = json_array();
    json_t *missing = json_array();
    size_t i;
    json_t *input;
    sim_store_lock(c->sim->store);
    json_array_foreach(inputs, i, input)
    {
        char buf[32];
        struct hs_error err = {0};
        const char *id = id_text(json_object_get(input, "id"), buf);
        const char *id_prop =
            json_string_value(json_object_get(input, "idProperty"));
        struct sim_deal *d =
            id ? find_deal(c->sim, id, id_prop ? id_prop : top_id_prop) : NULL;
        if (!d || d->archived) {
            json_array_append_new(missing, json_string(id ? id : ""));
            continue;
        }
        json_t *obj =
            update_one(c->sim, d, json_object_get(input, "properties"), &err);
        if (obj) {
            json_array_append_new(results, obj);
        } else {
            json_t *e = batch_error(err.category, err.message, "ids", id);
            if (err.errors)
                json_object_set(e, "errors", err.errors);
            json_array_append_new(errors, e);
        }
        hs_error_clear(&err);
    }
    sim_store_unlock(c->sim->store);
    if (json_array_size(missing) > 0)
        json_array_append_new(
            errors, json_pack("{s:s, s:s, s:s, s:{s:O}}", "status", "error",
                              "category", "OBJECT_NOT_FOUND", "message",
                              "Could not find some DEAL objects to update",
                              "context", "ids", missing));
    json_decref(missing);
    int status = json_array_size(errors) > 0 ? 207 : 200;
    reply(c->resp, status, batch_body(results, errors, started));
}

static void h_archive(struct call *c)
{
    struct sim_actor actor = api_actor(c->sim);

    sim_store_lock(c->sim->store);
    struct sim_deal *d = find_deal(c->sim, c->id, NULL);
    if (d)
        sim_store_delete(c->sim->store, d, &actor);
    sim_store_unlock(c->sim->store);
    if (d)
        http_response_set_body(c->resp, 204, NULL);
    else
        reply_error(c->resp, 404, "OBJECT_NOT_FOUND", "resource not found");
}

static void h_batch_archive(struct call *c)
{
    struct sim_actor actor = api_actor(c->sim);

    if (!need_body(c))
        return;
    json_t *inputs = json_object_get(c->body, "inputs");
    if (!json_is_array(inputs) || json_array_size(inputs) > BATCH_MAX) {
        reply_error(c->resp, 400, "VALIDATION_ERROR",
                    "inputs must be an array of at most 100 ids");
        return;
    }
    size_t i;
    json_t *input;
    sim_store_lock(c->sim->store);
    json_array_foreach(inputs, i, input)
    {
        char buf[32];
        const char *id = id_text(json_object_get(input, "id"), buf);
        struct sim_deal *d = id ? find_deal(c->sim, id, NULL) : NULL;
        if (d)
            sim_store_delete(c->sim->store, d, &actor);
    }
    sim_store_unlock(c->sim->store);
    http_response_set_body(c->resp, 204, NULL);
}

static void merge_error(struct hs_error *err, fs_result r)
{
    if (r == FS_ERR_INVALID)
        hs_error_set(err, 400, "VALIDATION_ERROR",
                     "Cannot merge a deal with itself");
    else
        hs_error_set(err, 404, "OBJECT_NOT_FOUND",
                     "One of the deals to merge is archived");
}

static void h_merge(struct call *c)
{
    struct hs_error err = {0};
    struct select all = {NULL, NULL, true};
    struct sim_actor actor = api_actor(c->sim);
    char b1[32], b2[32];

    if (!need_body(c))
        return;
    const char *primary_id =
        id_text(json_object_get(c->body, "primaryObjectId"), b1);
    const char *other_id =
        id_text(json_object_get(c->body, "objectIdToMerge"), b2);
    if (!primary_id || !other_id) {
        reply_error(c->resp, 400, "VALIDATION_ERROR",
                    "primaryObjectId and objectIdToMerge are required");
        return;
    }

    json_t *obj = NULL;
    sim_store_lock(c->sim->store);
    struct sim_deal *primary = find_deal(c->sim, primary_id, NULL);
    struct sim_deal *other = find_deal(c->sim, other_id, NULL);
    struct sim_deal *result = NULL;
    if (!primary || !other) {
        hs_error_set(&err, 404, "OBJECT_NOT_FOUND", "resource not found");
    } else {
        fs_result r =
            sim_store_merge(c->sim->store, primary, &other, 1, &actor, &result);
        if (r == FS_OK)
            obj = deal_json(result, &all);
        else
            merge_error(&err, r);
    }
    sim_store_unlock(c->sim->store);
    if (obj)
        reply(c->resp, 200, obj);
    else
        reply_hs_error(c->resp, &err);
    hs_error_clear(&err);
}

/* ---- search ----------------------------------------------------------- */

enum op {
    OP_EQ,
    OP_NEQ,
    OP_LT,
    OP_LTE,
    OP_GT,
    OP_GTE,
    OP_BETWEEN,
    OP_IN,
    OP_NOT_IN,
    OP_HAS,
    OP_NOT_HAS,
    OP_CONTAINS,
    OP_NOT_CONTAINS,
};

static const char *const op_names[] = {
    "EQ",
    "NEQ",
    "LT",
    "LTE",
    "GT",
    "GTE",
    "BETWEEN",
    "IN",
    "NOT_IN",
    "HAS_PROPERTY",
    "NOT_HAS_PROPERTY",
    "CONTAINS_TOKEN",
    "NOT_CONTAINS_TOKEN",
};

struct filter {
    const char *prop;
    enum op op;
    char *value;    /* owned */
    char *high;     /* owned, BETWEEN */
    json_t *values; /* IN / NOT_IN, borrowed */
    bool numeric;
    double num;
    double high_num;
};

static bool is_time_prop(const char *p)
{
    return strcmp(p, "createdate") == 0 ||
           strcmp(p, "hs_lastmodifieddate") == 0 ||
           strcmp(p, "closedate") == 0 || strcmp(p, "engage_date") == 0;
}

static bool is_numeric_prop(const char *p)
{
    return is_time_prop(p) || strcmp(p, "amount") == 0 ||
           strcmp(p, "hs_object_id") == 0;
}

/* A filter value as a number: epoch ms or ISO text for times. */
static bool filter_number(const char *prop, const char *text, double *out)
{
    char *end = NULL;
    int64_t ms;

    if (!text || !*text)
        return false;
    *out = strtod(text, &end);
    if (*end == '\0')
        return true;
    if (is_time_prop(prop) && clock_parse_iso(text, &ms) == 0) {
        *out = (double)ms;
        return true;
    }
    return false;
}

static char *filter_value_text(const json_t *v)
{
    char buf[32];
    if (json_is_real(v))
        return xasprintf("%.17g", json_real_value(v));
    const char *t = id_text(v, buf);
    if (t)
        return xstrdup(t);
    if (json_is_boolean(v))
        return xstrdup(json_is_true(v) ? "true" : "false");
    return NULL;
}

static bool in_values(const struct filter *f, const struct sim_deal *d,
                      const char *v)
{
    size_t i;
    json_t *item;
    double dv, iv;
    bool have = f->numeric && deal_number(d, f->prop, &dv);

    json_array_foreach(f->values, i, item)
    {
        char *t = filter_value_text(item);
        bool hit = false;
        if (t && f->numeric)
            hit = have && filter_number(f->prop, t, &iv) && iv == dv;
        else if (t)
            hit = v && strcasecmp(v, t) == 0;
        free(t);
        if (hit)
            return true;
    }
    return false;
}

static bool filter_match(const struct filter *f, const struct sim_deal *d)
{
    char buf[64];
    const char *v = rest_value(d, f->prop, buf);
    double dv = 0;
    bool have = false;
    int cmp = 0;

    switch (f->op) {
    case OP_HAS:
        return v != NULL;
    case OP_NOT_HAS:
        return v == NULL;
    case OP_IN:
        return in_values(f, d, v);
    case OP_NOT_IN:
        return !in_values(f, d, v);
    case OP_CONTAINS:
        return v && strcasestr(v, f->value) != NULL;
    case OP_NOT_CONTAINS:
        return !v || strcasestr(v, f->value) == NULL;
    default:
        break;
    }
    if (f->numeric) {
        have = deal_number(d, f->prop, &dv);
        cmp = dv < f->num ? -1 : dv > f->num ? 1 : 0;
    } else {
        have = v != NULL;
        cmp = have ? strcasecmp(v, f->value) : 0;
    }
    switch (f->op) {
    case OP_EQ:
        return have && cmp == 0;
    case OP_NEQ:
        return !have || cmp != 0;
    case OP_LT:
        return have && cmp < 0;
    case OP_LTE:
        return have && cmp <= 0;
    case OP_GT:
        return have && cmp > 0;
    case OP_GTE:
        return have && cmp >= 0;
    case OP_BETWEEN:
        if (f->numeric)
            return have && dv >= f->num && dv <= f->high_num;
        return have && cmp >= 0 && strcasecmp(v, f->high) <= 0;
    default:
        return false;
    }
}

/* Reads one filter; NULL on success or the error message. */
static const char *parse_filter(const json_t *j, struct filter *f)
{
    const char *op = json_string_value(json_object_get(j, "operator"));
    size_t k;

    memset(f, 0, sizeof(*f));
    f->prop = json_string_value(json_object_get(j, "propertyName"));
    if (!f->prop || !prop_known(f->prop))
        return "filter propertyName is missing or not a deal property";
    if (!op)
        return "filter operator is missing";
    for (k = 0; k < sizeof(op_names) / sizeof(op_names[0]); k++)
        if (strcmp(op_names[k], op) == 0)
            break;
    if (k == sizeof(op_names) / sizeof(op_names[0]))
        return "filter operator is not supported";
    f->op = (enum op)k;
    if (f->op == OP_HAS || f->op == OP_NOT_HAS)
        return NULL;
    if (f->op == OP_IN || f->op == OP_NOT_IN) {
        f->values = json_object_get(j, "values");
        f->numeric = is_numeric_prop(f->prop);
        return json_is_array(f->values) ? NULL
                                        : "IN filters need a values array";
    }
    f->value = filter_value_text(json_object_get(j, "value"));
    if (!f->value)
        return "filter value is missing";
    if (f->op == OP_BETWEEN) {
        f->high = filter_value_text(json_object_get(j, "highValue"));
        if (!f->high)
            return "BETWEEN filters need a highValue";
    }
    if (f->op == OP_CONTAINS || f->op == OP_NOT_CONTAINS)
        return NULL;
    f->numeric = is_numeric_prop(f->prop);
    if (f->numeric && !filter_number(f->prop, f->value, &f->num))
        return "filter value is not a number or date";
    if (f->numeric && f->high && !filter_number(f->prop, f->high, &f->high_num))
        return "filter highValue is not a number or date";
    return NULL;
}

struct sort_spec {
    const char *prop;
    bool descending;
};

static int compare_deals(const void *a, const void *b, void *ctx)
{
    const struct sim_deal *da = *(struct sim_deal *const *)a;
    const struct sim_deal *db = *(struct sim_deal *const *)b;
    const struct sort_spec *s = ctx;
    int cmp = 0;

    if (s->prop) {
        double na, nb;
        bool ha = deal_number(da, s->prop, &na);
        bool hb = deal_number(db, s->prop, &nb);
        if (ha && hb) {
            cmp = na < nb ? -1 : na > nb ? 1 : 0;
        } else {
            char ba[64], bb[64];
            const char *va = rest_value(da, s->prop, ba);
            const char *vb = rest_value(db, s->prop, bb);
            if (va && vb)
                cmp = strcmp(va, vb);
            else
                cmp = va ? -1 : vb ? 1 : 0;
        }
        if (s->descending)
            cmp = -cmp;
    }
    if (cmp == 0)
        cmp = da->id < db->id ? -1 : da->id > db->id ? 1 : 0;
    return cmp;
}

static void free_filters(struct filter *filters, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(filters[i].value);
        free(filters[i].high);
    }
    free(filters);
}

/* Parses filterGroups into a flat array; group_ends[g] is one past the
 * last filter of group g. */
static const char *parse_groups(const json_t *groups, struct filter **out,
                                size_t *count, size_t *group_ends,
                                size_t *ngroups)
{
    size_t g, i, total = 0;
    json_t *group, *jf;

    *out = NULL;
    *count = 0;
    *ngroups = 0;
    if (!groups)
        return NULL;
    if (!json_is_array(groups) || json_array_size(groups) > SEARCH_GROUPS_MAX)
        return "filterGroups must be an array of at most 5 groups";
    json_array_foreach(groups, g, group)
    {
        json_t *filters = json_object_get(group, "filters");
        if (!json_is_array(filters) ||
            json_array_size(filters) > SEARCH_FILTERS_PER_GROUP_MAX)
            return "each filter group holds at most 6 filters";
        total += json_array_size(filters);
    }
    if (total > SEARCH_FILTERS_MAX)
        return "at most 18 filters are allowed in all";

    *out = xcalloc(total ? total : 1, sizeof(**out));
    json_array_foreach(groups, g, group)
    {
        json_array_foreach(json_object_get(group, "filters"), i, jf)
        {
            const char *msg = parse_filter(jf, &(*out)[*count]);
            (*count)++;
            if (msg)
                return msg;
        }
        group_ends[(*ngroups)++] = *count;
    }
    return NULL;
}

static bool deal_matches(const struct sim_deal *d, const struct filter *fs,
                         const size_t *group_ends, size_t ngroups,
                         const char *query)
{
    if (query && *query) {
        const char *name = sim_deal_value(d, DEAL_NAME);
        if (!name || !strcasestr(name, query))
            return false;
    }
    if (ngroups == 0)
        return true;
    size_t start = 0;
    for (size_t g = 0; g < ngroups; g++) {
        bool all = true;
        for (size_t i = start; i < group_ends[g] && all; i++)
            all = filter_match(&fs[i], d);
        if (all)
            return true;
        start = group_ends[g];
    }
    return false;
}

static void h_search(struct call *c)
{
    struct hubspot_sim *sim = c->sim;
    struct filter *filters = NULL;
    size_t nfilters = 0, ngroups = 0;
    size_t group_ends[SEARCH_GROUPS_MAX];
    struct sort_spec sort = {NULL, false};
    long limit = 10, after = 0;
    const char *msg = NULL;
    char buf[32];

    if (!need_body(c))
        return;
    json_t *jlimit = json_object_get(c->body, "limit");
    json_t *jafter = json_object_get(c->body, "after");
    json_t *props = json_object_get(c->body, "properties");
    const char *query = json_string_value(json_object_get(c->body, "query"));
    json_t *sorts = json_object_get(c->body, "sorts");

    if (jlimit && (!json_is_integer(jlimit) || json_integer_value(jlimit) < 0 ||
                   json_integer_value(jlimit) > SEARCH_LIMIT_MAX))
        msg = "limit must be between 0 and 200";
    else if (jlimit)
        limit = (long)json_integer_value(jlimit);
    if (!msg && jafter && !json_is_null(jafter)) {
        const char *t = id_text(jafter, buf);
        if (!t || !parse_long(t, 0, 1L << 40, &after))
            msg = "after is not a valid paging cursor";
    }
    if (!msg && after + limit > SEARCH_RESULTS_MAX)
        msg = "Search results are limited to 10000; after + limit must not "
              "be over 10000";
    if (!msg && json_array_size(sorts) > 0) {
        json_t *s0 = json_array_get(sorts, 0);
        const char *dir = json_string_value(json_object_get(s0, "direction"));
        sort.prop = json_string_value(json_object_get(s0, "propertyName"));
        sort.descending = dir && strncmp(dir, "DESC", 4) == 0;
        if (!sort.prop || !prop_known(sort.prop))
            msg = "sort propertyName is not a deal property";
    }
    if (!msg)
        msg = parse_groups(json_object_get(c->body, "filterGroups"), &filters,
                           &nfilters, group_ends, &ngroups);
    if (msg) {
        reply_error(c->resp, 400, "VALIDATION_ERROR", msg);
        free_filters(filters, nfilters);
        return;
    }

    struct select sel = {json_array_size(props) > 0 ? props : NULL, NULL,
                         false};
    json_t *results = json_array();
    sim_store_lock(sim->store);
    size_t n = sim_store_deal_count(sim->store);
    struct sim_deal **hits = xcalloc(n ? n : 1, sizeof(*hits));
    size_t nhits = 0;
    for (size_t i = 0; i < n; i++) {
        struct sim_deal *d = sim_store_deal_at(sim->store, i);
        if (!d->archived &&
            deal_matches(d, filters, group_ends, ngroups, query))
            hits[nhits++] = d;
    }
    qsort_r(hits, nhits, sizeof(*hits), compare_deals, &sort);
    for (size_t i = (size_t)after; i < nhits && i < (size_t)(after + limit);
         i++)
        json_array_append_new(results, deal_json(hits[i], &sel));
    sim_store_unlock(sim->store);

    json_t *obj = json_object();
    json_object_set_new(obj, "total", json_integer((json_int_t)nhits));
    json_object_set_new(obj, "results", results);
    if ((size_t)(after + limit) < nhits && limit > 0) {
        snprintf(buf, sizeof(buf), "%ld", after + limit);
        json_object_set_new(obj, "paging",
                            json_pack("{s:{s:s}}", "next", "after", buf));
    }
    reply(c->resp, 200, obj);
    free(hits);
    free_filters(filters, nfilters);
}

/* ---- owners and pipelines --------------------------------------------- */

static json_t *owner_json(const struct sim_owner *o)
{
    return json_pack(
        "{s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:b, s:s, s:s}", "id", o->id,
        "email", o->email, "firstName", o->first_name, "lastName", o->last_name,
        "userId", (json_int_t)strtoll(o->user_id, NULL, 10),
        "userIdIncludingInactive", (json_int_t)strtoll(o->user_id, NULL, 10),
        "type", "PERSON", "archived", 0, "createdAt",
        "2016-01-04T09:00:00.000Z", "updatedAt", "2016-01-04T09:00:00.000Z");
}

static void h_owners(struct call *c)
{
    struct sim_store *store = c->sim->store;
    long limit = 100, after = 0;
    const char *email = http_request_query(c->req, "email");
    const char *lt = http_request_query(c->req, "limit");
    const char *at = http_request_query(c->req, "after");

    if ((lt && !parse_long(lt, 1, OWNERS_MAX, &limit)) ||
        (at && !parse_long(at, 0, 1L << 30, &after))) {
        reply_error(c->resp, 400, "VALIDATION_ERROR",
                    "limit or after is not valid");
        return;
    }
    json_t *results = json_array();
    json_t *obj = json_object();
    sim_store_lock(store);
    if (c->id) {
        const struct sim_owner *o = sim_store_owner_find(store, c->id);
        json_decref(results);
        json_decref(obj);
        obj = o ? owner_json(o) : NULL;
        sim_store_unlock(store);
        if (obj)
            reply(c->resp, 200, obj);
        else
            reply_error(c->resp, 404, "OBJECT_NOT_FOUND", "resource not found");
        return;
    }
    size_t n = sim_store_owner_count(store);
    size_t i = (size_t)after;
    for (; i < n; i++) {
        const struct sim_owner *o = sim_store_owner_at(store, i);
        if (email && strcasecmp(email, o->email) != 0)
            continue;
        if (json_array_size(results) == (size_t)limit)
            break;
        json_array_append_new(results, owner_json(o));
    }
    sim_store_unlock(store);
    json_object_set_new(obj, "results", results);
    if (i < n) {
        char next[32];
        snprintf(next, sizeof(next), "%zu", i);
        json_object_set_new(obj, "paging",
                            json_pack("{s:{s:s}}", "next", "after", next));
    }
    reply(c->resp, 200, obj);
}

static json_t *stage_json(const struct sim_stage *s, size_t order)
{
    char probability[16];

    snprintf(probability, sizeof(probability), "%.1f", s->probability);
    return json_pack("{s:s, s:s, s:i, s:{s:s, s:s}, s:b, s:s, s:s, s:s}", "id",
                     s->id, "label", s->label, "displayOrder", (int)order,
                     "metadata", "probability", probability, "isClosed",
                     s->closed ? "true" : "false", "archived", 0,
                     "writePermissions", "CRM_PERMISSIONS_ENFORCEMENT",
                     "createdAt", "1970-01-01T00:00:00.000Z", "updatedAt",
                     "1970-01-01T00:00:00.000Z");
}

static json_t *stages_json(void)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < pipeline.stage_count; i++)
        json_array_append_new(arr, stage_json(&pipeline.stages[i], i));
    return arr;
}

static json_t *pipeline_json(void)
{
    return json_pack("{s:s, s:s, s:i, s:o, s:b, s:s, s:s}", "id", pipeline.id,
                     "label", pipeline.label, "displayOrder", 0, "stages",
                     stages_json(), "archived", 0, "createdAt",
                     "1970-01-01T00:00:00.000Z", "updatedAt",
                     "1970-01-01T00:00:00.000Z");
}

static void h_pipelines(struct call *c)
{
    if (!c->id) {
        reply(c->resp, 200, json_pack("{s:[o]}", "results", pipeline_json()));
        return;
    }
    if (strcmp(c->id, pipeline.id) != 0) {
        reply_error(c->resp, 404, "OBJECT_NOT_FOUND", "pipeline not found");
        return;
    }
    if (c->path.count == 5) {
        reply(c->resp, 200, pipeline_json());
        return;
    }
    if (c->path.count == 6) {
        reply(c->resp, 200, json_pack("{s:o}", "results", stages_json()));
        return;
    }
    for (size_t i = 0; i < pipeline.stage_count; i++) {
        if (strcmp(pipeline.stages[i].id, c->sub_id) == 0) {
            reply(c->resp, 200, stage_json(&pipeline.stages[i], i));
            return;
        }
    }
    reply_error(c->resp, 404, "OBJECT_NOT_FOUND", "stage not found");
}

/* ---- routing ---------------------------------------------------------- */

struct route_result {
    handler_fn fn;
    int kind;
    int status; /* 404 or 405 when fn is NULL */
};

static struct route_result pick(const char *method, const char *want,
                                handler_fn fn, int kind)
{
    struct route_result r = {NULL, -1, 405};
    if (strcmp(method, want) == 0) {
        r.fn = fn;
        r.kind = kind;
        r.status = 0;
    }
    return r;
}

static struct route_result route_deals(struct call *c, const char *m)
{
    static const struct route_result not_found = {NULL, -1, 404};

    if (c->path.count == 4) {
        if (strcmp(m, "GET") == 0)
            return pick(m, "GET", h_list, KIND_LIST);
        return pick(m, "POST", h_create, KIND_CREATE);
    }
    if (c->path.count == 5 && sim_path_is(&c->path, 4, "search"))
        return pick(m, "POST", h_search, KIND_SEARCH);
    if (c->path.count == 5 && sim_path_is(&c->path, 4, "merge"))
        return pick(m, "POST", h_merge, KIND_MERGE);
    if (c->path.count == 5) {
        c->id = c->path.seg[4];
        if (strcmp(m, "GET") == 0)
            return pick(m, "GET", h_get, KIND_GET);
        if (strcmp(m, "PATCH") == 0)
            return pick(m, "PATCH", h_update, KIND_UPDATE);
        return pick(m, "DELETE", h_archive, KIND_ARCHIVE);
    }
    if (c->path.count == 6 && sim_path_is(&c->path, 4, "batch")) {
        if (sim_path_is(&c->path, 5, "read"))
            return pick(m, "POST", h_batch_read, KIND_BATCH_READ);
        if (sim_path_is(&c->path, 5, "create"))
            return pick(m, "POST", h_batch_create, KIND_BATCH_CREATE);
        if (sim_path_is(&c->path, 5, "update"))
            return pick(m, "POST", h_batch_update, KIND_BATCH_UPDATE);
        if (sim_path_is(&c->path, 5, "archive"))
            return pick(m, "POST", h_batch_archive, KIND_BATCH_ARCHIVE);
    }
    return not_found;
}

static struct route_result route_api(struct call *c, const char *m)
{
    static const struct route_result not_found = {NULL, -1, 404};

    if (!sim_path_is(&c->path, 0, "crm") || !sim_path_is(&c->path, 1, "v3"))
        return not_found;
    if (sim_path_is(&c->path, 2, "objects") &&
        (sim_path_is(&c->path, 3, "deals") || sim_path_is(&c->path, 3, "0-3")))
        return route_deals(c, m);
    if (sim_path_is(&c->path, 2, "owners") && c->path.count <= 4) {
        c->id = c->path.count == 4 ? c->path.seg[3] : NULL;
        return pick(m, "GET", h_owners, KIND_OWNERS);
    }
    if (sim_path_is(&c->path, 2, "pipelines") &&
        sim_path_is(&c->path, 3, "deals") && c->path.count <= 7 &&
        (c->path.count < 6 || sim_path_is(&c->path, 5, "stages"))) {
        c->id = c->path.count >= 5 ? c->path.seg[4] : NULL;
        c->sub_id = c->path.count == 7 ? c->path.seg[6] : NULL;
        return pick(m, "GET", h_pipelines, KIND_PIPELINES);
    }
    return not_found;
}

/* The private app's static token, or an OAuth access token this portal
 * issued and has not outlived; *expired_ms says how long ago one did. */
static enum sim_oauth_check authorised(struct hubspot_sim *sim,
                                       const struct http_request *req,
                                       int64_t *expired_ms)
{
    const char *token = sim_bearer_token(req);

    if (sim_same_secret(token, sim->config.token))
        return SIM_OAUTH_OK;
    return sim_oauth_check(sim->oauth, token, expired_ms);
}

/* HubSpot's refusal of a token request: the legacy shape on v1, the
 * standard error body on v3. */
static void reply_token_refused(struct http_response *resp, bool v3,
                                const char *status, const char *message)
{
    if (!v3) {
        reply(resp, 400,
              json_pack("{s:s, s:s}", "status", status, "message", message));
        return;
    }
    json_t *body = error_body("VALIDATION_ERROR", message);
    json_object_set_new(body, "subCategory", json_string(status));
    reply(resp, 400, body);
}

/* POST /oauth/v1/token and /oauth/v3/token with grant_type
 * refresh_token: a new access token living token_ttl_s, and the refresh
 * token (a new one when rotating, the old one then dead). */
static void h_oauth_token(struct hubspot_sim *sim,
                          const struct http_request *req,
                          struct http_response *resp, bool v3)
{
    struct sim_form form;
    struct sim_oauth_issue issue;
    const char *grant;

    sim_form_parse(&form, req->body, req->body_len);
    grant = sim_form_get(&form, "grant_type");
    sim_control_count_call(sim->control, KIND_OAUTH_TOKEN, false);
    if (!sim->oauth || !sim_same_secret(sim_form_get(&form, "client_id"),
                                        sim->config.oauth_client_id)) {
        reply_token_refused(resp, v3, "BAD_CLIENT_ID",
                            "missing or unknown client id");
    } else if (!sim_same_secret(sim_form_get(&form, "client_secret"),
                                sim->config.client_secret)) {
        reply_token_refused(resp, v3, "BAD_CLIENT_SECRET",
                            "missing or invalid client secret");
    } else if (!grant || strcmp(grant, "refresh_token") != 0) {
        reply_token_refused(resp, v3, "BAD_GRANT_TYPE",
                            "grant_type must be refresh_token");
    } else if (!sim_oauth_refresh(
                   sim->oauth, sim_form_get(&form, "refresh_token"), &issue)) {
        reply_token_refused(resp, v3, "BAD_REFRESH_TOKEN",
                            "missing or invalid refresh token");
    } else {
        json_t *body = json_pack("{s:s, s:s, s:s, s:I}", "token_type", "bearer",
                                 "refresh_token", issue.refresh_token,
                                 "access_token", issue.access_token,
                                 "expires_in", (json_int_t)issue.ttl_s);
        if (v3) {
            json_object_set_new(body, "token_use", json_string("access"));
            json_object_set_new(body, "hub_id",
                                json_integer(sim->config.portal_id));
        }
        reply(resp, 200, body);
        sim_oauth_issue_clear(&issue);
    }
    sim_form_free(&form);
}

static bool parse_body(struct call *c)
{
    json_error_t jerr;

    if (c->req->body_len == 0)
        return true;
    c->body = json_loadb(c->req->body, c->req->body_len, 0, &jerr);
    if (c->body)
        return true;
    char *msg = xasprintf("Invalid input JSON on line %d, column %d: %s",
                          jerr.line, jerr.column, jerr.text);
    reply_error(c->resp, 400, "VALIDATION_ERROR", msg);
    free(msg);
    return false;
}

static void serve_api(struct call *c)
{
    struct hubspot_sim *sim = c->sim;
    struct route_result r = route_api(c, c->req->method);
    int status = 0;

    if (!r.fn) {
        reply_error(c->resp, r.status,
                    r.status == 404 ? "OBJECT_NOT_FOUND" : "METHOD_NOT_ALLOWED",
                    r.status == 404 ? "resource not found"
                                    : "method not allowed on this resource");
        return;
    }
    int64_t expired_ms = 0;
    enum sim_oauth_check auth = authorised(sim, c->req, &expired_ms);
    if (auth == SIM_OAUTH_EXPIRED) {
        char *msg = xasprintf("The OAuth token used to make this call "
                              "expired %" PRId64 " second(s) ago.",
                              expired_ms / 1000);
        sim_control_count_refused(sim->control, true);
        reply_error(c->resp, 401, "EXPIRED_AUTHENTICATION", msg);
        free(msg);
        return;
    }
    if (auth != SIM_OAUTH_OK) {
        sim_control_count_refused(sim->control, false);
        reply_error(c->resp, 401, "INVALID_AUTHENTICATION",
                    "Authentication credentials not found. This API supports "
                    "OAuth 2.0 authentication and you can find more details "
                    "at https://developers.hubspot.com/docs/methods/auth/"
                    "oauth-overview");
        return;
    }

    if (!admit(sim, (enum call_kind)r.kind, c->resp))
        return;

    enum sim_api_fault fault =
        sim_control_roll_fault(sim->control, (int)r.kind, &status);
    if (fault == SIM_FAULT_5XX) {
        reply_error(c->resp, status, "SERVICE_UNAVAILABLE",
                    "The service is temporarily unavailable.");
        return;
    }
    if (parse_body(c))
        r.fn(c);
    if (fault == SIM_FAULT_HANG) {
        clock_sleep_ms(HUBSPOT_SIM_HANG_MS);
        reply_error(c->resp, 504, "GATEWAY_TIMEOUT",
                    "The request timed out at the gateway.");
    }
}

/* The http_on_request callback of the REST API; ctx is the hubspot_sim. */
static void on_request(void *ctx, const struct http_request *req,
                       struct http_response *resp)
{
    struct call c = {.sim = ctx, .req = req, .resp = resp};

    bool v1 = strcmp(req->path, "/oauth/v1/token") == 0;
    if (v1 || strcmp(req->path, "/oauth/v3/token") == 0 ||
        strcmp(req->path, "/oauth/2026-03/token") == 0) {
        if (strcmp(req->method, "POST") != 0)
            reply_error(resp, 405, "METHOD_NOT_ALLOWED",
                        "method not allowed on this resource");
        else
            h_oauth_token(c.sim, req, resp, !v1);
        return;
    }
    sim_path_split(&c.path, req->path);
    serve_api(&c);
    json_decref(c.body);
    sim_path_free(&c.path);
}

/* ---- the crmsim hubspot command --------------------------------------- */

static char *numbered(uint64_t base, size_t n)
{
    return xasprintf("%" PRIu64, base + (uint64_t)n);
}

static char *deal_id(void *ctx, size_t n)
{
    return numbered(DEAL_ID_BASE, n);
}

static char *owner_id(void *ctx, size_t n)
{
    return numbered(OWNER_ID_BASE, n);
}

static char *user_id(void *ctx, size_t n)
{
    return numbered(USER_ID_BASE, n);
}

static void on_start(void *ctx, const struct sim_core *core)
{
    struct hubspot_sim *sim = ctx;
    sim->store = core->store;
    sim->control = core->control;
}

/* The ten-secondly window is what deal calls are counted in; search
 * keeps its own per-second window. */
static void on_exhaust(void *ctx)
{
    struct hubspot_sim *sim = ctx;
    int64_t now = clock_now_ms();

    pthread_mutex_lock(&sim->mu);
    while (sim_window_take(&sim->ten_secondly, now))
        continue;
    pthread_mutex_unlock(&sim->mu);
}

static void usage(FILE *out)
{
    fputs("usage: crmsim hubspot --listen HOST:PORT --data DIR\n"
          "         --webhook-url URL --client-secret S --app-id N\n"
          "         --portal-id N --token T [options]\n"
          "\n"
          "Serves the HubSpot CRM v3 API for deals, owners and pipelines,\n"
          "seeded from DIR/sales_pipeline.csv and DIR/sales_teams.csv, and\n"
          "POSTs signed webhooks for every change to URL. The /_sim control\n"
          "endpoint (no auth) changes deals as a CRM user and injects\n"
          "faults; see docs/SIMULATOR.md.\n"
          "\n"
          "options:\n",
          out);
    fputs(sim_common_help, out);
    fputs("  --client-secret S     app client secret that signs webhooks\n"
          "  --app-id N            app id (sourceId of API changes)\n"
          "  --portal-id N         portal (account) id\n"
          "  --token T             bearer token the API accepts\n"
          "  --rate-10s N          API calls per rolling 10 s (default 100)\n"
          "  --rate-daily N        API calls per UTC day (default 250000)\n"
          "  --search-per-s N      search calls per second (default 5)\n"
          "  --oauth-client-id ID  serve /oauth/v1/token and /oauth/v3/token\n"
          "                        for this client (its secret is\n"
          "                        --client-secret)\n"
          "  --refresh-token T     the install's refresh token\n"
          "  --token-ttl-s N       access token lifetime (default 1800)\n"
          "  --rotate-refresh-tokens  mint a new refresh token each refresh\n"
          "                        (HubSpot does not; a test knob)\n"
          "  --help                show this help\n",
          out);
}

/* Returns 0 to run, 1 when help was shown, -1 on a usage error. */
static int parse_options(int argc, char **argv, struct sim_common_options *o,
                         struct hubspot_sim_config *h)
{
    enum {
        OPT_SECRET = 256,
        OPT_APP_ID,
        OPT_PORTAL_ID,
        OPT_TOKEN,
        OPT_RATE_10S,
        OPT_RATE_DAILY,
        OPT_SEARCH,
        OPT_OAUTH_CLIENT,
        OPT_REFRESH,
        OPT_TTL,
        OPT_ROTATE,
        OPT_HELP,
    };
    static const struct option own[] = {
        {"client-secret", required_argument, NULL, OPT_SECRET},
        {"app-id", required_argument, NULL, OPT_APP_ID},
        {"portal-id", required_argument, NULL, OPT_PORTAL_ID},
        {"token", required_argument, NULL, OPT_TOKEN},
        {"rate-10s", required_argument, NULL, OPT_RATE_10S},
        {"rate-daily", required_argument, NULL, OPT_RATE_DAILY},
        {"search-per-s", required_argument, NULL, OPT_SEARCH},
        {"oauth-client-id", required_argument, NULL, OPT_OAUTH_CLIENT},
        {"refresh-token", required_argument, NULL, OPT_REFRESH},
        {"token-ttl-s", required_argument, NULL, OPT_TTL},
        {"rotate-refresh-tokens", no_argument, NULL, OPT_ROTATE},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    struct option *longopts = sim_longopts(own);
    int64_t rate_10s = 100, rate_daily = 250000, search = 5;
    int c, rc = 0;

    sim_common_defaults(o);
    optind = 1;
    while (rc == 0 && (c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_SECRET:
            h->client_secret = optarg;
            break;
        case OPT_TOKEN:
            h->token = optarg;
            break;
        case OPT_APP_ID:
            rc = sim_parse_number("--app-id", optarg, 1, INT64_MAX, &h->app_id);
            break;
        case OPT_PORTAL_ID:
            rc = sim_parse_number("--portal-id", optarg, 1, INT64_MAX,
                                  &h->portal_id);
            break;
        case OPT_RATE_10S:
            rc = sim_parse_number("--rate-10s", optarg, 1, 1000000, &rate_10s);
            break;
        case OPT_RATE_DAILY:
            rc = sim_parse_number("--rate-daily", optarg, 1, 1000000000,
                                  &rate_daily);
            break;
        case OPT_SEARCH:
            rc = sim_parse_number("--search-per-s", optarg, 1, 100000, &search);
            break;
        case OPT_OAUTH_CLIENT:
            h->oauth_client_id = optarg;
            break;
        case OPT_REFRESH:
            h->refresh_token = optarg;
            break;
        case OPT_TTL:
            rc = sim_parse_number("--token-ttl-s", optarg, 1, 86400,
                                  &h->token_ttl_s);
            break;
        case OPT_ROTATE:
            h->rotate_refresh = true;
            break;
        case OPT_HELP:
            usage(stdout);
            rc = 1;
            break;
        default:
            rc = sim_common_option(o, c, optarg) > 0 ? 0 : -1;
        }
    }
    free(longopts);
    if (rc != 0)
        return rc;
    h->rate_10s = (int)rate_10s;
    h->rate_daily = (int)rate_daily;
    h->search_per_s = (int)search;
    if (optind < argc) {
        fprintf(stderr, "crmsim: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (sim_common_check(o) != 0)
        return -1;
    if (!h->oauth_client_id != !h->refresh_token) {
        fprintf(stderr, "crmsim: --oauth-client-id and --refresh-token go "
                        "together\n");
        return -1;
    }
    if (!h->client_secret || !h->token || !h->app_id || !h->portal_id) {
        fprintf(stderr, "crmsim: --client-secret, --app-id, --portal-id and "
                        "--token are required\n");
        return -1;
    }
    return 0;
}

int hubspot_sim_main(int argc, char **argv)
{
    struct sim_common_options o;
    struct hubspot_sim sim = {0};
    struct webhook_format format;

    int rc = parse_options(argc, argv, &o, &sim.config);
    if (rc != 0)
        return rc > 0 ? 0 : 2;

    snprintf(sim.app_id, sizeof(sim.app_id), "%" PRId64, sim.config.app_id);
    sim.hooks = (struct hubspot_webhooks){
        .client_secret = sim.config.client_secret,
        .app_id = sim.config.app_id,
        .portal_id = sim.config.portal_id,
        .next_event_id = 1000001,
    };
    hubspot_webhook_format(&sim.hooks, &format);
    pthread_mutex_init(&sim.mu, NULL);
    if (sim.config.token_ttl_s == 0)
        sim.config.token_ttl_s = 1800;
    if (sim.config.oauth_client_id) {
        struct sim_oauth_config oc = {sim.config.refresh_token,
                                      sim.config.token_ttl_s,
                                      sim.config.rotate_refresh};
        sim.oauth = sim_oauth_new(&oc);
    }
    int64_t now = clock_now_ms();
    sim_window_init(&sim.ten_secondly, sim.config.rate_10s, 10000);
    sim_window_init(&sim.secondly_search, sim.config.search_per_s, 1000);
    sim_daily_init(&sim.daily, sim.config.rate_daily, now);

    struct sim_store_config store = {
        .pipeline = &pipeline,
        .deal_id = deal_id,
        .owner_id = owner_id,
        .user_id = user_id,
    };
    struct sim_frontend fe = {
        .name = "hubspot",
        .store = &store,
        .webhook = &format,
        .call_kinds = call_kinds,
        .call_kind_count = KIND_COUNT,
        .on_start = on_start,
        .on_request = on_request,
        .on_exhaust = on_exhaust,
        .ctx = &sim,
    };
    rc = sim_serve(&o, &fe);

    sim_window_free(&sim.ten_secondly);
    sim_window_free(&sim.secondly_search);
    sim_oauth_free(sim.oauth);
    pthread_mutex_destroy(&sim.mu);
    return rc;
}
