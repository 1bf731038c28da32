/* The simulated HubSpot CRM v3 API (deals, owners, pipelines) and the
 * /_sim control endpoint: routing, auth, rate limits, API faults, and the
 * HubSpot JSON shapes of objects, batches, searches and errors. */
#include "hubspot_sim.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "base/crypto.h"
#include "base/log.h"

#include <ctype.h>
#include <inttypes.h>
#include <pthread.h>
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
#define MAX_SEGMENTS 10
#define DAY_MS 86400000LL

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
    KIND_COUNT,
};

static const char *const kind_names[KIND_COUNT] = {
    "list",   "get",          "batch_read",    "create", "batch_create",
    "update", "batch_update", "batch_archive", "search", "archive",
    "merge",  "owners",       "pipelines",
};

/* Call times inside a rolling window, oldest first. */
struct window {
    int64_t *stamps;
    int cap;
    int head;
    int count;
    int64_t length_ms;
};

struct api_faults {
    double api_5xx;
    double api_timeout;
};

struct hubspot_sim {
    struct hubspot_sim_config config;
    char *token;
    struct sim_store *store;
    struct webhook_sender *sender;

    pthread_mutex_t mu; /* guards everything below */
    struct window ten_secondly;
    struct window secondly_search;
    int64_t day;
    int daily_count;
    uint64_t rng;
    struct api_faults faults;
    int64_t api_calls;
    int64_t by_kind[KIND_COUNT];
    int64_t rate_limited;
    int64_t faults_5xx;
    int64_t faults_timeout;
};

/* One request on its way through a handler. */
struct call {
    struct hubspot_sim *sim;
    const struct http_request *req;
    struct http_response *resp;
    char *path_copy;
    char *seg[MAX_SEGMENTS];
    size_t nseg;
    const char *id;     /* object id from the path, if any */
    const char *sub_id; /* second id (stage), if any */
    json_t *body;       /* parsed JSON body for POST/PATCH */
};

typedef void (*handler_fn)(struct call *c);

/* ---- small helpers ---------------------------------------------------- */

static uint64_t rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static double rng_unit(uint64_t *state)
{
    return (double)(rng_next(state) >> 11) * (1.0 / 9007199254740992.0);
}

static char *uuid_new(void)
{
    uint8_t b[16];
    crypto_random(b, sizeof(b));
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    return xasprintf("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
                     "%02x%02x%02x%02x%02x%02x",
                     b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9],
                     b[10], b[11], b[12], b[13], b[14], b[15]);
}

static json_t *iso_json(int64_t ms)
{
    char buf[32];
    clock_format_iso(ms, buf);
    return json_string(buf);
}

static void reply(struct http_response *resp, int status, json_t *obj)
{
    char *body = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(obj);
    http_response_set_body(resp, status, body);
}

