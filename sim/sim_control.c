/* The neutral /_sim control API: deals in fieldsync's field names and
 * canonical values, changed as a CRM user; faults, counters and idleness;
 * and the API call counters and fault dice behind the front-end's REST. */
#include "sim_control.h"

#include "sim_util.h"

#include "base/alloc.h"
#include "base/log.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Longest user id taken from a control call. */
#define USER_ID_MAX 64

/* Longest a read is held under api_reads_paused, so a test that never
 * unpauses cannot keep the simulator from stopping. */
#define READ_HOLD_MAX_MS 60000

struct api_faults {
    double api_5xx;
    double api_timeout;
    bool reads_paused;
};

struct sim_control {
    struct sim_store *store;
    struct webhook_sender *sender;
    const struct sim_call_kind *kinds;
    size_t kind_count;
    void (*on_exhaust)(void *ctx);
    void *ctx;

    pthread_mutex_t mu; /* guards everything below */
    pthread_cond_t unpaused;
    uint64_t rng;
    struct api_faults faults;
    int64_t api_calls;
    int64_t *by_kind;
    int64_t rate_limited;
    int64_t faults_5xx;
    int64_t faults_timeout;
    int64_t reads_held;    /* reads waiting for api_reads_paused to end */
    uint64_t read_release; /* bumped by every unpause */
    int64_t auth_refused;  /* calls refused for their credentials */
    int64_t auth_expired;  /* of them, with an access token past its life */
};

/* One control request on its way through a handler. */
struct call {
    struct sim_control *ctl;
    const struct http_request *req;
    struct http_response *resp;
    struct sim_path path;
    json_t *body;
};

struct sim_control *sim_control_new(const struct sim_control_config *config)
{
    struct sim_control *ctl = xcalloc(1, sizeof(*ctl));

    ctl->store = config->store;
    ctl->sender = config->sender;
    ctl->kinds = config->call_kinds;
    ctl->kind_count = config->call_kind_count;
    ctl->on_exhaust = config->on_exhaust;
    ctl->ctx = config->ctx;
    ctl->by_kind = xcalloc(ctl->kind_count + 1, sizeof(*ctl->by_kind));
    ctl->rng = config->seed ^ 0x5DEECE66DULL;
    pthread_mutex_init(&ctl->mu, NULL);
    pthread_cond_init(&ctl->unpaused, NULL);
    return ctl;
}

void sim_control_free(struct sim_control *ctl)
{
    if (!ctl)
        return;
    pthread_cond_destroy(&ctl->unpaused);
    pthread_mutex_destroy(&ctl->mu);
    free(ctl->by_kind);
    free(ctl);
}

void sim_control_count_call(struct sim_control *ctl, int kind, bool limited)
{
    pthread_mutex_lock(&ctl->mu);
    ctl->api_calls++;
    if (kind >= 0 && (size_t)kind < ctl->kind_count)
        ctl->by_kind[kind]++;
    if (limited)
        ctl->rate_limited++;
    pthread_mutex_unlock(&ctl->mu);
}

void sim_control_count_refused(struct sim_control *ctl, bool expired)
{
    pthread_mutex_lock(&ctl->mu);
    ctl->auth_refused++;
    if (expired)
        ctl->auth_expired++;
    pthread_mutex_unlock(&ctl->mu);
}

/* Lets every held read go on. Called with mu held. */
static void release_reads(struct sim_control *ctl)
{
    ctl->read_release++;
    pthread_cond_broadcast(&ctl->unpaused);
}

void sim_control_release_reads(struct sim_control *ctl)
{
    pthread_mutex_lock(&ctl->mu);
    ctl->faults.reads_paused = false;
    release_reads(ctl);
    pthread_mutex_unlock(&ctl->mu);
}

/* Holds a read while api_reads_paused is on: until an unpause (even one
 * paused again at once), or READ_HOLD_MAX_MS. Called with mu held. */
static void hold_read(struct sim_control *ctl, int kind)
{
    if (!ctl->faults.reads_paused || kind < 0 ||
        (size_t)kind >= ctl->kind_count ||
        ctl->kinds[kind].class_ != SIM_CALL_READ)
        return;
    uint64_t release = ctl->read_release;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += READ_HOLD_MAX_MS / 1000;
    ctl->reads_held++;
    while (ctl->faults.reads_paused && ctl->read_release == release) {
        if (pthread_cond_timedwait(&ctl->unpaused, &ctl->mu, &until) != 0)
            break;
    }
    ctl->reads_held--;
}

