/* The simulated Attio REST v2 API over the neutral simulator core: the
 * deals object's records (query, read, create, assert, update, delete,
 * value history), its attributes and statuses, workspace members, the
 * token, and webhooks; Attio's error bodies and its read and write
 * limits with an HTTP-date Retry-After; and the `crmsim attio` command. */
#include "attio_sim.h"

#include "sim_control.h"
#include "sim_limits.h"
#include "sim_serve.h"
#include "sim_util.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "base/crypto.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* The most one query page holds (Attio's default page). */
#define QUERY_LIMIT_MAX 500
#define FILTER_DEPTH_MAX 4
#define IN_VALUES_MAX 1000
#define SUBSCRIPTIONS_MAX 50
#define WEBHOOK_ID "5b1f0d2e-0000-4000-8000-000000000001"

enum call_kind {
    KIND_QUERY,
    KIND_GET,
    KIND_VALUES,
    KIND_CREATE,
    KIND_ASSERT,
    KIND_UPDATE,
    KIND_DELETE,
    KIND_OBJECTS,
    KIND_ATTRIBUTES,
    KIND_STATUSES,
    KIND_MEMBERS,
    KIND_SELF,
    KIND_WEBHOOKS,
    KIND_WEBHOOK_WRITE,
    KIND_COUNT,
};

static const struct sim_call_kind call_kinds[KIND_COUNT] = {
    [KIND_QUERY] = {"query", SIM_CALL_READ},
    [KIND_GET] = {"get", SIM_CALL_READ},
    [KIND_VALUES] = {"values", SIM_CALL_READ},
    [KIND_CREATE] = {"create", SIM_CALL_WRITE},
    [KIND_ASSERT] = {"assert", SIM_CALL_WRITE},
    [KIND_UPDATE] = {"update", SIM_CALL_WRITE},
    [KIND_DELETE] = {"delete", SIM_CALL_WRITE},
    [KIND_OBJECTS] = {"objects", SIM_CALL_META},
    [KIND_ATTRIBUTES] = {"attributes", SIM_CALL_META},
    [KIND_STATUSES] = {"statuses", SIM_CALL_META},
    [KIND_MEMBERS] = {"workspace_members", SIM_CALL_META},
    [KIND_SELF] = {"self", SIM_CALL_META},
    [KIND_WEBHOOKS] = {"webhooks", SIM_CALL_META},
    [KIND_WEBHOOK_WRITE] = {"webhook_write", SIM_CALL_META},
};

static bool is_write(enum call_kind k)
{
    return k == KIND_CREATE || k == KIND_ASSERT || k == KIND_UPDATE ||
           k == KIND_DELETE || k == KIND_WEBHOOK_WRITE;
}

/* The deal stage's statuses: the seed CSV's four stages. */
static const struct sim_stage stages[] = {
    {"57a70000-0000-4000-8000-000000000001", "Prospecting", "Prospecting", 0.1,
     false},
    {"57a70000-0000-4000-8000-000000000002", "Engaging", "Engaging", 0.4,
     false},
    {"57a70000-0000-4000-8000-000000000003", "Won", "Won", 1.0, true},
    {"57a70000-0000-4000-8000-000000000004", "Lost", "Lost", 0.0, true},
};

static const struct sim_pipeline pipeline = {
    "stage", "Deal stage", stages, sizeof(stages) / sizeof(stages[0])};

struct attio_sim_config {
    const char *token;
    const char *token_id;
    const char *webhook_secret;
    int reads_per_s;
    int writes_per_s;
    const char *omit[ATTIO_SIM_OMIT_MAX];
    size_t omit_count;
};

struct attio_sim {
    struct attio_sim_config config;
    struct attio_sim_object obj;
    struct sim_store *store;
    struct sim_control *control;
    struct webhook_sender *sender;

    pthread_mutex_t mu; /* guards the limits */
    struct sim_window reads;
    struct sim_window writes;
};

struct call {
    struct attio_sim *sim;
    const struct http_request *req;
    struct http_response *resp;
    struct sim_path path;
    const char *id;   /* record, member or webhook id */
    const char *attr; /* attribute slug or id */
    json_t *body;
};

typedef void (*handler_fn)(struct call *c);

/* ---- answers ---- */

static void reply_error(struct http_response *resp, int status,
                        const char *type, const char *code, const char *message)
{
    sim_reply(resp, status,
              json_pack("{s:i, s:s, s:s, s:s}", "status_code", status, "type",
                        type, "code", code, "message", message));
}

static void reply_invalid(struct http_response *resp, const char *code,
                          const char *message)
{
    reply_error(resp, 400, "invalid_request_error", code, message);
}

static void reply_not_found(struct http_response *resp, const char *what,
                            const char *id)
{
    char *message = xasprintf("%s with ID \"%s\" not found.", what, id);
    reply_error(resp, 404, "invalid_request_error", "not_found", message);
    free(message);
}

static void reply_data(struct http_response *resp, json_t *data)
{
    sim_reply(resp, 200, json_pack("{s:o}", "data", data));
}

static struct sim_actor api_actor(const struct attio_sim *sim)
{
    return (struct sim_actor){SIM_ACTOR_TOKEN, sim->config.token_id};
}

/* ---- limits ---- */

/* When the window lets a call in again, as the HTTP-date of the next
 * whole second (Attio's Retry-After). */