static json_t *error_body(const char *category, const char *message)
{
    char *cid = uuid_new();
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

static void reply_sim_error(struct http_response *resp,
                            const struct sim_error *err)
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

static void window_init(struct window *w, int cap, int64_t length_ms)
{
    w->cap = cap > 0 ? cap : 1;
    w->stamps = xcalloc((size_t)w->cap, sizeof(*w->stamps));
    w->length_ms = length_ms;
}

static void window_expire(struct window *w, int64_t now)
{
    while (w->count > 0 && w->stamps[w->head] <= now - w->length_ms) {
        w->head = (w->head + 1) % w->cap;
        w->count--;
    }
}

static bool window_take(struct window *w, int64_t now)
{
    window_expire(w, now);
    if (w->count >= w->cap)
        return false;
    w->stamps[(w->head + w->count) % w->cap] = now;
    w->count++;
    return true;
}

static void add_rate_headers(struct hubspot_sim *sim,
                             struct http_response *resp, int64_t now)
{
    char v[32];

    window_expire(&sim->ten_secondly, now);
    snprintf(v, sizeof(v), "%d", sim->ten_secondly.cap);
    http_response_add_header(resp, "X-HubSpot-RateLimit-Max", v);
    snprintf(v, sizeof(v), "%d",
             sim->ten_secondly.cap - sim->ten_secondly.count);
    http_response_add_header(resp, "X-HubSpot-RateLimit-Remaining", v);
    http_response_add_header(resp, "X-HubSpot-RateLimit-Interval-Milliseconds",
                             "10000");
    snprintf(v, sizeof(v), "%d", sim->config.rate_daily);
    http_response_add_header(resp, "X-HubSpot-RateLimit-Daily", v);
    int left = sim->config.rate_daily - sim->daily_count;
    snprintf(v, sizeof(v), "%d", left > 0 ? left : 0);
    http_response_add_header(resp, "X-HubSpot-RateLimit-Daily-Remaining", v);
}

static void reply_rate_limited(struct hubspot_sim *sim,
                               struct http_response *resp, const char *policy)
{
    char *cid = uuid_new();
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

/* Takes the call from its budget; on refusal answers 429 and returns
 * false. Called with sim->mu held. */
static bool admit(struct hubspot_sim *sim, enum call_kind kind,
                  struct http_response *resp)
{
    int64_t now = clock_now_ms();

    sim->api_calls++;
    sim->by_kind[kind]++;
    if (kind == KIND_SEARCH) {
        if (window_take(&sim->secondly_search, now))
            return true;
        sim->rate_limited++;
        reply_rate_limited(sim, resp, "SECONDLY");
        return false;
    }

    if (now / DAY_MS != sim->day) {
        sim->day = now / DAY_MS;
        sim->daily_count = 0;
    }
    const char *policy = NULL;
    if (sim->daily_count >= sim->config.rate_daily)
        policy = "DAILY";
    else if (!window_take(&sim->ten_secondly, now))
        policy = "TEN_SECONDLY_ROLLING";
    else
        sim->daily_count++;
    if (policy) {
        sim->rate_limited++;
        reply_rate_limited(sim, resp, policy);
    }
    add_rate_headers(sim, resp, now);
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
    bool all;              /* every property (control endpoint) */
};

static void put_prop(json_t *obj, const struct sim_deal *deal, const char *name)
{
    char buf[64];
    const char *v = sim_deal_rest_value(deal, name, buf);
    json_object_set_new(obj, name, v ? json_string(v) : json_null());
}

static json_t *history_json(const struct sim_deal *deal, int prop)
{
    json_t *arr = json_array();
    char buf[32];

    for (const struct sim_value *v = deal->props[prop]; v; v = v->prev) {
        const char *value = v->value ? v->value : "";
        if (v->value && prop == SIM_P_CLOSEDATE) {
            clock_format_iso(strtoll(v->value, NULL, 10), buf);
            value = buf;
        }
        json_t *entry = json_object();
        json_object_set_new(entry, "value", json_string(value));
        json_object_set_new(entry, "timestamp", iso_json(v->ts));
        json_object_set_new(entry, "sourceType",
                            json_string(sim_source_name(v->source)));
        json_object_set_new(entry, "sourceId", json_string(v->source_id));
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
        for (int p = 0; p < SIM_PROP_COUNT; p++)
            put_prop(props, deal, sim_prop_name(p));
        for (i = 0; i < sizeof(always_props) / sizeof(always_props[0]); i++)
            put_prop(props, deal, always_props[i]);
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
        if (n && sim_prop_known(n))
            put_prop(props, deal, n);
    }
    for (i = 0; i < sizeof(always_props) / sizeof(always_props[0]); i++)
        put_prop(props, deal, always_props[i]);
    return props;
}

static json_t *deal_json(const struct sim_deal *deal, const struct select *sel)
{
    char id[32];
    json_t *obj = json_object();

    snprintf(id, sizeof(id), "%" PRIu64, deal->id);
    json_object_set_new(obj, "id", json_string(id));
    json_object_set_new(obj, "properties", properties_json(deal, sel));
    if (sel->history && json_array_size(sel->history) > 0) {
        json_t *hist = json_object();
        size_t i;
        json_t *name;
        json_array_foreach(sel->history, i, name)
        {
            int prop = sim_prop_index(
                json_string_value(name) ? json_string_value(name) : "");
            if (prop >= 0)
                json_object_set_new(hist, sim_prop_name(prop),
                                    history_json(deal, prop));
        }
        json_object_set_new(obj, "propertiesWithHistory", hist);
    }
    json_object_set_new(obj, "createdAt", iso_json(deal->created_ms));
    json_object_set_new(obj, "updatedAt", iso_json(deal->updated_ms));
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

static const struct sim_actor *api_actor(struct hubspot_sim *sim,
                                         struct sim_actor *actor, char *buf)
{
    snprintf(buf, 32, "%" PRId64, sim->config.app_id);
    actor->source = SIM_SRC_INTEGRATION;
    actor->source_id = buf;
    return actor;
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
    struct sim_deal *d = sim_store_find(sim->store, c->id, id_prop);
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
        struct sim_deal *d =
            id ? sim_store_find(sim->store, id, id_prop) : NULL;
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
                          struct sim_error *err)
{
    struct sim_write w;
    struct sim_actor actor;
    char app[32];
    struct sim_deal *deal = NULL;
    struct select all = {NULL, NULL, true};

    if (sim_store_parse_write(sim->store, props, &w, err) != FS_OK)
        return NULL;
    fs_result r = sim_store_create(sim->store, &w, api_actor(sim, &actor, app),
                                   &deal, err);
    sim_write_clear(&w);
    return r == FS_OK ? deal_json(deal, &all) : NULL;
}

static void h_create(struct call *c)
{
    struct sim_error err = {0};

    if (!need_body(c))
        return;
    sim_store_lock(c->sim->store);
    json_t *obj =
        create_one(c->sim, json_object_get(c->body, "properties"), &err);
    sim_store_unlock(c->sim->store);
    if (obj)
        reply(c->resp, 201, obj);
    else
        reply_sim_error(c->resp, &err);
    sim_error_clear(&err);
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
        struct sim_error err = {0};
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
        sim_error_clear(&err);
    }
    sim_store_unlock(c->sim->store);
    int status = json_array_size(errors) > 0 ? 207 : 201;
    reply(c->resp, status, batch_body(results, errors, started));
}

/* Applies one update; returns the object or NULL with err filled. Called
 * with the store locked. */
static json_t *update_one(struct hubspot_sim *sim, struct sim_deal *deal,
                          json_t *props, struct sim_error *err)
{
    struct sim_write w;
    struct sim_actor actor;
    char app[32];
    struct select all = {NULL, NULL, true};

    if (sim_store_parse_write(sim->store, props, &w, err) != FS_OK)
        return NULL;
    fs_result r = sim_store_update(sim->store, deal, &w,
                                   api_actor(sim, &actor, app), err);
    sim_write_clear(&w);
    return r == FS_OK ? deal_json(deal, &all) : NULL;
}

static void h_update(struct call *c)
{
    struct sim_error err = {0};
    const char *id_prop = http_request_query(c->req, "idProperty");

    if (!need_body(c))
        return;
    sim_store_lock(c->sim->store);
    struct sim_deal *d = sim_store_find(c->sim->store, c->id, id_prop);
    json_t *obj = NULL;
    if (!d || d->archived)
        sim_error_set(&err, 404, "OBJECT_NOT_FOUND", "resource not found");
    else
        obj =
            update_one(c->sim, d, json_object_get(c->body, "properties"), &err);
    sim_store_unlock(c->sim->store);
    if (obj)
        reply(c->resp, 200, obj);
    else
        reply_sim_error(c->resp, &err);
    sim_error_clear(&err);
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
        struct sim_error err = {0};
        const char *id = id_text(json_object_get(input, "id"), buf);
        const char *id_prop =
            json_string_value(json_object_get(input, "idProperty"));
        struct sim_deal *d =
            id ? sim_store_find(c->sim->store, id,
                                id_prop ? id_prop : top_id_prop)
               : NULL;
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
        sim_error_clear(&err);
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
    struct sim_actor actor;
    char app[32];

    sim_store_lock(c->sim->store);
    struct sim_deal *d = sim_store_find(c->sim->store, c->id, NULL);
    if (d)
        sim_store_archive(c->sim->store, d, api_actor(c->sim, &actor, app));
    sim_store_unlock(c->sim->store);
    if (d)
        http_response_set_body(c->resp, 204, NULL);
    else
        reply_error(c->resp, 404, "OBJECT_NOT_FOUND", "resource not found");
}

static void h_batch_archive(struct call *c)
{
    struct sim_actor actor;
    char app[32];

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
        struct sim_deal *d =
            id ? sim_store_find(c->sim->store, id, NULL) : NULL;
        if (d)
            sim_store_archive(c->sim->store, d, api_actor(c->sim, &actor, app));
    }
    sim_store_unlock(c->sim->store);
    http_response_set_body(c->resp, 204, NULL);
}

/* Merges under the given actor and answers with the surviving deal. */
static void do_merge(struct call *c, const struct sim_actor *actor)
{
    struct sim_error err = {0};
    struct select all = {NULL, NULL, true};
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
    struct sim_deal *primary = sim_store_find(c->sim->store, primary_id, NULL);
    struct sim_deal *other = sim_store_find(c->sim->store, other_id, NULL);
    if (!primary || !other)
        sim_error_set(&err, 404, "OBJECT_NOT_FOUND", "resource not found");
    else if (sim_store_merge(c->sim->store, primary, other, actor, &err) ==
             FS_OK)
        obj = deal_json(primary, &all);
    sim_store_unlock(c->sim->store);
    if (obj)
        reply(c->resp, 200, obj);
    else
        reply_sim_error(c->resp, &err);
    sim_error_clear(&err);
}

static void h_merge(struct call *c)
{
    struct sim_actor actor;
    char app[32];
    do_merge(c, api_actor(c->sim, &actor, app));
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
    bool have = f->numeric && sim_deal_number(d, f->prop, &dv);

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
    const char *v = sim_deal_rest_value(d, f->prop, buf);
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
        have = sim_deal_number(d, f->prop, &dv);
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
    if (!f->prop || !sim_prop_known(f->prop))
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
        bool ha = sim_deal_number(da, s->prop, &na);
        bool hb = sim_deal_number(db, s->prop, &nb);
        if (ha && hb) {
            cmp = na < nb ? -1 : na > nb ? 1 : 0;
        } else {
            char ba[64], bb[64];
            const char *va = sim_deal_rest_value(da, s->prop, ba);
            const char *vb = sim_deal_rest_value(db, s->prop, bb);
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
        const char *name =
            d->props[SIM_P_DEALNAME] ? d->props[SIM_P_DEALNAME]->value : NULL;
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
        if (!sort.prop || !sim_prop_known(sort.prop))
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
        "userId", (json_int_t)o->user_id, "userIdIncludingInactive",
        (json_int_t)o->user_id, "type", "PERSON", "archived", 0, "createdAt",
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
    return json_pack("{s:s, s:s, s:i, s:{s:s, s:s}, s:b, s:s, s:s, s:s}", "id",
                     s->id, "label", s->label, "displayOrder", (int)order,
                     "metadata", "probability", s->probability, "isClosed",
                     s->closed ? "true" : "false", "archived", 0,
                     "writePermissions", "CRM_PERMISSIONS_ENFORCEMENT",
                     "createdAt", "1970-01-01T00:00:00.000Z", "updatedAt",
                     "1970-01-01T00:00:00.000Z");
}

static json_t *stages_json(void)
{
    json_t *arr = json_array();
    const struct sim_stage *s;
    for (size_t i = 0; (s = sim_stage_at(i)) != NULL; i++)
        json_array_append_new(arr, stage_json(s, i));
    return arr;
}

static json_t *pipeline_json(void)
{
    return json_pack("{s:s, s:s, s:i, s:o, s:b, s:s, s:s}", "id", "default",
                     "label", "Sales Pipeline", "displayOrder", 0, "stages",
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
    if (strcmp(c->id, "default") != 0) {
        reply_error(c->resp, 404, "OBJECT_NOT_FOUND", "pipeline not found");
        return;
    }
    if (c->nseg == 5) {
        reply(c->resp, 200, pipeline_json());
        return;
    }
    if (c->nseg == 6) {
        reply(c->resp, 200, json_pack("{s:o}", "results", stages_json()));
        return;
    }
    const struct sim_stage *s;
    for (size_t i = 0; (s = sim_stage_at(i)) != NULL; i++) {
        if (strcmp(s->id, c->sub_id) == 0) {
            reply(c->resp, 200, stage_json(s, i));
            return;
        }
    }
    reply_error(c->resp, 404, "OBJECT_NOT_FOUND", "stage not found");
}

/* ---- routing ---------------------------------------------------------- */

static void split_path(struct call *c)
{
    char *p = c->path_copy;
    c->nseg = 0;
    while (*p && c->nseg < MAX_SEGMENTS) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        c->seg[c->nseg++] = p;
        char *slash = strchr(p, '/');
        if (!slash)
            break;
        *slash = '\0';
        p = slash + 1;
    }
}

static bool seg_is(const struct call *c, size_t i, const char *s)
{
    return i < c->nseg && strcmp(c->seg[i], s) == 0;
}

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

    if (c->nseg == 4) {
        if (strcmp(m, "GET") == 0)
            return pick(m, "GET", h_list, KIND_LIST);
        return pick(m, "POST", h_create, KIND_CREATE);
    }
    if (c->nseg == 5 && seg_is(c, 4, "search"))
        return pick(m, "POST", h_search, KIND_SEARCH);
    if (c->nseg == 5 && seg_is(c, 4, "merge"))
        return pick(m, "POST", h_merge, KIND_MERGE);
    if (c->nseg == 5) {
        c->id = c->seg[4];
        if (strcmp(m, "GET") == 0)
            return pick(m, "GET", h_get, KIND_GET);
        if (strcmp(m, "PATCH") == 0)
            return pick(m, "PATCH", h_update, KIND_UPDATE);
        return pick(m, "DELETE", h_archive, KIND_ARCHIVE);
    }
    if (c->nseg == 6 && seg_is(c, 4, "batch")) {
        if (seg_is(c, 5, "read"))
            return pick(m, "POST", h_batch_read, KIND_BATCH_READ);
        if (seg_is(c, 5, "create"))
            return pick(m, "POST", h_batch_create, KIND_BATCH_CREATE);
        if (seg_is(c, 5, "update"))
            return pick(m, "POST", h_batch_update, KIND_BATCH_UPDATE);
        if (seg_is(c, 5, "archive"))
            return pick(m, "POST", h_batch_archive, KIND_BATCH_ARCHIVE);
    }
    return not_found;
}

static struct route_result route_api(struct call *c, const char *m)
{
    static const struct route_result not_found = {NULL, -1, 404};

    if (!seg_is(c, 0, "crm") || !seg_is(c, 1, "v3"))
        return not_found;
    if (seg_is(c, 2, "objects") &&
        (seg_is(c, 3, "deals") || seg_is(c, 3, "0-3")))
        return route_deals(c, m);
    if (seg_is(c, 2, "owners") && c->nseg <= 4) {
        c->id = c->nseg == 4 ? c->seg[3] : NULL;
        return pick(m, "GET", h_owners, KIND_OWNERS);
    }
    if (seg_is(c, 2, "pipelines") && seg_is(c, 3, "deals") && c->nseg <= 7 &&
        (c->nseg < 6 || seg_is(c, 5, "stages"))) {
        c->id = c->nseg >= 5 ? c->seg[4] : NULL;
        c->sub_id = c->nseg == 7 ? c->seg[6] : NULL;
        return pick(m, "GET", h_pipelines, KIND_PIPELINES);
    }
    return not_found;
}

static bool authorised(struct hubspot_sim *sim, const struct http_request *req)
{
    const char *auth = http_request_header(req, "Authorization");
    const char *prefix = "Bearer ";

    if (!auth || strncasecmp(auth, prefix, strlen(prefix)) != 0)
        return false;
    auth += strlen(prefix);
    return crypto_equal(auth, strlen(auth), sim->token, strlen(sim->token));
}

/* Rolls the API fault dice: 0 none, 1 a 5xx answer, 2 a hang. */
static int roll_api_fault(struct hubspot_sim *sim, int *status)
{
    int fault = 0;

    pthread_mutex_lock(&sim->mu);
    if (sim->faults.api_5xx > 0 && rng_unit(&sim->rng) < sim->faults.api_5xx) {
        fault = 1;
        *status = rng_next(&sim->rng) % 2 ? 502 : 503;
        sim->faults_5xx++;
    } else if (sim->faults.api_timeout > 0 &&
               rng_unit(&sim->rng) < sim->faults.api_timeout) {
        fault = 2;
        sim->faults_timeout++;
    }
    pthread_mutex_unlock(&sim->mu);
    return fault;
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
    if (!authorised(sim, c->req)) {
        reply_error(c->resp, 401, "INVALID_AUTHENTICATION",
                    "Authentication credentials not found. This API supports "
                    "OAuth 2.0 authentication and you can find more details "
                    "at https://developers.hubspot.com/docs/methods/auth/"
                    "oauth-overview");
        return;
    }

    pthread_mutex_lock(&sim->mu);
    bool admitted = admit(sim, (enum call_kind)r.kind, c->resp);
    pthread_mutex_unlock(&sim->mu);
    if (!admitted)
        return;

    int fault = roll_api_fault(sim, &status);
    if (fault == 1) {
        reply_error(c->resp, status, "SERVICE_UNAVAILABLE",
                    "The service is temporarily unavailable.");
        return;
    }
    if (parse_body(c))
        r.fn(c);
    if (fault == 2) {
        clock_sleep_ms(HUBSPOT_SIM_HANG_MS);
        reply_error(c->resp, 504, "GATEWAY_TIMEOUT",
                    "The request timed out at the gateway.");
    }
}

/* ---- control endpoint ------------------------------------------------- */

static const struct sim_actor *ui_actor(const struct call *c,
                                        struct sim_actor *actor, char *buf)
{
    json_t *user = json_object_get(c->body, "userId");
    json_int_t uid =
        json_is_integer(user) ? json_integer_value(user) : SIM_USER_ID_BASE;
    if (json_is_string(user))
        uid = strtoll(json_string_value(user), NULL, 10);
    snprintf(buf, 48, "userId:%" JSON_INTEGER_FORMAT, uid);
    actor->source = SIM_SRC_CRM_UI;
    actor->source_id = buf;
    return actor;
}

static json_t *control_deal_json(const struct sim_deal *d)
{
    struct select all = {NULL, NULL, true};
    json_t *obj = deal_json(d, &all);
    if (d->merged_into) {
        char id[32];
        snprintf(id, sizeof(id), "%" PRIu64, d->merged_into);
        json_object_set_new(obj, "mergedInto", json_string(id));
    }
    return obj;
}

static void c_list_deals(struct call *c)
{
    json_t *results = json_array();
    struct sim_store *store = c->sim->store;

    sim_store_lock(store);
    for (size_t i = 0; i < sim_store_deal_count(store); i++)
        json_array_append_new(results,
                              control_deal_json(sim_store_deal_at(store, i)));
    sim_store_unlock(store);
    reply(c->resp, 200, json_pack("{s:o}", "results", results));
}

static void c_create_deal(struct call *c)
{
    struct sim_error err = {0};
    struct sim_write w;
    struct sim_actor actor;
    char user[48];
    struct sim_deal *deal = NULL;
    json_t *obj = NULL;

    if (!need_body(c))
        return;
    sim_store_lock(c->sim->store);
    if (sim_store_parse_write(c->sim->store,
                              json_object_get(c->body, "properties"), &w,
                              &err) == FS_OK) {
        if (sim_store_create(c->sim->store, &w, ui_actor(c, &actor, user),
                             &deal, &err) == FS_OK)
            obj = control_deal_json(deal);
        sim_write_clear(&w);
    }
    sim_store_unlock(c->sim->store);
    if (obj)
        reply(c->resp, 201, obj);
    else
        reply_sim_error(c->resp, &err);
    sim_error_clear(&err);
}

/* PATCH, DELETE and restore of one deal as a CRM user. */
static void c_change_deal(struct call *c, const char *what)
{
    struct sim_error err = {0};
    struct sim_write w;
    struct sim_actor actor;
    char user[48];
    json_t *obj = NULL;
    fs_result r = FS_OK;

    if (strcmp(what, "delete") != 0 && !need_body(c))
        return;
    ui_actor(c, &actor, user);
    sim_store_lock(c->sim->store);
    struct sim_deal *d = sim_store_find(c->sim->store, c->id, NULL);
    if (!d) {
        sim_error_set(&err, 404, "OBJECT_NOT_FOUND", "resource not found");
        r = FS_ERR_NOT_FOUND;
    } else if (strcmp(what, "delete") == 0) {
        sim_store_archive(c->sim->store, d, &actor);
    } else if (strcmp(what, "restore") == 0) {
        r = sim_store_restore(c->sim->store, d, &actor, &err);
    } else if (d->archived) {
        sim_error_set(&err, 404, "OBJECT_NOT_FOUND", "deal is archived");
        r = FS_ERR_NOT_FOUND;
    } else {
        r = sim_store_parse_write(
            c->sim->store, json_object_get(c->body, "properties"), &w, &err);
        if (r == FS_OK)
            r = sim_store_update(c->sim->store, d, &w, &actor, &err);
        sim_write_clear(&w);
    }
    if (r == FS_OK)
        obj = control_deal_json(d);
    sim_store_unlock(c->sim->store);
    if (obj)
        reply(c->resp, 200, obj);
    else
        reply_sim_error(c->resp, &err);
    sim_error_clear(&err);
}

static void c_get_deal(struct call *c)
{
    sim_store_lock(c->sim->store);
    struct sim_deal *d = sim_store_find(c->sim->store, c->id, NULL);
    json_t *obj = d ? control_deal_json(d) : NULL;
    sim_store_unlock(c->sim->store);
    if (obj)
        reply(c->resp, 200, obj);
    else
        reply_error(c->resp, 404, "OBJECT_NOT_FOUND", "resource not found");
}

static json_t *faults_json(struct hubspot_sim *sim)
{
    struct webhook_faults wf;
    webhook_sender_get_faults(sim->sender, &wf);
    pthread_mutex_lock(&sim->mu);
    json_t *obj = json_pack(
        "{s:f, s:f, s:b, s:I, s:f, s:f, s:b}", "drop", wf.drop, "duplicate",
        wf.duplicate, "reorder", wf.reorder, "delay_ms",
        (json_int_t)wf.delay_ms, "api_5xx", sim->faults.api_5xx, "api_timeout",
        sim->faults.api_timeout, "webhooks_paused", wf.paused);
    pthread_mutex_unlock(&sim->mu);
    return obj;
}

/* Reads an optional probability; false when present but out of [0, 1]. */
static bool read_prob(const json_t *body, const char *key, double *out)
{
    json_t *v = json_object_get(body, key);
    if (!v)
        return true;
    if (!json_is_number(v) || json_number_value(v) < 0 ||
        json_number_value(v) > 1)
        return false;
    *out = json_number_value(v);
    return true;
}

static bool read_bool(const json_t *body, const char *key, bool *out)
{
    json_t *v = json_object_get(body, key);
    if (!v)
        return true;
    if (!json_is_boolean(v))
        return false;
    *out = json_is_true(v);
    return true;
}

static void c_set_faults(struct call *c)
{
    struct webhook_faults wf;
    struct api_faults af;

    if (!need_body(c))
        return;
    webhook_sender_get_faults(c->sim->sender, &wf);
    pthread_mutex_lock(&c->sim->mu);
    af = c->sim->faults;
    pthread_mutex_unlock(&c->sim->mu);

    json_t *delay = json_object_get(c->body, "delay_ms");
    bool ok = read_prob(c->body, "drop", &wf.drop) &&
              read_prob(c->body, "duplicate", &wf.duplicate) &&
              read_prob(c->body, "api_5xx", &af.api_5xx) &&
              read_prob(c->body, "api_timeout", &af.api_timeout) &&
              read_bool(c->body, "reorder", &wf.reorder) &&
              read_bool(c->body, "webhooks_paused", &wf.paused);
    if (delay && (!json_is_integer(delay) || json_integer_value(delay) < 0 ||
                  json_integer_value(delay) > 600000))
        ok = false;
    if (!ok) {
        reply_error(c->resp, 400, "VALIDATION_ERROR",
                    "fault probabilities are numbers in [0, 1], reorder and "
                    "webhooks_paused booleans, delay_ms 0..600000");
        return;
    }
    if (delay)
        wf.delay_ms = json_integer_value(delay);
    webhook_sender_set_faults(c->sim->sender, &wf);
    pthread_mutex_lock(&c->sim->mu);
    c->sim->faults = af;
    pthread_mutex_unlock(&c->sim->mu);
    log_notice("event=faults_set drop=%.3f duplicate=%.3f reorder=%d "
               "delay_ms=%" PRId64 " api_5xx=%.3f api_timeout=%.3f paused=%d",
               wf.drop, wf.duplicate, wf.reorder, wf.delay_ms, af.api_5xx,
               af.api_timeout, wf.paused);
    reply(c->resp, 200, faults_json(c->sim));
}

static void c_stats(struct call *c)
{
    struct webhook_stats ws;
    json_t *kinds = json_object();
    struct hubspot_sim *sim = c->sim;

    webhook_sender_get_stats(sim->sender, &ws);
    pthread_mutex_lock(&sim->mu);
    for (int k = 0; k < KIND_COUNT; k++)
        json_object_set_new(kinds, kind_names[k],
                            json_integer(sim->by_kind[k]));
    json_t *obj = json_pack(
        "{s:I, s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
        "api_calls", (json_int_t)sim->api_calls, "api_calls_by_kind", kinds,
        "rate_limited", (json_int_t)sim->rate_limited, "api_faults_5xx",
        (json_int_t)sim->faults_5xx, "api_faults_timeout",
        (json_int_t)sim->faults_timeout, "webhooks_sent",
        (json_int_t)ws.webhooks_sent, "webhooks_failed",
        (json_int_t)ws.webhooks_failed, "webhooks_given_up",
        (json_int_t)ws.webhooks_given_up, "events_queued",
        (json_int_t)ws.events_queued, "events_sent", (json_int_t)ws.events_sent,
        "events_dropped", (json_int_t)ws.events_dropped, "events_duplicated",
        (json_int_t)ws.events_duplicated, "pending_deliveries",
        (json_int_t)ws.pending_deliveries);
    pthread_mutex_unlock(&sim->mu);
    reply(c->resp, 200, obj);
}

static void c_reset_stats(struct call *c)
{
    struct hubspot_sim *sim = c->sim;

    webhook_sender_reset_stats(sim->sender);
    pthread_mutex_lock(&sim->mu);
    sim->api_calls = 0;
    memset(sim->by_kind, 0, sizeof(sim->by_kind));
    sim->rate_limited = 0;
    sim->faults_5xx = 0;
    sim->faults_timeout = 0;
    pthread_mutex_unlock(&sim->mu);
    c_stats(c);
}

static void c_idle(struct call *c)
{
    bool idle = webhook_sender_idle(c->sim->sender);
    reply(c->resp, 200, json_pack("{s:b}", "idle", idle));
}

static void c_merge(struct call *c)
{
    struct sim_actor actor;
    char user[48];
    ui_actor(c, &actor, user);
    do_merge(c, &actor);
}

static void serve_control(struct call *c)
{
    const char *m = c->req->method;
    bool get = strcmp(m, "GET") == 0;
    bool post = strcmp(m, "POST") == 0;

    if (!parse_body(c))
        return;
    if (seg_is(c, 1, "deals") && c->nseg == 2) {
        if (get)
            c_list_deals(c);
        else if (post)
            c_create_deal(c);
        else
            goto not_allowed;
        return;
    }
    if (seg_is(c, 1, "deals") && c->nseg == 3) {
        c->id = c->seg[2];
        if (get)
            c_get_deal(c);
        else if (strcmp(m, "PATCH") == 0)
            c_change_deal(c, "update");
        else if (strcmp(m, "DELETE") == 0)
            c_change_deal(c, "delete");
        else
            goto not_allowed;
        return;
    }
    if (seg_is(c, 1, "deals") && c->nseg == 4 && seg_is(c, 3, "restore")) {
        c->id = c->seg[2];
        if (!post)
            goto not_allowed;
        c_change_deal(c, "restore");
        return;
    }
    if (seg_is(c, 1, "merge") && c->nseg == 2) {
        if (!post)
            goto not_allowed;
        c_merge(c);
        return;
    }
    if (seg_is(c, 1, "faults") && c->nseg == 2) {
        if (get)
            reply(c->resp, 200, faults_json(c->sim));
        else if (post)
            c_set_faults(c);
        else
            goto not_allowed;
        return;
    }
    if (seg_is(c, 1, "stats") && c->nseg == 2 && get) {
        c_stats(c);
        return;
    }
    if (seg_is(c, 1, "stats") && seg_is(c, 2, "reset") && c->nseg == 3 &&
        post) {
        c_reset_stats(c);
        return;
    }
    if (seg_is(c, 1, "idle") && c->nseg == 2 && get) {
        c_idle(c);
        return;
    }
    reply_error(c->resp, 404, "OBJECT_NOT_FOUND", "no such control resource");
    return;
not_allowed:
    reply_error(c->resp, 405, "METHOD_NOT_ALLOWED",
                "method not allowed on this resource");
}

void hubspot_sim_on_request(void *ctx, const struct http_request *req,
                            struct http_response *resp)
{
    struct call c = {.sim = ctx, .req = req, .resp = resp};
    int64_t started = clock_mono_ms();

    c.path_copy = xstrdup(req->path);
    split_path(&c);
    if (seg_is(&c, 0, "_sim"))
        serve_control(&c);
    else
        serve_api(&c);
    log_info("event=request method=%s path=%s status=%d ms=%" PRId64,
             req->method, req->path, resp->status, clock_mono_ms() - started);
    json_decref(c.body);
    free(c.path_copy);
}

struct hubspot_sim *hubspot_sim_new(const struct hubspot_sim_config *config,
                                    struct sim_store *store,
                                    struct webhook_sender *sender)
{
    struct hubspot_sim *sim = xcalloc(1, sizeof(*sim));

    sim->config = *config;
    sim->token = xstrdup(config->token);
    sim->config.token = NULL;
    sim->store = store;
    sim->sender = sender;
    sim->rng = config->seed ^ 0x5DEECE66DULL;
    pthread_mutex_init(&sim->mu, NULL);
    window_init(&sim->ten_secondly, config->rate_10s, 10000);
    window_init(&sim->secondly_search, config->search_per_s, 1000);
    sim->day = clock_now_ms() / DAY_MS;
    return sim;
}

void hubspot_sim_free(struct hubspot_sim *sim)
{
    if (!sim)
        return;
    free(sim->ten_secondly.stamps);
    free(sim->secondly_search.stamps);
    pthread_mutex_destroy(&sim->mu);
    free(sim->token);
    free(sim);
}