enum sim_api_fault sim_control_roll_fault(struct sim_control *ctl, int kind,
                                          int *status)
{
    enum sim_api_fault fault = SIM_FAULT_NONE;

    pthread_mutex_lock(&ctl->mu);
    hold_read(ctl, kind);
    if (ctl->faults.api_5xx > 0 &&
        sim_rng_unit(&ctl->rng) < ctl->faults.api_5xx) {
        fault = SIM_FAULT_5XX;
        *status = sim_rng_next(&ctl->rng) % 2 ? 502 : 503;
        ctl->faults_5xx++;
    } else if (ctl->faults.api_timeout > 0 &&
               sim_rng_unit(&ctl->rng) < ctl->faults.api_timeout) {
        fault = SIM_FAULT_HANG;
        ctl->faults_timeout++;
    }
    pthread_mutex_unlock(&ctl->mu);
    return fault;
}

/* ---- deals ---- */

static json_t *id_or_null(const struct sim_deal *deal)
{
    return deal ? json_string(deal->id) : json_null();
}

static json_t *text_or_null(const char *text)
{
    return text ? json_string(text) : json_null();
}

/* The control view of a deal: fieldsync's fields in canonical values and
 * the time (ms) of each field's last write. */
static json_t *deal_json(const struct sim_deal *d)
{
    json_t *fields = json_object();
    json_t *times = json_object();
    json_t *obj = json_object();

    for (int f = 0; f < DEAL_FIELD_COUNT; f++) {
        json_object_set_new(fields, deal_fields[f].name,
                            text_or_null(sim_deal_value(d, f)));
        if (d->fields[f])
            json_object_set_new(times, deal_fields[f].name,
                                json_integer(sim_deal_time(d, f)));
    }
    json_object_set_new(obj, "id", json_string(d->id));
    json_object_set_new(obj, "our_id",
                        text_or_null(sim_deal_value(d, SIM_F_OUR_ID)));
    json_object_set_new(obj, "archived", json_boolean(d->archived));
    json_object_set_new(obj, "merged_into", id_or_null(d->merged_into));
    json_object_set_new(obj, "pipeline",
                        text_or_null(sim_deal_value(d, SIM_F_PIPELINE)));
    json_object_set_new(obj, "created", json_integer(d->created_ms));
    json_object_set_new(obj, "modified", json_integer(d->modified_ms));
    json_object_set_new(obj, "fields", fields);
    json_object_set_new(obj, "times", times);
    return obj;
}

static void reply_error(struct call *c, int status, const char *code,
                        const char *field, const char *message)
{
    http_response_error(c->resp, status, code, field, message);
}

static const char *const bad_text[] = {
    [SIM_BAD_VALUE] = "not a valid value",
    [SIM_BAD_TOO_LONG] = "longer than the field allows",
    [SIM_BAD_STAGE] = "not a stage of the pipeline",
    [SIM_BAD_PIPELINE] = "not the pipeline",
    [SIM_BAD_OWNER] = "not an owner",
};

/* A field value as text: strings, numbers, null (clear). */
static bool value_text(const json_t *v, char **out)
{
    *out = NULL;
    if (json_is_string(v))
        *out = xstrdup(json_string_value(v));
    else if (json_is_integer(v))
        *out = xasprintf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else if (json_is_real(v))
        *out = xasprintf("%.15g", json_real_value(v));
    else if (!json_is_null(v))
        return false;
    return true;
}

/* Reads the "fields" object into w; answers the error and returns false
 * when a name or value is refused. */
static bool read_fields(struct call *c, struct sim_write *w)
{
    json_t *fields = json_object_get(c->body, "fields");
    const char *name;
    json_t *v;

    if (fields && !json_is_object(fields)) {
        reply_error(c, 400, "invalid_type", "fields",
                    "fields must be an object");
        return false;
    }
    json_object_foreach(fields, name, v)
    {
        int f = deal_field_by_name(name);
        char *text = NULL;
        enum sim_bad why = SIM_BAD_VALUE;
        if (f < 0) {
            reply_error(c, 400, "unknown_field", name, "not a deal field");
            return false;
        }
        if (!value_text(v, &text)) {
            reply_error(c, 400, "invalid_type", name,
                        "a value is a string, a number or null");
            return false;
        }
        fs_result r = sim_write_set(c->ctl->store, w, f, text, &why);
        free(text);
        if (r != FS_OK) {
            char *msg = xasprintf("%s for %s", bad_text[why], name);
            reply_error(c, 400, "invalid_value", name, msg);
            free(msg);
            return false;
        }
    }
    return true;
}