static void retry_after(const struct sim_window *w, int64_t now, char out[40])
{
    int64_t free_at = now + 1000;
    if (w->count > 0)
        free_at = w->stamps[w->head] + w->length_ms;
    time_t secs = (time_t)((free_at + 999) / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(out, 40, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

static bool admit(struct attio_sim *sim, enum call_kind kind,
                  struct http_response *resp)
{
    int64_t now = clock_now_ms();
    struct sim_window *w = is_write(kind) ? &sim->writes : &sim->reads;
    char when[40];

    pthread_mutex_lock(&sim->mu);
    bool ok = sim_window_take(w, now);
    if (!ok)
        retry_after(w, now, when);
    pthread_mutex_unlock(&sim->mu);
    sim_control_count_call(sim->control, kind, !ok);
    if (!ok) {
        reply_error(resp, 429, "rate_limit_error", "rate_limit_exceeded",
                    "Rate limit exceeded, please try again later");
        http_response_add_header(resp, "Retry-After", when);
    }
    return ok;
}

/* ---- records ---- */

/* A live deal with exactly that id (deleted and merged-away records are
 * gone from Attio). Store locked. */
static struct sim_deal *live_deal(struct attio_sim *sim, const char *id)
{
    struct sim_deal *d = sim_store_find(sim->store, id);
    return d && !d->archived ? d : NULL;
}

/* The values of a write into w; false after answering the error. */
static bool take_values(struct call *c, json_t *values, struct sim_write *w)
{
    const char *key;
    json_t *v;

    if (!json_is_object(values)) {
        reply_invalid(c->resp, "validation_type",
                      "Body payload validation error: data.values must be an "
                      "object.");
        return false;
    }
    json_object_foreach(values, key, v)
    {
        const struct attio_sim_attr *a =
            attio_sim_attr_named(&c->sim->obj, key);
        char *message = NULL;
        if (!a) {
            message =
                xasprintf("Cannot find attribute with slug/ID \"%s\".", key);
            reply_invalid(c->resp, "value_not_found", message);
            free(message);
            return false;
        }
        const char *code =
            attio_sim_take(&c->sim->obj, c->sim->store, a, v, w, &message);
        if (code) {
            reply_invalid(c->resp, code, message);
            free(message);
            return false;
        }
    }
    return true;
}

static json_t *body_values(struct call *c)
{
    json_t *data = json_object_get(c->body, "data");
    json_t *values = json_object_get(data, "values");

    if (!json_is_object(data) || !values) {
        reply_invalid(c->resp, "validation_type",
                      "Body payload validation error: data.values is "
                      "required.");
        return NULL;
    }
    return values;
}

static void reply_record(struct call *c, const struct sim_deal *d)
{
    reply_data(c->resp, attio_sim_record_json(&c->sim->obj, d));
}

static void uniqueness_error(struct call *c, const struct sim_deal *clash)
{
    char *message = xasprintf("A record with the same value for unique "
                              "attribute \"fieldsync_id\" already exists "
                              "(record \"%s\").",
                              clash ? clash->id : "?");
    reply_invalid(c->resp, "uniqueness_conflict", message);
    free(message);
}

/* Creates from w, the stage defaulting to the first status. Store
 * locked. */
static void create_from(struct call *c, struct sim_write *w)
{
    struct sim_actor actor = api_actor(c->sim);
    struct sim_deal *d = NULL, *clash = NULL;
    enum sim_bad why;

    if (!w->values[DEAL_NAME] || !*w->values[DEAL_NAME]) {
        reply_invalid(c->resp, "missing_value",
                      "Required value for attribute with slug \"name\" was "
                      "not provided.");
        return;
    }
    if (!w->values[DEAL_STAGE] || !*w->values[DEAL_STAGE])
        sim_write_set(c->sim->store, w, DEAL_STAGE, stages[0].id, &why);
    if (sim_store_create(c->sim->store, w, &actor, &d, &clash) != FS_OK)
        uniqueness_error(c, clash);
    else
        reply_record(c, d);
}

static void h_create(struct call *c)
{
    json_t *values = body_values(c);
    struct sim_write w = {{NULL}};

    if (!values)
        return;
    sim_store_lock(c->sim->store);
    if (take_values(c, values, &w))
        create_from(c, &w);
    sim_store_unlock(c->sim->store);
    sim_write_clear(&w);
}

static void update_with(struct call *c, struct sim_deal *d, struct sim_write *w)
{
    struct sim_actor actor = api_actor(c->sim);
    struct sim_deal *clash = NULL;

    if (w->values[DEAL_NAME] && !*w->values[DEAL_NAME]) {
        reply_invalid(c->resp, "missing_value",
                      "Required value for attribute with slug \"name\" cannot "
                      "be removed.");
        return;
    }
    if (sim_store_update(c->sim->store, d, w, &actor, &clash) != FS_OK)
        uniqueness_error(c, clash);
    else
        reply_record(c, d);
}

/* PUT /records?matching_attribute=: updates the record holding the
 * unique value, or creates one. */
static void h_assert(struct call *c)
{
    const char *matching = http_request_query(c->req, "matching_attribute");
    json_t *values = body_values(c);
    struct sim_write w = {{NULL}};

    if (!values)
        return;
    const struct attio_sim_attr *a =
        attio_sim_attr_named(&c->sim->obj, matching ? matching : "");
    if (!a || !a->unique) {
        char *message = xasprintf("Matching attribute \"%s\" is not a unique "
                                  "attribute of this object.",
                                  matching ? matching : "");
        reply_invalid(c->resp, "validation_type", message);
        free(message);
        return;
    }
    sim_store_lock(c->sim->store);
    if (!take_values(c, values, &w))
        goto out;
    const char *key = w.values[a->field];
    if (!key || !*key) {
        reply_invalid(c->resp, "missing_value",
                      "The matching attribute must have a value.");
        goto out;
    }
    struct sim_deal *d = sim_store_find_our_id(c->sim->store, key);
    if (d && !d->archived)
        update_with(c, d, &w);
    else
        create_from(c, &w);
out:
    sim_store_unlock(c->sim->store);
    sim_write_clear(&w);
}

static void h_update(struct call *c)
{
    json_t *values = body_values(c);
    struct sim_write w = {{NULL}};

    if (!values)
        return;
    sim_store_lock(c->sim->store);
    struct sim_deal *d = live_deal(c->sim, c->id);
    if (!d)
        reply_not_found(c->resp, "Record", c->id);
    else if (take_values(c, values, &w))
        update_with(c, d, &w);
    sim_store_unlock(c->sim->store);
    sim_write_clear(&w);
}

static void h_get(struct call *c)
{
    sim_store_lock(c->sim->store);
    struct sim_deal *d = live_deal(c->sim, c->id);
    if (d)
        reply_record(c, d);
    else
        reply_not_found(c->resp, "Record", c->id);
    sim_store_unlock(c->sim->store);
}

static void h_delete(struct call *c)
{
    struct sim_actor actor = api_actor(c->sim);

    sim_store_lock(c->sim->store);
    struct sim_deal *d = live_deal(c->sim, c->id);
    if (d) {
        sim_store_delete(c->sim->store, d, &actor);
        sim_reply(c->resp, 200, json_object());
    } else {
        reply_not_found(c->resp, "Record", c->id);
    }
    sim_store_unlock(c->sim->store);
}

static void h_values(struct call *c)
{
    const char *historic = http_request_query(c->req, "show_historic");
    const struct attio_sim_attr *a =
        attio_sim_attr_named(&c->sim->obj, c->attr);

    if (!a) {
        reply_not_found(c->resp, "Attribute", c->attr);
        return;
    }
    sim_store_lock(c->sim->store);
    struct sim_deal *d = live_deal(c->sim, c->id);
    if (d)
        reply_data(c->resp, attio_sim_values_json(
                                &c->sim->obj, d, a,
                                historic && strcmp(historic, "true") == 0));
    else
        reply_not_found(c->resp, "Record", c->id);
    sim_store_unlock(c->sim->store);
}

/* ---- queries ---- */

/* A deal's value for filtering: text of the attribute, or its id. */
static const char *filter_value(const struct attio_sim_attr *a,
                                const struct sim_deal *d)
{
    if (!a)
        return d->id;
    return sim_deal_value(d, a->field);
}

static bool value_is(const struct attio_sim_attr *a, const char *have,
                     const json_t *want)
{
    const char *w = json_string_value(want);
    char buf[40];

    if (!have || !w)
        return false;
    if (strcmp(have, w) == 0)
        return true;
    if (a && a->type == ATTIO_SIM_STATUS) {
        for (size_t i = 0; i < pipeline.stage_count; i++)
            if (strcmp(stages[i].id, have) == 0 &&
                strcmp(stages[i].label, w) == 0)
                return true;
    }
    (void)buf;
    return false;
}

/* A filter checked once against the object, then matched per deal. */
static const char *check_filter(const struct attio_sim_object *o, json_t *f,
                                int depth)
{
    const char *key;
    json_t *v;

    if (!json_is_object(f) || depth > FILTER_DEPTH_MAX)
        return "Filters must be objects nested at most a few deep.";
    json_object_foreach(f, key, v)
    {
        if (strcmp(key, "$and") == 0 || strcmp(key, "$or") == 0) {
            size_t i;
            json_t *sub;
            if (!json_is_array(v))
                return "$and and $or take a list of filters.";
            json_array_foreach(v, i, sub)
            {
                const char *err = check_filter(o, sub, depth + 1);
                if (err)
                    return err;
            }
            continue;
        }
        const struct attio_sim_attr *a = attio_sim_attr_named(o, key);
        if (strcmp(key, "record_id") != 0 &&
            (!a || a->type == ATTIO_SIM_LOCATION))
            return "The simulator filters on record_id and on text, date, "
                   "status, currency and actor attributes only.";
        if (json_is_string(v))
            continue;
        const json_t *eq = json_object_get(v, "$eq");
        const json_t *in = json_object_get(v, "$in");
        if (!json_is_object(v) || json_object_size(v) != 1 ||
            (!json_is_string(eq) &&
             (!json_is_array(in) || json_array_size(in) > IN_VALUES_MAX)))
            return "Unsupported filter condition: use a value, $eq or $in.";
    }
    return NULL;
}

static bool filter_match(const struct attio_sim_object *o, json_t *f,
                         const struct sim_deal *d)
{
    const char *key;
    json_t *v;

    json_object_foreach(f, key, v)
    {
        bool ok = false;
        size_t i;
        json_t *sub;
        if (strcmp(key, "$and") == 0 || strcmp(key, "$or") == 0) {
            bool all = key[1] == 'a';
            ok = all;
            json_array_foreach(v, i, sub)
            {
                bool m = filter_match(o, sub, d);
                ok = all ? ok && m : ok || m;
            }
        } else {
            const struct attio_sim_attr *a = strcmp(key, "record_id") == 0
                                                 ? NULL
                                                 : attio_sim_attr_named(o, key);
            const char *have = filter_value(a, d);
            const json_t *in = json_object_get(v, "$in");
            if (json_is_string(v))
                ok = value_is(a, have, v);
            else if (json_object_get(v, "$eq"))
                ok = value_is(a, have, json_object_get(v, "$eq"));
            json_array_foreach(in, i, sub) ok = ok || value_is(a, have, sub);
        }
        if (!ok)
            return false;
    }
    return true;
}

struct ranked {
    struct sim_deal *deal;
    size_t index;
};

static int by_created(const void *a, const void *b, void *ctx)
{
    const struct ranked *x = a, *y = b;
    int dir = *(const int *)ctx;
    int c = 0;

    if (x->deal->created_ms != y->deal->created_ms)
        c = x->deal->created_ms < y->deal->created_ms ? -1 : 1;
    else
        c = x->index < y->index ? -1 : x->index > y->index;
    return c * dir;
}

static int by_id(const void *a, const void *b, void *ctx)
{
    const struct ranked *x = a, *y = b;
    return strcmp(x->deal->id, y->deal->id) * *(const int *)ctx;
}

/* Parses sorts: creation order unless sorted by created_at or
 * record_id. NULL, or the error. */
static const char *parse_sorts(const json_t *sorts, bool *by_record_id,
                               int *dir)
{
    const json_t *s = json_array_get(sorts, 0);

    *by_record_id = false;
    *dir = 1;
    if (!sorts || json_is_null(sorts))
        return NULL;
    if (!json_is_array(sorts) || json_array_size(sorts) > 1)
        return "The simulator sorts by one attribute at most.";
    if (!s)
        return NULL;
    const char *attr = json_string_value(json_object_get(s, "attribute"));
    const char *direction = json_string_value(json_object_get(s, "direction"));
    if (!attr || !direction ||
        (strcmp(direction, "asc") != 0 && strcmp(direction, "desc") != 0))
        return "A sort needs an attribute and a direction (asc or desc).";
    if (strcmp(attr, "created_at") != 0 && strcmp(attr, "record_id") != 0)
        return "The simulator sorts by created_at or record_id only.";
    *by_record_id = strcmp(attr, "record_id") == 0;
    *dir = strcmp(direction, "desc") == 0 ? -1 : 1;
    return NULL;
}

static bool number_in(const json_t *v, int64_t lo, int64_t hi, int64_t *out)
{
    double d;

    if (!v || json_is_null(v))
        return true;
    if (!json_is_number(v))
        return false;
    d = json_number_value(v);
    if (d < (double)lo || d > (double)hi || d != (double)(int64_t)d)
        return false;
    *out = (int64_t)d;
    return true;
}

static void h_query(struct call *c)
{
    json_t *filter = json_object_get(c->body, "filter");
    int64_t limit = QUERY_LIMIT_MAX, offset = 0;
    bool by_record_id;
    int dir;
    const char *err = NULL;

    if (c->body && !json_is_object(c->body))
        err = "Body must be a JSON object.";
    else if (!number_in(json_object_get(c->body, "limit"), 1, QUERY_LIMIT_MAX,
                        &limit) ||
             !number_in(json_object_get(c->body, "offset"), 0, INT32_MAX,
                        &offset))
        err = "limit is 1 to 500 and offset a whole number from 0.";
    if (err) {
        reply_invalid(c->resp, "validation_type", err);
        return;
    }
    if (filter && !json_is_null(filter))
        err = check_filter(&c->sim->obj, filter, 0);
    if (!err)
        err =
            parse_sorts(json_object_get(c->body, "sorts"), &by_record_id, &dir);
    if (err) {
        reply_invalid(c->resp, "filter_error", err);
        return;
    }

    sim_store_lock(c->sim->store);
    size_t n = sim_store_deal_count(c->sim->store), kept = 0;
    struct ranked *rows = xcalloc(n ? n : 1, sizeof(*rows));
    for (size_t i = 0; i < n; i++) {
        struct sim_deal *d = sim_store_deal_at(c->sim->store, i);
        if (d->archived || (filter && !json_is_null(filter) &&
                            !filter_match(&c->sim->obj, filter, d)))
            continue;
        rows[kept++] = (struct ranked){d, i};
    }
    qsort_r(rows, kept, sizeof(*rows), by_record_id ? by_id : by_created, &dir);
    json_t *data = json_array();
    for (size_t i = (size_t)offset; i < kept && i < (size_t)(offset + limit);
         i++)
        json_array_append_new(
            data, attio_sim_record_json(&c->sim->obj, rows[i].deal));
    sim_store_unlock(c->sim->store);
    free(rows);
    reply_data(c->resp, data);
}

/* ---- the object, members, token ---- */

static json_t *object_json(void)
{
    char buf[40];
    return json_pack("{s:{s:s, s:s}, s:s, s:s, s:s, s:s}", "id", "workspace_id",
                     ATTIO_SIM_WORKSPACE, "object_id", ATTIO_SIM_OBJECT,
                     "api_slug", "deals", "singular_noun", "Deal",
                     "plural_noun", "Deals", "created_at",
                     attio_sim_time(0, buf));
}

static void h_objects(struct call *c)
{
    if (c->path.count == 2)
        reply_data(c->resp, json_pack("[o]", object_json()));
    else
        reply_data(c->resp, object_json());
}

static void h_attributes(struct call *c)
{
    if (c->attr) {
        const struct attio_sim_attr *a =
            attio_sim_attr_named(&c->sim->obj, c->attr);
        if (a)
            reply_data(c->resp, attio_sim_attr_json(a));
        else
            reply_not_found(c->resp, "Attribute", c->attr);
        return;
    }
    json_t *data = json_array();
    for (size_t i = 0; i < attio_sim_attr_count; i++) {
        if (attio_sim_has(&c->sim->obj, &attio_sim_attrs[i]))
            json_array_append_new(data,
                                  attio_sim_attr_json(&attio_sim_attrs[i]));
    }
    reply_data(c->resp, data);
}

static void h_statuses(struct call *c)
{
    const struct attio_sim_attr *a =
        attio_sim_attr_named(&c->sim->obj, c->attr);

    if (!a || a->type != ATTIO_SIM_STATUS) {
        reply_not_found(c->resp, "Attribute", c->attr);
        return;
    }
    json_t *data = json_array();
    for (size_t i = 0; i < pipeline.stage_count; i++)
        json_array_append_new(data, attio_sim_status_json(&stages[i]));
    reply_data(c->resp, data);
}

static json_t *member_json(const struct sim_owner *o)
{
    char buf[40];
    return json_pack("{s:{s:s, s:s}, s:s, s:s, s:n, s:s, s:s, s:s}", "id",
                     "workspace_id", ATTIO_SIM_WORKSPACE, "workspace_member_id",
                     o->id, "first_name", o->first_name ? o->first_name : "",
                     "last_name", o->last_name ? o->last_name : "",
                     "avatar_url", "email_address", o->email, "created_at",
                     attio_sim_time(0, buf), "access_level", "member");
}

static void h_members(struct call *c)
{
    sim_store_lock(c->sim->store);
    if (c->id) {
        const struct sim_owner *o = sim_store_owner_find(c->sim->store, c->id);
        if (o)
            reply_data(c->resp, member_json(o));
        else
            reply_not_found(c->resp, "Workspace member", c->id);
    } else {
        json_t *data = json_array();
        for (size_t i = 0; i < sim_store_owner_count(c->sim->store); i++)
            json_array_append_new(
                data, member_json(sim_store_owner_at(c->sim->store, i)));
        reply_data(c->resp, data);
    }
    sim_store_unlock(c->sim->store);
}

static void h_self(struct call *c)
{
    const char *member = NULL;

    sim_store_lock(c->sim->store);
    if (sim_store_owner_count(c->sim->store) > 0)
        member = sim_store_owner_at(c->sim->store, 0)->id;
    json_t *self = json_pack(
        "{s:b, s:s, s:s, s:s, s:n, s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:s, "
        "s:n}",
        "active", true, "scope",
        "record_permission:read-write object_configuration:read "
        "user_management:read webhook:read-write",
        "client_id", "crmsim", "token_type", "Bearer", "exp", "iat", 1796000000,
        "sub", ATTIO_SIM_WORKSPACE, "aud", "crmsim", "iss", "attio.com",
        "authorized_by_workspace_member_id",
        member ? member : ATTIO_SIM_WORKSPACE, "workspace_id",
        ATTIO_SIM_WORKSPACE, "workspace_name", "crmsim", "workspace_slug",
        "crmsim", "workspace_logo_url");
    sim_store_unlock(c->sim->store);
    sim_reply(c->resp, 200, self);
}

/* ---- webhooks ---- */

static bool loopback_or_https(const char *url)
{
    return strncmp(url, "https://", 8) == 0 ||
           strncmp(url, "http://127.0.0.1", 16) == 0 ||
           strncmp(url, "http://localhost", 16) == 0;
}

/* Checks the subscriptions: known record event types, filters of
 * conditions. */
static const char *check_subscriptions(const json_t *subs)
{
    size_t i;
    const json_t *s;

    if (!json_is_array(subs) || json_array_size(subs) == 0 ||
        json_array_size(subs) > SUBSCRIPTIONS_MAX)
        return "subscriptions must be a list of 1 to 50 subscriptions.";
    json_array_foreach(subs, i, s)
    {
        const char *type = json_string_value(json_object_get(s, "event_type"));
        const json_t *filter = json_object_get(s, "filter");
        if (!type || !filter)
            return "Each subscription needs an event_type and a filter "
                   "(null for none).";
        if (!json_is_null(filter) &&
            !json_is_array(json_object_get(filter, "$and")) &&
            !json_is_array(json_object_get(filter, "$or")))
            return "A filter is null or {\"$and\"|\"$or\": [...]}.";
    }
    return NULL;
}

static void h_webhook_create(struct call *c)
{
    const json_t *data = json_object_get(c->body, "data");
    const char *url = json_string_value(json_object_get(data, "target_url"));
    const json_t *subs = json_object_get(data, "subscriptions");
    const char *err = check_subscriptions(subs);
    struct attio_sim_object *o = &c->sim->obj;
    char buf[40];

    if (!url || !loopback_or_https(url))
        err = "target_url must be an https URL (the simulator also takes "
              "http on loopback).";
    if (err) {
        reply_invalid(c->resp, "validation_type", err);
        return;
    }
    char *id = sim_uuid_new();
    char *secret = crypto_random_hex(32);
    json_t *hook =
        json_pack("{s:s, s:O, s:{s:s, s:s}, s:s, s:s}", "target_url", url,
                  "subscriptions", subs, "id", "workspace_id",
                  ATTIO_SIM_WORKSPACE, "webhook_id", id, "status", "active",
                  "created_at", attio_sim_time(clock_now_ms(), buf));

    pthread_mutex_lock(&o->mu);
    free(o->webhook_id);
    free(o->secret);
    free(o->target_url);
    json_decref(o->subscriptions);
    json_decref(o->webhook_json);
    o->webhook_id = id;
    o->secret = secret;
    o->target_url = xstrdup(url);
    o->subscriptions = json_deep_copy(subs);
    o->webhook_json = json_incref(hook);
    pthread_mutex_unlock(&o->mu);
    webhook_sender_set_url(c->sim->sender, url);

    json_t *answer = json_deep_copy(hook);
    json_object_set_new(answer, "secret", json_string(secret));
    json_decref(hook);
    reply_data(c->resp, answer);
}

static void h_webhooks(struct call *c)
{
    struct attio_sim_object *o = &c->sim->obj;
    const char *m = c->req->method;

    if (strcmp(m, "POST") == 0) {
        h_webhook_create(c);
        return;
    }
    pthread_mutex_lock(&o->mu);
    bool ours = c->id && o->webhook_json && strcmp(c->id, o->webhook_id) == 0;
    if (!c->id) {
        json_t *list = json_array();
        if (o->webhook_json)
            json_array_append(list, o->webhook_json);
        reply_data(c->resp, list);
    } else if (!ours) {
        reply_not_found(c->resp, "Webhook", c->id);
    } else if (strcmp(m, "DELETE") == 0) {
        /* Nothing is delivered any more. */
        json_decref(o->subscriptions);
        o->subscriptions = json_array();
        json_decref(o->webhook_json);
        o->webhook_json = NULL;
        sim_reply(c->resp, 200, json_object());
    } else {
        reply_data(c->resp, json_incref(o->webhook_json));
    }
    pthread_mutex_unlock(&o->mu);
}

/* ---- routing ---- */

struct route {
    handler_fn fn;
    enum call_kind kind;
    int status; /* 404 or 405 when fn is NULL */
};

static struct route pick(const char *method, const char *want, handler_fn fn,
                         enum call_kind kind)
{
    if (strcmp(method, want) == 0)
        return (struct route){fn, kind, 0};
    return (struct route){NULL, kind, 405};
}

static const struct route not_found = {NULL, KIND_COUNT, 404};

static bool is_object(const char *seg)
{
    return strcmp(seg, "deals") == 0 || strcmp(seg, ATTIO_SIM_OBJECT) == 0;
}

static struct route route_records(struct call *c, const char *m)
{
    const struct sim_path *p = &c->path;

    if (p->count == 4) {
        if (strcmp(m, "POST") == 0)
            return pick(m, "POST", h_create, KIND_CREATE);
        return pick(m, "PUT", h_assert, KIND_ASSERT);
    }
    if (p->count == 5 && sim_path_is(p, 4, "query"))
        return pick(m, "POST", h_query, KIND_QUERY);
    if (p->count == 5) {
        c->id = p->seg[4];
        if (strcmp(m, "GET") == 0)
            return pick(m, "GET", h_get, KIND_GET);
        if (strcmp(m, "PATCH") == 0 || strcmp(m, "PUT") == 0)
            return pick(m, m, h_update, KIND_UPDATE);
        return pick(m, "DELETE", h_delete, KIND_DELETE);
    }
    if (p->count == 8 && sim_path_is(p, 5, "attributes") &&
        sim_path_is(p, 7, "values")) {
        c->id = p->seg[4];
        c->attr = p->seg[6];
        return pick(m, "GET", h_values, KIND_VALUES);
    }
    return not_found;
}

static struct route route_api(struct call *c, const char *m)
{
    const struct sim_path *p = &c->path;

    if (!sim_path_is(p, 0, "v2"))
        return not_found;
    if (sim_path_is(p, 1, "self") && p->count == 2)
        return pick(m, "GET", h_self, KIND_SELF);
    if (sim_path_is(p, 1, "workspace_members") && p->count <= 3) {
        c->id = p->count == 3 ? p->seg[2] : NULL;
        return pick(m, "GET", h_members, KIND_MEMBERS);
    }
    if (sim_path_is(p, 1, "webhooks") && p->count <= 3) {
        c->id = p->count == 3 ? p->seg[2] : NULL;
        bool write = strcmp(m, "POST") == 0 || strcmp(m, "DELETE") == 0;
        if ((p->count == 2 && strcmp(m, "POST") != 0 &&
             strcmp(m, "GET") != 0) ||
            (p->count == 3 && strcmp(m, "DELETE") != 0 &&
             strcmp(m, "GET") != 0))
            return (struct route){NULL, KIND_WEBHOOKS, 405};
        return (struct route){h_webhooks,
                              write ? KIND_WEBHOOK_WRITE : KIND_WEBHOOKS, 0};
    }
    if (!sim_path_is(p, 1, "objects"))
        return not_found;
    if (p->count == 2)
        return pick(m, "GET", h_objects, KIND_OBJECTS);
    if (!is_object(p->seg[2]))
        return not_found;
    if (p->count == 3)
        return pick(m, "GET", h_objects, KIND_OBJECTS);
    if (sim_path_is(p, 3, "records"))
        return route_records(c, m);
    if (sim_path_is(p, 3, "attributes") && p->count <= 6) {
        c->attr = p->count >= 5 ? p->seg[4] : NULL;
        if (p->count == 6 && sim_path_is(p, 5, "statuses"))
            return pick(m, "GET", h_statuses, KIND_STATUSES);
        if (p->count <= 5)
            return pick(m, "GET", h_attributes, KIND_ATTRIBUTES);
    }
    return not_found;
}

static bool parse_body(struct call *c)
{
    json_error_t jerr;

    if (c->req->body_len == 0)
        return true;
    c->body = json_loadb(c->req->body, c->req->body_len, 0, &jerr);
    if (c->body)
        return true;
    char *msg = xasprintf("Body is not valid JSON (line %d, column %d).",
                          jerr.line, jerr.column);
    reply_invalid(c->resp, "validation_type", msg);
    free(msg);
    return false;
}

static void serve_api(struct call *c)
{
    struct attio_sim *sim = c->sim;
    struct route r = route_api(c, c->req->method);
    int status = 0;

    if (!r.fn) {
        if (r.status == 404)
            reply_error(c->resp, 404, "invalid_request_error", "not_found",
                        "Route not found.");
        else
            reply_error(c->resp, 405, "invalid_request_error",
                        "method_not_allowed", "Method not allowed.");
        return;
    }
    if (!sim_bearer_ok(c->req, sim->config.token)) {
        reply_error(c->resp, 401, "auth_error", "unauthorized",
                    "Authentication failed: the access token is missing or "
                    "invalid.");
        return;
    }
    if (!admit(sim, r.kind, c->resp))
        return;
    enum sim_api_fault fault = sim_control_roll_fault(sim->control, &status);
    if (fault == SIM_FAULT_5XX) {
        reply_error(c->resp, status, "api_error", "service_unavailable",
                    "The service is temporarily unavailable.");
        return;
    }
    if (parse_body(c))
        r.fn(c);
    if (fault == SIM_FAULT_HANG) {
        clock_sleep_ms(ATTIO_SIM_HANG_MS);
        reply_error(c->resp, 504, "api_error", "gateway_timeout",
                    "The request timed out.");
    }
}

static void on_request(void *ctx, const struct http_request *req,
                       struct http_response *resp)
{
    struct call c = {.sim = ctx, .req = req, .resp = resp};

    sim_path_split(&c.path, req->path);
    serve_api(&c);
    json_decref(c.body);
    sim_path_free(&c.path);
}

/* ---- the crmsim attio command ---- */

static char *numbered_uuid(const char *prefix, size_t n)
{
    return xasprintf("%s-0000-4000-8000-%012zx", prefix, n + 1);
}

static char *deal_id(void *ctx, size_t n)
{
    return numbered_uuid("dea10000", n);
}

/* Workspace members are both the owners and the users who edit. */
static char *member_id(void *ctx, size_t n)
{
    return numbered_uuid("5e000000", n);
}

static void on_start(void *ctx, const struct sim_core *core)
{
    struct attio_sim *sim = ctx;
    sim->store = core->store;
    sim->control = core->control;
    sim->sender = core->sender;
    sim->obj.store = core->store;
}

/* Spends both rolling seconds, reads and writes. */
static void on_exhaust(void *ctx)
{
    struct attio_sim *sim = ctx;
    int64_t now = clock_now_ms();

    pthread_mutex_lock(&sim->mu);
    while (sim_window_take(&sim->reads, now))
        continue;
    while (sim_window_take(&sim->writes, now))
        continue;
    pthread_mutex_unlock(&sim->mu);
}

static void usage(FILE *out)
{
    fputs("usage: crmsim attio --listen HOST:PORT --data DIR\n"
          "         --webhook-url URL --webhook-secret S --token T [options]\n"
          "\n"
          "Serves Attio's REST v2 API for a deals object, its attributes and\n"
          "statuses, workspace members and webhooks, seeded from\n"
          "DIR/sales_pipeline.csv and DIR/sales_teams.csv, and POSTs signed\n"
          "id-only webhooks for every change to URL (until POST /v2/webhooks\n"
          "registers another). The /_sim control endpoint (no auth) changes\n"
          "deals as a CRM user and injects faults; see docs/SIMULATOR.md.\n"
          "\n"
          "options:\n",
          out);
    fputs(sim_common_help, out);
    fputs(
        "  --webhook-secret S    secret that signs the first webhook\n"
        "  --token T             bearer token the API accepts\n"
        "  --token-id UUID       the token's actor id (default " ATTIO_SIM_TOKEN_ID
        ")\n"
        "  --reads-per-s N       read calls per rolling second (default 100)\n"
        "  --writes-per-s N      write calls per rolling second (default 25)\n"
        "  --omit-attribute SLUG leave the attribute off the object (repeat)\n"
        "  --help                show this help\n",
        out);
}

static int parse_options(int argc, char **argv, struct sim_common_options *o,
                         struct attio_sim_config *a)
{
    enum {
        OPT_SECRET = 256,
        OPT_TOKEN,
        OPT_TOKEN_ID,
        OPT_READS,
        OPT_WRITES,
        OPT_OMIT,
        OPT_HELP,
    };
    static const struct option own[] = {
        {"webhook-secret", required_argument, NULL, OPT_SECRET},
        {"token", required_argument, NULL, OPT_TOKEN},
        {"token-id", required_argument, NULL, OPT_TOKEN_ID},
        {"reads-per-s", required_argument, NULL, OPT_READS},
        {"writes-per-s", required_argument, NULL, OPT_WRITES},
        {"omit-attribute", required_argument, NULL, OPT_OMIT},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    struct option *longopts = sim_longopts(own);
    int64_t reads = 100, writes = 25;
    int c, rc = 0;

    sim_common_defaults(o);
    a->token_id = ATTIO_SIM_TOKEN_ID;
    optind = 1;
    while (rc == 0 && (c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_SECRET:
            a->webhook_secret = optarg;
            break;
        case OPT_TOKEN:
            a->token = optarg;
            break;
        case OPT_TOKEN_ID:
            a->token_id = optarg;
            break;
        case OPT_READS:
            rc = sim_parse_number("--reads-per-s", optarg, 1, 100000, &reads);
            break;
        case OPT_WRITES:
            rc = sim_parse_number("--writes-per-s", optarg, 1, 100000, &writes);
            break;
        case OPT_OMIT:
            if (a->omit_count == ATTIO_SIM_OMIT_MAX) {
                fprintf(stderr, "crmsim: too many --omit-attribute\n");
                rc = -1;
                break;
            }
            a->omit[a->omit_count++] = optarg;
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
    a->reads_per_s = (int)reads;
    a->writes_per_s = (int)writes;
    if (optind < argc) {
        fprintf(stderr, "crmsim: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (sim_common_check(o) != 0)
        return -1;
    if (!a->webhook_secret || !a->token) {
        fprintf(stderr, "crmsim: --webhook-secret and --token are required\n");
        return -1;
    }
    return 0;
}

/* Marks the attributes --omit-attribute names; -1 for one the object
 * does not have or must keep. */
static int omit_attributes(struct attio_sim *sim)
{
    for (size_t i = 0; i < sim->config.omit_count; i++) {
        const char *slug = sim->config.omit[i];
        size_t j = 0;
        while (j < attio_sim_attr_count &&
               strcmp(attio_sim_attrs[j].slug, slug) != 0)
            j++;
        if (j == attio_sim_attr_count || strcmp(slug, "name") == 0) {
            fprintf(stderr, "crmsim: cannot omit attribute '%s'\n", slug);
            return -1;
        }
        sim->obj.omitted[j] = true;
    }
    return 0;
}

int attio_sim_main(int argc, char **argv)
{
    struct sim_common_options o;
    struct attio_sim sim = {0};
    struct webhook_format format;

    int rc = parse_options(argc, argv, &o, &sim.config);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    if (omit_attributes(&sim) != 0)
        return 2;

    pthread_mutex_init(&sim.obj.mu, NULL);
    sim.obj.webhook_id = xstrdup(WEBHOOK_ID);
    sim.obj.secret = xstrdup(sim.config.webhook_secret);
    sim.obj.target_url = xstrdup(o.webhook_url);
    char buf[40];
    sim.obj.webhook_json =
        json_pack("{s:s, s:[{s:s, s:n}, {s:s, s:n}, {s:s, s:n}, {s:s, s:n}], "
                  "s:{s:s, s:s}, s:s, s:s}",
                  "target_url", o.webhook_url, "subscriptions", "event_type",
                  "record.created", "filter", "event_type", "record.updated",
                  "filter", "event_type", "record.deleted", "filter",
                  "event_type", "record.merged", "filter", "id", "workspace_id",
                  ATTIO_SIM_WORKSPACE, "webhook_id", WEBHOOK_ID, "status",
                  "active", "created_at", attio_sim_time(clock_now_ms(), buf));
    attio_sim_webhook_format(&sim.obj, &format);
    pthread_mutex_init(&sim.mu, NULL);
    sim_window_init(&sim.reads, sim.config.reads_per_s, 1000);
    sim_window_init(&sim.writes, sim.config.writes_per_s, 1000);

    struct sim_store_config store = {
        .pipeline = &pipeline,
        .deal_id = deal_id,
        .owner_id = member_id,
        .user_id = member_id,
        .merge_mints_id = true,
    };
    struct sim_frontend fe = {
        .name = "attio",
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

    sim_window_free(&sim.reads);
    sim_window_free(&sim.writes);
    pthread_mutex_destroy(&sim.mu);
    free(sim.obj.webhook_id);
    free(sim.obj.secret);
    free(sim.obj.target_url);
    json_decref(sim.obj.subscriptions);
    json_decref(sim.obj.webhook_json);
    pthread_mutex_destroy(&sim.obj.mu);
    return rc;
}