/* The CRM user a change is made as: "user_id" (text or number) or the
 * first owner's user. */
static bool read_actor(struct call *c, struct sim_actor *actor,
                       char user[USER_ID_MAX + 1])
{
    json_t *v = json_object_get(c->body, "user_id");
    char *text = NULL;
    const struct sim_owner *first = sim_store_owner_at(c->ctl->store, 0);

    if (v && (!value_text(v, &text) || !text || !*text ||
              strlen(text) > USER_ID_MAX)) {
        free(text);
        reply_error(c, 400, "invalid_value", "user_id",
                    "user_id is a string or number of at most 64 characters");
        return false;
    }
    snprintf(user, USER_ID_MAX + 1, "%s",
             text    ? text
             : first ? first->user_id
                     : "0");
    free(text);
    actor->kind = SIM_ACTOR_USER;
    actor->id = user;
    return true;
}

/* Only these top-level keys are taken in a body. */
static bool keys_known(struct call *c, const char *const *known)
{
    const char *key;
    json_t *v;

    json_object_foreach(c->body, key, v)
    {
        size_t i = 0;
        while (known[i] && strcmp(known[i], key) != 0)
            i++;
        if (!known[i]) {
            reply_error(c, 400, "unknown_key", key, "not a key of this call");
            return false;
        }
    }
    return true;
}

static void reply_clash(struct call *c, const struct sim_deal *clash)
{
    char *msg = xasprintf("deal %s already holds that our_id", clash->id);
    reply_error(c, 409, "conflict", "our_id", msg);
    free(msg);
}

/* The deal named in the path, live or not; answers 404 when unknown. */
static struct sim_deal *path_deal(struct call *c)
{
    struct sim_deal *d = sim_store_find(c->ctl->store, c->path.seg[2]);
    if (!d)
        reply_error(c, 404, "not_found", NULL, "no such deal");
    return d;
}

/* Refuses a change to a deal merged away (409 merged) or, unless
 * archived_ok, archived (409 deleted). */
static bool changeable(struct call *c, const struct sim_deal *d,
                       bool archived_ok)
{
    if (d->merged_into) {
        reply_error(c, 409, "merged", NULL, "the deal was merged away");
        return false;
    }
    if (d->archived && !archived_ok) {
        reply_error(c, 409, "deleted", NULL, "the deal is deleted");
        return false;
    }
    return true;
}

static bool read_query_size(struct call *c, const char *name, long lo, long hi,
                            long *out)
{
    const char *text = http_request_query(c->req, name);
    char *end = NULL;

    if (!text)
        return true;
    long v = strtol(text, &end, 10);
    if (!*text || *end || v < lo || v > hi) {
        char *msg = xasprintf("%s must be a number in %ld..%ld", name, lo, hi);
        reply_error(c, 400, "invalid_param", name, msg);
        free(msg);
        return false;
    }
    *out = v;
    return true;
}

static void list_deals(struct call *c)
{
    struct sim_store *store = c->ctl->store;
    long offset = 0, limit = SIM_CONTROL_PAGE_DEFAULT;

    if (!read_query_size(c, "offset", 0, 1L << 40, &offset) ||
        !read_query_size(c, "limit", 1, SIM_CONTROL_PAGE_MAX, &limit))
        return;
    json_t *deals = json_array();
    sim_store_lock(store);
    size_t n = sim_store_deal_count(store);
    size_t end = (size_t)offset + (size_t)limit;
    for (size_t i = (size_t)offset; i < n && i < end; i++)
        json_array_append_new(deals, deal_json(sim_store_deal_at(store, i)));
    sim_store_unlock(store);
    sim_reply(c->resp, 200,
              json_pack("{s:o, s:I, s:o}", "deals", deals, "total",
                        (json_int_t)n, "next_offset",
                        end < n ? json_integer((json_int_t)end) : json_null()));
}

static void get_deal(struct call *c)
{
    sim_store_lock(c->ctl->store);
    struct sim_deal *d = path_deal(c);
    if (d)
        sim_reply(c->resp, 200, deal_json(d));
    sim_store_unlock(c->ctl->store);
}

static const char *const change_keys[] = {"fields", "user_id", NULL};

static void create_deal(struct call *c)
{
    struct sim_write w = {0};
    struct sim_actor actor;
    char user[USER_ID_MAX + 1];
    struct sim_deal *deal = NULL, *clash = NULL;

    sim_store_lock(c->ctl->store);
    if (keys_known(c, change_keys) && read_actor(c, &actor, user) &&
        read_fields(c, &w)) {
        if (sim_store_create(c->ctl->store, &w, &actor, &deal, &clash) == FS_OK)
            sim_reply(c->resp, 201, deal_json(deal));
        else
            reply_clash(c, clash);
    }
    sim_store_unlock(c->ctl->store);
    sim_write_clear(&w);
}

static void update_deal(struct call *c)
{
    struct sim_write w = {0};
    struct sim_actor actor;
    char user[USER_ID_MAX + 1];
    struct sim_deal *clash = NULL;

    sim_store_lock(c->ctl->store);
    struct sim_deal *d = path_deal(c);
    if (d && changeable(c, d, false) && keys_known(c, change_keys) &&
        read_actor(c, &actor, user) && read_fields(c, &w)) {
        if (sim_store_update(c->ctl->store, d, &w, &actor, &clash) == FS_OK)
            sim_reply(c->resp, 200, deal_json(d));
        else
            reply_clash(c, clash);
    }
    sim_store_unlock(c->ctl->store);
    sim_write_clear(&w);
}

static const char *const actor_keys[] = {"user_id", NULL};

static void delete_deal(struct call *c)
{
    struct sim_actor actor;
    char user[USER_ID_MAX + 1];

    sim_store_lock(c->ctl->store);
    struct sim_deal *d = path_deal(c);
    if (d && changeable(c, d, true) && keys_known(c, actor_keys) &&
        read_actor(c, &actor, user)) {
        sim_store_delete(c->ctl->store, d, &actor);
        sim_reply(c->resp, 200, deal_json(d));
    }
    sim_store_unlock(c->ctl->store);
}

static void restore_deal(struct call *c)
{
    struct sim_actor actor;
    char user[USER_ID_MAX + 1];
    struct sim_deal *clash = NULL;

    sim_store_lock(c->ctl->store);
    struct sim_deal *d = path_deal(c);
    if (d && changeable(c, d, true) && keys_known(c, actor_keys) &&
        read_actor(c, &actor, user)) {
        fs_result r = sim_store_restore(c->ctl->store, d, &actor, &clash);
        if (r == FS_OK)
            sim_reply(c->resp, 200, deal_json(d));
        else if (r == FS_ERR_CONFLICT)
            reply_clash(c, clash);
        else
            reply_error(c, 400, "not_deleted", NULL, "the deal is not deleted");
    }
    sim_store_unlock(c->ctl->store);
}

/* The deal an id in a merge body names; answers the error when none. */
static struct sim_deal *merge_deal(struct call *c, const json_t *v,
                                   const char *key)
{
    struct sim_deal *d =
        json_is_string(v) ? sim_store_find(c->ctl->store, json_string_value(v))
                          : NULL;
    if (!json_is_string(v))
        reply_error(c, 400, "invalid_type", key, "deal ids are strings");
    else if (!d)
        reply_error(c, 404, "not_found", key, "no such deal");
    else if (!changeable(c, d, false))
        d = NULL;
    return d;
}

static void merge_deals(struct call *c)
{
    static const char *const keys[] = {"primary", "merged", "user_id", NULL};
    struct sim_actor actor;
    char user[USER_ID_MAX + 1];
    struct sim_deal *others[SIM_CONTROL_MERGE_MAX];
    struct sim_deal *result = NULL;
    json_t *merged = json_object_get(c->body, "merged");
    size_t i, n = 0;
    json_t *v;

    sim_store_lock(c->ctl->store);
    if (!keys_known(c, keys) || !read_actor(c, &actor, user))
        goto out;
    if (!json_is_array(merged) || json_array_size(merged) == 0 ||
        json_array_size(merged) > SIM_CONTROL_MERGE_MAX) {
        reply_error(c, 400, "invalid_type", "merged",
                    "merged is an array of 1 to 100 deal ids");
        goto out;
    }
    struct sim_deal *primary =
        merge_deal(c, json_object_get(c->body, "primary"), "primary");
    if (!primary)
        goto out;
    json_array_foreach(merged, i, v)
    {
        if (!(others[n++] = merge_deal(c, v, "merged")))
            goto out;
    }
    fs_result r =
        sim_store_merge(c->ctl->store, primary, others, n, &actor, &result);
    if (r == FS_OK)
        sim_reply(c->resp, 200, deal_json(result));
    else
        reply_error(c, 400, "invalid_value", "merged",
                    "a deal is named twice, or merged with itself");
out:
    sim_store_unlock(c->ctl->store);
}

/* ---- owners and the pipeline ---- */

static void list_owners(struct call *c)
{
    json_t *owners = json_array();
    struct sim_store *store = c->ctl->store;

    sim_store_lock(store);
    for (size_t i = 0; i < sim_store_owner_count(store); i++) {
        const struct sim_owner *o = sim_store_owner_at(store, i);
        char *name = *o->last_name
                         ? xasprintf("%s %s", o->first_name, o->last_name)
                         : xstrdup(o->first_name);
        json_array_append_new(
            owners, json_pack("{s:s, s:s, s:s, s:s}", "id", o->id, "user_id",
                              o->user_id, "name", name, "email", o->email));
        free(name);
    }
    sim_store_unlock(store);
    sim_reply(c->resp, 200, json_pack("{s:o}", "owners", owners));
}

static void get_pipeline(struct call *c)
{
    const struct sim_pipeline *p = sim_store_pipeline(c->ctl->store);
    json_t *stages = json_array();

    for (size_t i = 0; i < p->stage_count; i++) {
        const struct sim_stage *s = &p->stages[i];
        json_array_append_new(stages,
                              json_pack("{s:s, s:s, s:s, s:f, s:b}", "id",
                                        s->id, "label", s->label, "seed_name",
                                        s->seed_name, "probability",
                                        s->probability, "closed", s->closed));
    }
    sim_reply(c->resp, 200,
              json_pack("{s:s, s:s, s:o}", "id", p->id, "label", p->label,
                        "stages", stages));
}

/* ---- faults, stats, idle ---- */

static json_t *faults_json(struct sim_control *ctl)
{
    struct webhook_faults wf;

    webhook_sender_get_faults(ctl->sender, &wf);
    pthread_mutex_lock(&ctl->mu);
    json_t *obj =
        json_pack("{s:f, s:f, s:b, s:I, s:f, s:f, s:b, s:b}", "drop", wf.drop,
                  "duplicate", wf.duplicate, "reorder", wf.reorder, "delay_ms",
                  (json_int_t)wf.delay_ms, "api_5xx", ctl->faults.api_5xx,
                  "api_timeout", ctl->faults.api_timeout, "webhooks_paused",
                  wf.paused, "api_reads_paused", ctl->faults.reads_paused);
    pthread_mutex_unlock(&ctl->mu);
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

static void get_faults(struct call *c)
{
    sim_reply(c->resp, 200, faults_json(c->ctl));
}

static void set_faults(struct call *c)
{
    static const char *const keys[] = {
        "drop",    "duplicate",   "reorder",         "delay_ms",
        "api_5xx", "api_timeout", "webhooks_paused", "api_reads_paused",
        NULL};
    struct sim_control *ctl = c->ctl;
    struct webhook_faults wf;
    struct api_faults af;

    if (!keys_known(c, keys))
        return;
    webhook_sender_get_faults(ctl->sender, &wf);
    pthread_mutex_lock(&ctl->mu);
    af = ctl->faults;
    pthread_mutex_unlock(&ctl->mu);

    json_t *delay = json_object_get(c->body, "delay_ms");
    bool ok = read_prob(c->body, "drop", &wf.drop) &&
              read_prob(c->body, "duplicate", &wf.duplicate) &&
              read_prob(c->body, "api_5xx", &af.api_5xx) &&
              read_prob(c->body, "api_timeout", &af.api_timeout) &&
              read_bool(c->body, "reorder", &wf.reorder) &&
              read_bool(c->body, "webhooks_paused", &wf.paused) &&
              read_bool(c->body, "api_reads_paused", &af.reads_paused);
    if (delay && (!json_is_integer(delay) || json_integer_value(delay) < 0 ||
                  json_integer_value(delay) > 600000))
        ok = false;
    if (!ok) {
        reply_error(c, 400, "invalid_value", NULL,
                    "fault probabilities are numbers in [0, 1], reorder, "
                    "webhooks_paused and api_reads_paused booleans, delay_ms "
                    "0..600000");
        return;
    }
    if (delay)
        wf.delay_ms = json_integer_value(delay);
    webhook_sender_set_faults(ctl->sender, &wf);
    pthread_mutex_lock(&ctl->mu);
    if (ctl->faults.reads_paused && !af.reads_paused)
        release_reads(ctl);
    ctl->faults = af;
    pthread_mutex_unlock(&ctl->mu);
    log_notice("event=faults_set drop=%.3f duplicate=%.3f reorder=%d "
               "delay_ms=%" PRId64 " api_5xx=%.3f api_timeout=%.3f paused=%d "
               "reads_paused=%d",
               wf.drop, wf.duplicate, wf.reorder, wf.delay_ms, af.api_5xx,
               af.api_timeout, wf.paused, af.reads_paused);
    sim_reply(c->resp, 200, faults_json(ctl));
}

static void get_stats(struct call *c)
{
    struct sim_control *ctl = c->ctl;
    static const char *const class_names[SIM_CALL_CLASS_COUNT] = {
        "read", "write", "search", "meta"};
    struct webhook_stats ws;
    json_t *kinds = json_object();
    json_int_t by_class[SIM_CALL_CLASS_COUNT] = {0};
    json_t *classes = json_object();

    webhook_sender_get_stats(ctl->sender, &ws);
    pthread_mutex_lock(&ctl->mu);
    for (size_t k = 0; k < ctl->kind_count; k++) {
        json_object_set_new(kinds, ctl->kinds[k].name,
                            json_integer(ctl->by_kind[k]));
        by_class[ctl->kinds[k].class_] += ctl->by_kind[k];
    }
    for (int k = 0; k < SIM_CALL_CLASS_COUNT; k++)
        json_object_set_new(classes, class_names[k], json_integer(by_class[k]));
    json_t *obj = json_pack(
        "{s:I, s:o, s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
        "s:I, s:I}",
        "api_calls", (json_int_t)ctl->api_calls, "api_calls_by_kind", kinds,
        "api_calls_by_class", classes, "rate_limited",
        (json_int_t)ctl->rate_limited, "api_faults_5xx",
        (json_int_t)ctl->faults_5xx, "api_faults_timeout",
        (json_int_t)ctl->faults_timeout, "webhooks_sent",
        (json_int_t)ws.webhooks_sent, "webhooks_failed",
        (json_int_t)ws.webhooks_failed, "webhooks_given_up",
        (json_int_t)ws.webhooks_given_up, "webhook_bans", (json_int_t)ws.bans,
        "events_lost_banned", (json_int_t)ws.events_lost_banned,
        "events_queued", (json_int_t)ws.events_queued, "events_sent",
        (json_int_t)ws.events_sent, "events_dropped",
        (json_int_t)ws.events_dropped, "events_duplicated",
        (json_int_t)ws.events_duplicated, "pending_deliveries",
        (json_int_t)ws.pending_deliveries);
    json_object_set_new(obj, "api_reads_held", json_integer(ctl->reads_held));
    json_object_set_new(obj, "auth_refused", json_integer(ctl->auth_refused));
    json_object_set_new(obj, "auth_expired", json_integer(ctl->auth_expired));
    pthread_mutex_unlock(&ctl->mu);
    sim_reply(c->resp, 200, obj);
}

static void reset_stats(struct call *c)
{
    struct sim_control *ctl = c->ctl;

    webhook_sender_reset_stats(ctl->sender);
    pthread_mutex_lock(&ctl->mu);
    ctl->api_calls = 0;
    memset(ctl->by_kind, 0, ctl->kind_count * sizeof(*ctl->by_kind));
    ctl->rate_limited = 0;
    ctl->faults_5xx = 0;
    ctl->faults_timeout = 0;
    ctl->auth_refused = 0;
    ctl->auth_expired = 0;
    pthread_mutex_unlock(&ctl->mu);
    get_stats(c);
}

/* Another client of the account spends the rest of the burst window: the
 * CRM's next calls are refused with its own 429 and hints. */
static void exhaust_limits(struct call *c)
{
    static const char *const keys[] = {NULL};

    if (!keys_known(c, keys))
        return;
    if (!c->ctl->on_exhaust) {
        reply_error(c, 501, "not_supported", NULL,
                    "this CRM's simulator cannot spend its rate window");
        return;
    }
    c->ctl->on_exhaust(c->ctl->ctx);
    log_notice("event=limits_exhausted");
    sim_reply(c->resp, 200, json_pack("{s:b}", "exhausted", true));
}

static void get_idle(struct call *c)
{
    bool idle = webhook_sender_idle(c->ctl->sender);
    sim_reply(c->resp, 200, json_pack("{s:b}", "idle", idle));
}

/* ---- routing ---- */

typedef void (*handler_fn)(struct call *c);

/* One resource: its path shape (segments after "_sim"; "*" is an id)
 * and a handler per method. */
struct route {
    const char *shape[3];
    handler_fn get, post, patch, del;
};

static const struct route routes[] = {
    {{"deals"}, list_deals, create_deal, NULL, NULL},
    {{"deals", "*"}, get_deal, NULL, update_deal, delete_deal},
    {{"deals", "*", "restore"}, NULL, restore_deal, NULL, NULL},
    {{"merge"}, NULL, merge_deals, NULL, NULL},
    {{"owners"}, list_owners, NULL, NULL, NULL},
    {{"pipeline"}, get_pipeline, NULL, NULL, NULL},
    {{"faults"}, get_faults, set_faults, NULL, NULL},
    {{"stats"}, get_stats, NULL, NULL, NULL},
    {{"stats", "reset"}, NULL, reset_stats, NULL, NULL},
    {{"idle"}, get_idle, NULL, NULL, NULL},
    {{"limits", "exhaust"}, NULL, exhaust_limits, NULL, NULL},
};

static bool route_matches(const struct route *r, const struct sim_path *p)
{
    size_t n = 0;
    while (n < 3 && r->shape[n])
        n++;
    if (p->count != n + 1)
        return false;
    for (size_t i = 0; i < n; i++)
        if (strcmp(r->shape[i], "*") != 0 &&
            !sim_path_is(p, i + 1, r->shape[i]))
            return false;
    return true;
}

static handler_fn pick(const struct route *r, const char *method)
{
    if (strcmp(method, "GET") == 0)
        return r->get;
    if (strcmp(method, "POST") == 0)
        return r->post;
    if (strcmp(method, "PATCH") == 0)
        return r->patch;
    if (strcmp(method, "DELETE") == 0)
        return r->del;
    return NULL;
}

/* The body as a JSON object (none is an empty one); answers the error and
 * returns false otherwise. */
static bool parse_body(struct call *c)
{
    json_error_t jerr;

    if (c->req->body_len == 0) {
        c->body = json_object();
        return true;
    }
    c->body = json_loadb(c->req->body, c->req->body_len, JSON_REJECT_DUPLICATES,
                         &jerr);
    if (json_is_object(c->body))
        return true;
    char *msg = c->body ? xstrdup("the body must be a JSON object")
                        : xasprintf("invalid JSON on line %d, column %d: %s",
                                    jerr.line, jerr.column, jerr.text);
    reply_error(c, 400, "invalid_json", NULL, msg);
    free(msg);
    return false;
}

bool sim_control_path(const char *path)
{
    return strncmp(path, "/_sim", 5) == 0 && (path[5] == '/' || !path[5]);
}

void sim_control_on_request(void *ctx, const struct http_request *req,
                            struct http_response *resp)
{
    struct call c = {.ctl = ctx, .req = req, .resp = resp};
    const struct route *found = NULL;

    sim_path_split(&c.path, req->path);
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]) && !found; i++)
        if (route_matches(&routes[i], &c.path))
            found = &routes[i];
    handler_fn fn = found ? pick(found, req->method) : NULL;
    if (!found)
        reply_error(&c, 404, "not_found", NULL, "no such control resource");
    else if (!fn)
        reply_error(&c, 405, "method_not_allowed", NULL,
                    "method not allowed on this resource");
    else if (parse_body(&c))
        fn(&c);
    json_decref(c.body);
    sim_path_free(&c.path);
}
