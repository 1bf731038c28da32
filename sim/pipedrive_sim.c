/* The simulated Pipedrive API over the neutral simulator core: API v2
 * deals (lists with cursors, ids= reads, updated_since, deleted and
 * archived deals, search, create, update, delete), stages, pipelines and
 * deal fields, v1 users, changelog and merge; the x-api-token, token
 * costs per call, the 2 s burst window with x-ratelimit-* headers and the
 * daily token budget; OAuth (oauth.pipedrive.com's /oauth/token, with
 * Basic client auth, rotating refresh tokens and api_domain, and Bearer
 * access tokens on the API); and the `crmsim pipedrive` command. */
#include "pipedrive_sim.h"

#include "sim_control.h"
#include "sim_limits.h"
#include "sim_oauth.h"
#include "sim_serve.h"
#include "sim_util.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "base/crypto.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PAGE_MAX 500
#define PAGE_DEFAULT 100
#define IDS_MAX 100
#define CUSTOM_KEYS_MAX 15
#define SEARCH_PER_WINDOW 10
#define WINDOW_MS 2000
#define TITLE_MAX 255
#define TEXT_MAX 4096

/* Ids as Pipedrive shows them in this company. */
#define DEAL_ID_BASE 1
#define USER_ID_BASE 10000001
/* The token's user, as sim_store_add_owner names its email. */
#define API_USER_NAME "Fieldsync Integration"
#define API_USER_EMAIL "fieldsync.integration@example.com"

enum call_kind {
    KIND_USER_ME,
    KIND_USERS,
    KIND_STAGES,
    KIND_PIPELINES,
    KIND_DEAL_FIELDS,
    KIND_LIST,
    KIND_ARCHIVED,
    KIND_GET,
    KIND_CREATE,
    KIND_UPDATE,
    KIND_DELETE,
    KIND_SEARCH,
    KIND_CHANGELOG,
    KIND_MERGE,
    KIND_WEBHOOKS,
    KIND_WEBHOOK_ADD,
    KIND_WEBHOOK_DELETE,
    KIND_OAUTH_TOKEN,
    KIND_COUNT,
};

static const struct sim_call_kind call_kinds[KIND_COUNT] = {
    [KIND_USER_ME] = {"user_me", SIM_CALL_META},
    [KIND_USERS] = {"users", SIM_CALL_META},
    [KIND_STAGES] = {"stages", SIM_CALL_META},
    [KIND_PIPELINES] = {"pipelines", SIM_CALL_META},
    [KIND_DEAL_FIELDS] = {"deal_fields", SIM_CALL_META},
    [KIND_LIST] = {"list", SIM_CALL_READ},
    [KIND_ARCHIVED] = {"list_archived", SIM_CALL_READ},
    [KIND_GET] = {"get", SIM_CALL_READ},
    [KIND_CREATE] = {"create", SIM_CALL_WRITE},
    [KIND_UPDATE] = {"update", SIM_CALL_WRITE},
    [KIND_DELETE] = {"delete", SIM_CALL_WRITE},
    [KIND_SEARCH] = {"search", SIM_CALL_SEARCH},
    [KIND_CHANGELOG] = {"changelog", SIM_CALL_READ},
    [KIND_MERGE] = {"merge", SIM_CALL_WRITE},
    [KIND_WEBHOOKS] = {"webhooks", SIM_CALL_META},
    [KIND_WEBHOOK_ADD] = {"webhook_add", SIM_CALL_META},
    [KIND_WEBHOOK_DELETE] = {"webhook_delete", SIM_CALL_META},
    [KIND_OAUTH_TOKEN] = {"oauth_token", SIM_CALL_META},
};

/* Token cost of each kind, as the API's x-token-cost says. */
static const int token_cost[KIND_COUNT] = {
    [KIND_USER_ME] = 2,        [KIND_USERS] = 20,
    [KIND_STAGES] = 5,         [KIND_PIPELINES] = 5,
    [KIND_DEAL_FIELDS] = 10,   [KIND_LIST] = 10,
    [KIND_ARCHIVED] = 20,      [KIND_GET] = 1,
    [KIND_CREATE] = 5,         [KIND_UPDATE] = 5,
    [KIND_DELETE] = 3,         [KIND_SEARCH] = 20,
    [KIND_CHANGELOG] = 20,     [KIND_MERGE] = 40,
    [KIND_WEBHOOKS] = 10,      [KIND_WEBHOOK_ADD] = 10,
    [KIND_WEBHOOK_DELETE] = 6, [KIND_OAUTH_TOKEN] = 0,
};

/* The one pipeline: two open stages; won and lost are statuses, kept in
 * the store as the pipeline's closed stages. */
static const struct sim_stage stages[] = {
    {"1", "Prospecting", "Prospecting", 0.1, false},
    {"2", "Engaging", "Engaging", 0.4, false},
    {"won-1", "Won", "Won", 1.0, true},
    {"lost-1", "Lost", "Lost", 0.0, true},
};
#define OPEN_STAGES 2

static const struct sim_pipeline pipeline = {
    PIPEDRIVE_SIM_PIPELINE, "Sales Pipeline", stages,
    sizeof(stages) / sizeof(stages[0])};

static const char error_info[] =
    "Please check developers.pipedrive.com for more information about "
    "Pipedrive API.";

struct pipedrive_sim_config {
    const char *token;
    int64_t company_id;
    int64_t user_id; /* the token's user */
    const char *hook_user;
    const char *hook_password;
    int rate_2s;
    int rate_daily; /* tokens per UTC day */
    int64_t ban_ms;
    /* OAuth (off without oauth_client_id): the app's client, the
     * install's first refresh token, the access tokens' lifetime and the
     * api_domain answered (default: this simulator's own URL). */
    const char *oauth_client_id;
    const char *oauth_client_secret;
    const char *refresh_token;
    int64_t token_ttl_s;
    const char *api_domain;
    const char *listen; /* --listen, for the default api_domain */
};

struct pipedrive_sim {
    struct pipedrive_sim_config config;
    char user_id[32];
    struct pipedrive_account account;
    struct sim_store *store;
    struct sim_control *control;
    struct webhook_sender *sender;
    bool naming_api_user;    /* the next owner made is the token's user */
    struct sim_oauth *oauth; /* NULL without OAuth */
    char *client_basic;      /* "Basic base64(id:secret)" of the client */
    char *api_domain;        /* set once listening (under mu) */

    pthread_mutex_t mu; /* guards the limits */
    struct sim_window burst;
    struct sim_window search;
    struct sim_daily daily;
};

struct call {
    struct pipedrive_sim *sim;
    const struct http_request *req;
    struct http_response *resp;
    struct sim_path path;
    const char *id;
    json_t *body;
};

typedef void (*handler_fn)(struct call *c);

/* ---- answers ---------------------------------------------------------- */

static void reply_error(struct http_response *resp, int status,
                        const char *message)
{
    json_t *obj =
        json_pack("{s:b, s:s, s:s, s:n, s:n}", "success", 0, "error", message,
                  "error_info", error_info, "data", "additional_data");
    if (status == 401 || status == 404 || status == 429)
        json_object_set_new(obj, "errorCode", json_integer(status));
    sim_reply(resp, status, obj);
}

static void reply_data(struct http_response *resp, json_t *data,
                       json_t *additional)
{
    json_t *obj = json_pack("{s:b, s:o}", "success", 1, "data", data);
    if (additional)
        json_object_set_new(obj, "additional_data", additional);
    sim_reply(resp, 200, obj);
}

/* The last page says nothing of a next one: Pipedrive's text says
 * next_cursor is null there, its schema that it is a string, so it is
 * left out, which both readings take. */
static json_t *cursor_data(const char *next)
{
    json_t *obj = json_object();

    if (next)
        json_object_set_new(obj, "next_cursor", json_string(next));
    return obj;
}

static bool parse_long(const char *s, long lo, long hi, long *out)
{
    char *end = NULL;

    if (!s || !*s)
        return false;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end != '\0' || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

/* "a,b,c" as a JSON array of strings; NULL for NULL text. */
static json_t *split_list(const char *s)
{
    if (!s)
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

static bool in_list(const json_t *list, const char *s)
{
    size_t i;
    const json_t *v;

    json_array_foreach(list, i, v)
    {
        if (strcmp(json_string_value(v), s) == 0)
            return true;
    }
    return false;
}

/* limit (1..PAGE_MAX) and an offset cursor; false after answering 400. */
static bool page_params(struct call *c, long *limit, long *offset)
{
    const char *l = http_request_query(c->req, "limit");
    const char *cur = http_request_query(c->req, "cursor");

    *limit = PAGE_DEFAULT;
    *offset = 0;
    if (l && !parse_long(l, 1, PAGE_MAX, limit)) {
        reply_error(c->resp, 400, "limit must be an integer from 1 to 500");
        return false;
    }
    if (cur && (cur[0] != 'o' || !parse_long(cur + 1, 0, 1L << 40, offset))) {
        reply_error(c->resp, 400, "cursor is not valid");
        return false;
    }
    return true;
}

static char *offset_cursor(long offset)
{
    return xasprintf("o%ld", offset);
}

/* ---- rate limits ------------------------------------------------------ */

static void add_rate_headers(struct pipedrive_sim *sim,
                             struct http_response *resp, int64_t now)
{
    struct sim_window *w = &sim->burst;
    int64_t reset = 0;
    char v[32];

    if (w->count > 0) {
        int64_t oldest = w->stamps[w->head];
        reset = (oldest + w->length_ms - now + 999) / 1000;
        if (reset < 0)
            reset = 0;
    }
    snprintf(v, sizeof(v), "%d", w->cap);
    http_response_add_header(resp, "x-ratelimit-limit", v);
    snprintf(v, sizeof(v), "%d", sim_window_remaining(w, now));
    http_response_add_header(resp, "x-ratelimit-remaining", v);
    snprintf(v, sizeof(v), "%" PRId64, reset);
    http_response_add_header(resp, "x-ratelimit-reset", v);
}

/* Takes the call's tokens and its place in the windows; on refusal
 * answers 429 and returns false. */
static bool admit(struct pipedrive_sim *sim, enum call_kind kind,
                  struct http_response *resp)
{
    int64_t now = clock_now_ms();
    const char *refusal = NULL;

    pthread_mutex_lock(&sim->mu);
    if (!sim_daily_allows(&sim->daily, now, token_cost[kind]))
        refusal = "Daily token budget exceeded. The budget resets at "
                  "midnight.";
    else if (kind == KIND_SEARCH &&
             sim_window_remaining(&sim->search, now) == 0)
        refusal = "Request over limit: search calls are limited to 10 per "
                  "2 seconds.";
    else if (!sim_window_take(&sim->burst, now))
        refusal = "Request over limit";
    if (!refusal) {
        if (kind == KIND_SEARCH)
            sim_window_take(&sim->search, now);
        sim_daily_count(&sim->daily, token_cost[kind]);
    }
    pthread_mutex_unlock(&sim->mu);
    if (refusal)
        reply_error(resp, 429, refusal);
    pthread_mutex_lock(&sim->mu);
    add_rate_headers(sim, resp, now);
    pthread_mutex_unlock(&sim->mu);
    sim_control_count_call(sim->control, kind, refusal != NULL);
    return refusal == NULL;
}

/* ---- users, stages, pipelines, fields --------------------------------- */

static json_t *user_json(const char *id, const char *name, const char *email,
                         bool is_you)
{
    return json_pack(
        "{s:I, s:s, s:s, s:s, s:i, s:s, s:n, s:b, s:s, s:s, s:s, s:b, s:[], "
        "s:b, s:s, s:s, s:i, s:n, s:b, s:b}",
        "id", (json_int_t)strtoll(id, NULL, 10), "name", name,
        "default_currency", "EUR", "locale", "en_GB", "lang", 1, "email", email,
        "phone", "activated", 1, "last_login", "2026-11-30 08:00:00", "created",
        "2016-01-04 09:00:00", "modified", "2016-01-04 09:00:00",
        "has_created_company", 0, "access", "active_flag", 1, "timezone_name",
        "Europe/London", "timezone_offset", "+00:00", "role_id", 1, "icon_url",
        "is_you", is_you, "is_deleted", 0);
}

static json_t *api_user_json(struct pipedrive_sim *sim)
{
    return user_json(sim->user_id, API_USER_NAME, API_USER_EMAIL, true);
}

static void h_user_me(struct call *c)
{
    struct pipedrive_sim *sim = c->sim;
    json_t *me = api_user_json(sim);

    json_object_set_new(me, "company_id",
                        json_integer((json_int_t)sim->config.company_id));
    json_object_set_new(me, "company_name", json_string("Acme (crmsim)"));
    json_object_set_new(me, "company_domain",
                        json_string(sim->account.company_domain));
    json_object_set_new(me, "company_country", json_string("GB"));
    json_object_set_new(me, "company_industry", json_string("Software"));
    json_object_set_new(
        me, "language",
        json_pack("{s:s, s:s}", "language_code", "en", "country_code", "GB"));
    reply_data(c->resp, me, NULL);
}

static void h_users(struct call *c)
{
    struct sim_store *store = c->sim->store;
    json_t *data = json_array();

    sim_store_lock(store);
    for (size_t i = 0; i < sim_store_owner_count(store); i++) {
        const struct sim_owner *o = sim_store_owner_at(store, i);
        char *name = xasprintf("%s %s", o->first_name, o->last_name);
        json_array_append_new(data,
                              user_json(o->id, name, o->email,
                                        strcmp(o->id, c->sim->user_id) == 0));
        free(name);
    }
    sim_store_unlock(store);
    reply_data(c->resp, data, NULL);
}

static void h_stages(struct call *c)
{
    const char *pipeline_id = http_request_query(c->req, "pipeline_id");
    long limit, offset;
    json_t *data = json_array();
    char *next = NULL;

    if (!page_params(c, &limit, &offset)) {
        json_decref(data);
        return;
    }
    bool ours = !pipeline_id || strcmp(pipeline_id, pipeline.id) == 0;
    for (long i = offset; ours && i < OPEN_STAGES; i++) {
        if ((long)json_array_size(data) == limit) {
            next = offset_cursor(i);
            break;
        }
        const struct sim_stage *s = &stages[i];
        json_array_append_new(
            data,
            json_pack("{s:I, s:i, s:s, s:b, s:i, s:I, s:b, s:n, s:s, s:s}",
                      "id", (json_int_t)strtoll(s->id, NULL, 10), "order_nr",
                      (int)i + 1, "name", s->label, "is_deleted", 0,
                      "deal_probability", (int)(s->probability * 100),
                      "pipeline_id", (json_int_t)1, "is_deal_rot_enabled", 0,
                      "days_to_rotten", "add_time", "2016-01-04T09:00:00Z",
                      "update_time", "2016-01-04T09:00:00Z"));
    }
    reply_data(c->resp, data, cursor_data(next));
    free(next);
}

static void h_pipelines(struct call *c)
{
    long limit, offset;

    if (!page_params(c, &limit, &offset))
        return;
    json_t *data = json_array();
    if (offset == 0)
        json_array_append_new(
            data,
            json_pack("{s:I, s:s, s:i, s:b, s:b, s:s, s:s, s:b}", "id",
                      (json_int_t)1, "name", pipeline.label, "order_nr", 1,
                      "is_deleted", 0, "is_deal_probability_enabled", 0,
                      "add_time", "2016-01-04T09:00:00Z", "update_time",
                      "2016-01-04T09:00:00Z", "is_selected", 1));
    reply_data(c->resp, data, cursor_data(NULL));
}

static json_t *field_json(const char *name, const char *code, const char *type,
                          bool custom)
{
    return json_pack("{s:s, s:s, s:s, s:n, s:n, s:b, s:b}", "field_name", name,
                     "field_code", code, "field_type", type, "options",
                     "subfields", "is_custom_field", custom,
                     "is_optional_response_field", 0);
}

static void h_deal_fields(struct call *c)
{
    static const char *const std[][3] = {
        {"Title", "title", "varchar"},
        {"Value", "value", "monetary"},
        {"Owner", "owner_id", "user"},
        {"Pipeline", "pipeline_id", "double"},
        {"Stage", "stage_id", "stage"},
        {"Status", "status", "status"},
        {"Expected close date", "expected_close_date", "date"},
    };
    size_t n_std = sizeof(std) / sizeof(std[0]);
    size_t total = n_std + pipedrive_custom_count;
    long limit, offset;
    json_t *data;
    char *next = NULL;

    if (!page_params(c, &limit, &offset))
        return;
    data = json_array();
    for (size_t i = (size_t)offset; i < total; i++) {
        if ((long)json_array_size(data) == limit) {
            next = offset_cursor((long)i);
            break;
        }
        if (i < n_std) {
            json_array_append_new(
                data, field_json(std[i][0], std[i][1], std[i][2], false));
        } else {
            const struct pipedrive_custom *cf = &pipedrive_customs[i - n_std];
            json_array_append_new(
                data, field_json(cf->name, cf->key, cf->type, true));
        }
    }
    reply_data(c->resp, data, cursor_data(next));
    free(next);
}

/* ---- writes ----------------------------------------------------------- */

/* Why a write was refused, as Pipedrive's message. */
struct refusal {
    int status;
    char *message;
};

static void refuse(struct refusal *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void refuse(struct refusal *r, int status, const char *fmt, ...)
{
    va_list ap;

    if (r->message)
        return;
    va_start(ap, fmt);
    if (vasprintf(&r->message, fmt, ap) < 0)
        abort();
    va_end(ap);
    r->status = status;
}

/* Takes one store field's value (text, canonical checked by the store). */
static void take(struct pipedrive_sim *sim, struct sim_write *w, int field,
                 const char *name, const char *text, struct refusal *r)
{
    enum sim_bad why = SIM_BAD_VALUE;

    if (sim_write_set(sim->store, w, field, text, &why) == FS_OK)
        return;
    switch (why) {
    case SIM_BAD_STAGE:
        refuse(r, 400, "Stage with ID %s does not exist", text);
        break;
    case SIM_BAD_OWNER:
        refuse(r, 400, "User with ID %s does not exist", text);
        break;
    case SIM_BAD_PIPELINE:
        refuse(r, 400, "Pipeline with ID %s does not exist", text);
        break;
    case SIM_BAD_TOO_LONG:
        refuse(r, 400, "%s is too long", name);
        break;
    case SIM_BAD_VALUE:
        refuse(r, 400, "%s is not a valid value for %s", text, name);
        break;
    }
}

static void take_id(struct pipedrive_sim *sim, struct sim_write *w, int field,
                    const char *name, const json_t *v, struct refusal *r)
{
    char buf[32];

    if (json_is_null(v) && field == DEAL_OWNER) {
        take(sim, w, field, name, "", r);
        return;
    }
    if (!json_is_integer(v)) {
        refuse(r, 400, "%s must be an integer", name);
        return;
    }
    snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    take(sim, w, field, name, buf, r);
}

static void take_amount(struct pipedrive_sim *sim, struct sim_write *w,
                        const json_t *v, struct refusal *r)
{
    char buf[64];

    if (!json_is_number(v)) {
        refuse(r, 400, "value must be a number");
        return;
    }
    if (json_is_integer(v)) {
        snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT,
                 json_integer_value(v));
    } else {
        /* The shortest text that reads back as the same number. */
        double d = json_real_value(v);
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(buf, sizeof(buf), "%.*f", prec, d);
            if (strtod(buf, NULL) == d)
                break;
        }
    }
    take(sim, w, DEAL_AMOUNT, "value", buf, r);
}

static void take_text(struct pipedrive_sim *sim, struct sim_write *w, int field,
                      const char *name, const json_t *v, bool nullable,
                      struct refusal *r)
{
    if (json_is_null(v) && nullable) {
        take(sim, w, field, name, "", r);
        return;
    }
    if (!json_is_string(v)) {
        refuse(r, 400, "%s must be a string", name);
        return;
    }
    take(sim, w, field, name, json_string_value(v), r);
}

static void take_custom(struct pipedrive_sim *sim, struct sim_write *w,
                        json_t *custom, struct refusal *r)
{
    const char *key;
    json_t *v;

    if (!json_is_object(custom)) {
        refuse(r, 400, "custom_fields must be an object");
        return;
    }
    json_object_foreach(custom, key, v)
    {
        const struct pipedrive_custom *cf = pipedrive_custom_by_key(key);
        if (!cf) {
            refuse(r, 400, "Custom field %s does not exist", key);
            return;
        }
        if (!json_is_null(v) && !json_is_string(v)) {
            refuse(r, 400, "%s must be a string or null", cf->name);
            return;
        }
        take_text(sim, w, cf->field, cf->name, v, true, r);
    }
}

/* The store stage a write leaves the deal in: a status of won or lost
 * closes it; an open stage_id (or reopening) leaves it open. */
static void take_stage(struct pipedrive_sim *sim, struct sim_write *w,
                       const struct sim_deal *deal, const json_t *stage_id,
                       const json_t *status, struct refusal *r)
{
    const char *st = json_string_value(status);
    char buf[32];

    if (status && (!st || (strcmp(st, "open") && strcmp(st, "won") &&
                           strcmp(st, "lost")))) {
        refuse(r, 400, "status must be one of open, won, lost");
        return;
    }
    if (stage_id && !json_is_integer(stage_id)) {
        refuse(r, 400, "stage_id must be an integer");
        return;
    }
    if (stage_id) {
        snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT,
                 json_integer_value(stage_id));
        const struct sim_stage *s = sim_store_stage(sim->store, buf);
        if (!s || s->closed) {
            refuse(r, 400, "Stage with ID %s does not exist", buf);
            return;
        }
    }
    const char *now_status = deal ? pipedrive_status(deal) : "open";
    const char *target = st ? st : now_status;
    if (strcmp(target, "won") == 0 || strcmp(target, "lost") == 0) {
        if (!deal || strcmp(target, now_status) != 0 || st) {
            snprintf(buf, sizeof(buf), "%s-%s", target, pipeline.id);
            take(sim, w, DEAL_STAGE, "status", buf, r);
        }
        return;
    }
    if (stage_id)
        take(sim, w, DEAL_STAGE, "stage_id", buf, r);
    else if (deal && strcmp(now_status, "open") != 0)
        take(sim, w, DEAL_STAGE, "status", pipedrive_stage_id(deal), r);
    else if (!deal)
        take(sim, w, DEAL_STAGE, "stage_id", stages[0].id, r);
}

/* Keys a deal write may carry that the simulator keeps no state for. */
static bool ignored_key(const char *key)
{
    static const char *const keys[] = {
        "currency",    "person_id",   "org_id",      "visible_to",
        "probability", "lost_reason", "label_ids",   "add_time",
        "close_time",  "won_time",    "lost_time",   "channel",
        "channel_id",  "origin_id",   "is_archived", "archive_time",
    };
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (strcmp(keys[i], key) == 0)
            return true;
    }
    return false;
}

/* A v2 deal body into store writes; deal NULL for a create. */
static void parse_deal_write(struct pipedrive_sim *sim, json_t *body,
                             const struct sim_deal *deal, struct sim_write *w,
                             struct refusal *r)
{
    const char *key;
    json_t *v;

    memset(w, 0, sizeof(*w));
    json_object_foreach(body, key, v)
    {
        if (strcmp(key, "title") == 0) {
            if (!json_is_string(v) || !*json_string_value(v))
                refuse(r, 400, "title must be a non-empty string");
            else if (strlen(json_string_value(v)) > TITLE_MAX)
                refuse(r, 400, "title is longer than 255 characters");
            else
                take_text(sim, w, DEAL_NAME, "title", v, false, r);
        } else if (strcmp(key, "value") == 0) {
            take_amount(sim, w, v, r);
        } else if (strcmp(key, "owner_id") == 0) {
            take_id(sim, w, DEAL_OWNER, "owner_id", v, r);
        } else if (strcmp(key, "pipeline_id") == 0) {
            take_id(sim, w, SIM_F_PIPELINE, "pipeline_id", v, r);
        } else if (strcmp(key, "expected_close_date") == 0) {
            take_text(sim, w, DEAL_CLOSE_DATE, "expected_close_date", v, true,
                      r);
        } else if (strcmp(key, "custom_fields") == 0) {
            take_custom(sim, w, v, r);
        } else if (strcmp(key, "stage_id") != 0 && strcmp(key, "status") != 0 &&
                   !ignored_key(key)) {
            refuse(r, 400, "Unknown field: %s", key);
        }
    }
    const json_t *stage_id = json_object_get(body, "stage_id");
    const json_t *status = json_object_get(body, "status");
    if (stage_id || status || !deal)
        take_stage(sim, w, deal, stage_id, status, r);
    if (!deal && !json_object_get(body, "title"))
        refuse(r, 400, "title is required");
    if (r->message)
        sim_write_clear(w);
}

static struct sim_actor api_actor(const struct pipedrive_sim *sim)
{
    return (struct sim_actor){SIM_ACTOR_TOKEN, sim->user_id};
}

static bool need_body(struct call *c)
{
    if (json_is_object(c->body))
        return true;
    reply_error(c->resp, 400, "The request body must be a JSON object");
    return false;
}

static void reply_deal(struct call *c, const struct sim_deal *deal)
{
    reply_data(
        c->resp,
        pipedrive_deal_json(deal, &c->sim->account, PIPEDRIVE_REST, NULL),
        NULL);
}

static void h_create(struct call *c)
{
    struct pipedrive_sim *sim = c->sim;
    struct refusal r = {0};
    struct sim_write w;
    struct sim_actor actor = api_actor(sim);
    struct sim_deal *deal = NULL, *clash = NULL;

    if (!need_body(c))
        return;
    sim_store_lock(sim->store);
    parse_deal_write(sim, c->body, NULL, &w, &r);
    if (!r.message &&
        sim_store_create(sim->store, &w, &actor, &deal, &clash) != FS_OK)
        refuse(&r, 400,
               "A live deal (%s) already holds this fieldsync_id; crmsim "
               "keeps it unique",
               clash ? clash->id : "?");
    sim_write_clear(&w);
    if (deal)
        reply_deal(c, deal);
    sim_store_unlock(sim->store);
    if (r.message)
        reply_error(c->resp, r.status, r.message);
    free(r.message);
}

static void h_update(struct call *c)
{
    struct pipedrive_sim *sim = c->sim;
    struct refusal r = {0};
    struct sim_write w;
    struct sim_actor actor = api_actor(sim);
    struct sim_deal *clash = NULL;

    if (!need_body(c))
        return;
    sim_store_lock(sim->store);
    struct sim_deal *deal = sim_store_find(sim->store, c->id);
    if (!deal || deal->archived) {
        refuse(&r, 404, "Deal not found");
    } else {
        parse_deal_write(sim, c->body, deal, &w, &r);
        if (!r.message &&
            sim_store_update(sim->store, deal, &w, &actor, &clash) != FS_OK)
            refuse(&r, 400, "A live deal (%s) already holds this fieldsync_id",
                   clash ? clash->id : "?");
        sim_write_clear(&w);
        if (!r.message)
            reply_deal(c, deal);
    }
    sim_store_unlock(sim->store);
    if (r.message)
        reply_error(c->resp, r.status, r.message);
    free(r.message);
}

static void h_delete(struct call *c)
{
    struct pipedrive_sim *sim = c->sim;
    struct sim_actor actor = api_actor(sim);

    sim_store_lock(sim->store);
    struct sim_deal *deal = sim_store_find(sim->store, c->id);
    bool found = deal && !deal->archived;
    if (found)
        sim_store_delete(sim->store, deal, &actor);
    sim_store_unlock(sim->store);
    if (!found) {
        reply_error(c->resp, 404, "Deal not found");
        return;
    }
    reply_data(c->resp,
               json_pack("{s:I}", "id", (json_int_t)strtoll(c->id, NULL, 10)),
               NULL);
}

static void h_merge(struct call *c)
{
    struct pipedrive_sim *sim = c->sim;
    struct sim_actor actor = api_actor(sim);
    const json_t *with = json_object_get(c->body, "merge_with_id");
    struct sim_deal *result = NULL;
    char buf[32];
    fs_result r = FS_ERR_NOT_FOUND;

    if (!need_body(c))
        return;
    if (!json_is_integer(with)) {
        reply_error(c->resp, 400, "merge_with_id must be an integer");
        return;
    }
    snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT,
             json_integer_value(with));
    sim_store_lock(sim->store);
    struct sim_deal *loser = sim_store_find(sim->store, c->id);
    struct sim_deal *survivor = sim_store_find(sim->store, buf);
    if (loser && survivor && !loser->archived && !survivor->archived)
        r = sim_store_merge(sim->store, survivor, &loser, 1, &actor, &result);
    if (r == FS_OK)
        reply_deal(c, result);
    sim_store_unlock(sim->store);
    if (r == FS_ERR_INVALID)
        reply_error(c->resp, 400, "A deal cannot be merged with itself");
    else if (r != FS_OK)
        reply_error(c->resp, 404, "Deal not found");
}

/* ---- reads ------------------------------------------------------------ */

static void h_get(struct call *c)
{
    struct pipedrive_sim *sim = c->sim;

    sim_store_lock(sim->store);
    struct sim_deal *deal = sim_store_find(sim->store, c->id);
    if (deal)
        reply_deal(c, deal);
    sim_store_unlock(sim->store);
    if (!deal)
        reply_error(c->resp, 404, "Deal not found");
}

enum sort_by { SORT_ID, SORT_UPDATE, SORT_ADD };

struct list_query {
    json_t *ids;      /* or NULL */
    json_t *statuses; /* or NULL: all but deleted */
    json_t *keys;     /* custom_fields=, or NULL */
    int64_t since, until;
    const char *owner, *stage, *pipeline_id;
    enum sort_by sort;
    bool desc;
    long limit;
    bool has_cursor;
    int64_t cursor_key, cursor_id;
};

static void list_query_clear(struct list_query *q)
{
    json_decref(q->ids);
    json_decref(q->statuses);
    json_decref(q->keys);
}

static bool parse_time_param(struct call *c, const char *name, int64_t *out)
{
    const char *v = http_request_query(c->req, name);

    if (!v)
        return true;
    if (clock_parse_iso(v, out) == 0 && strchr(v, 'T'))
        return true;
    char *msg = xasprintf("%s must be an RFC 3339 date-time", name);
    reply_error(c->resp, 400, msg);
    free(msg);
    return false;
}

/* Reads and checks the list's parameters; false after answering 400. */
static bool parse_list_query(struct call *c, struct list_query *q)
{
    const char *sort = http_request_query(c->req, "sort_by");
    const char *dir = http_request_query(c->req, "sort_direction");
    const char *limit = http_request_query(c->req, "limit");
    const char *cursor = http_request_query(c->req, "cursor");
    const char *bad = NULL;
    size_t i;
    const json_t *v;

    memset(q, 0, sizeof(*q));
    q->limit = PAGE_DEFAULT;
    q->until = INT64_MAX;
    q->ids = split_list(http_request_query(c->req, "ids"));
    q->statuses = split_list(http_request_query(c->req, "status"));
    q->keys = split_list(http_request_query(c->req, "custom_fields"));
    q->owner = http_request_query(c->req, "owner_id");
    q->stage = http_request_query(c->req, "stage_id");
    q->pipeline_id = http_request_query(c->req, "pipeline_id");
    json_array_foreach(q->ids, i, v)
    {
        long id;
        if (!parse_long(json_string_value(v), 1, 1L << 40, &id))
            bad = "ids must be a comma separated list of integers";
    }
    if (json_array_size(q->ids) > IDS_MAX)
        bad = "ids takes at most 100 ids";
    json_array_foreach(q->statuses, i, v)
    {
        const char *s = json_string_value(v);
        if (strcmp(s, "open") && strcmp(s, "won") && strcmp(s, "lost") &&
            strcmp(s, "deleted"))
            bad = "status must be open, won, lost or deleted";
    }
    if (json_array_size(q->keys) > CUSTOM_KEYS_MAX)
        bad = "custom_fields takes at most 15 keys";
    if (sort && strcmp(sort, "id") && strcmp(sort, "update_time") &&
        strcmp(sort, "add_time"))
        bad = "sort_by must be id, update_time or add_time";
    q->sort = !sort || strcmp(sort, "id") == 0   ? SORT_ID
              : strcmp(sort, "update_time") == 0 ? SORT_UPDATE
                                                 : SORT_ADD;
    if (dir && strcmp(dir, "asc") && strcmp(dir, "desc"))
        bad = "sort_direction must be asc or desc";
    q->desc = dir && strcmp(dir, "desc") == 0;
    if (limit && !parse_long(limit, 1, PAGE_MAX, &q->limit))
        bad = "limit must be an integer from 1 to 500";
    if (cursor) {
        char *end = NULL;
        q->has_cursor = true;
        q->cursor_key = strtoll(cursor, &end, 10);
        if (!end || *end != '.')
            bad = "cursor is not valid";
        else
            q->cursor_id = strtoll(end + 1, &end, 10);
        if (!bad && *end)
            bad = "cursor is not valid";
    }
    if (bad) {
        reply_error(c->resp, 400, bad);
        return false;
    }
    return parse_time_param(c, "updated_since", &q->since) &&
           parse_time_param(c, "updated_until", &q->until);
}

static int64_t whole_seconds(int64_t ms)
{
    return ms - ((ms % 1000) + 1000) % 1000;
}

static int64_t sort_key(const struct sim_deal *d, enum sort_by sort)
{
    if (sort == SORT_UPDATE)
        return whole_seconds(d->modified_ms);
    if (sort == SORT_ADD)
        return whole_seconds(d->created_ms);
    return strtoll(d->id, NULL, 10);
}

static bool deal_listed(const struct sim_deal *d, const struct list_query *q)
{
    int64_t updated = whole_seconds(d->modified_ms);
    const char *status = d->archived ? "deleted" : pipedrive_status(d);

    if (q->ids && !in_list(q->ids, d->id))
        return false;
    if (q->statuses ? !in_list(q->statuses, status) : d->archived)
        return false;
    if (updated < q->since || updated >= q->until)
        return false;
    if (q->owner && (!sim_deal_value(d, DEAL_OWNER) ||
                     strcmp(q->owner, sim_deal_value(d, DEAL_OWNER)) != 0))
        return false;
    if (q->stage && strcmp(q->stage, pipedrive_stage_id(d)) != 0)
        return false;
    if (q->pipeline_id && strcmp(q->pipeline_id, pipeline.id) != 0)
        return false;
    return true;
}

static int compare_listed(const void *a, const void *b, void *ctx)
{
    const struct sim_deal *da = *(struct sim_deal *const *)a;
    const struct sim_deal *db = *(struct sim_deal *const *)b;
    const struct list_query *q = ctx;
    int64_t ka = sort_key(da, q->sort), kb = sort_key(db, q->sort);
    int64_t ia = strtoll(da->id, NULL, 10), ib = strtoll(db->id, NULL, 10);
    int cmp = ka < kb ? -1 : ka > kb ? 1 : ia < ib ? -1 : ia > ib ? 1 : 0;

    return q->desc ? -cmp : cmp;
}

/* Past the cursor in the list's order. */
static bool after_cursor(const struct sim_deal *d, const struct list_query *q)
{
    int64_t k = sort_key(d, q->sort), id = strtoll(d->id, NULL, 10);
    int cmp = k < q->cursor_key   ? -1
              : k > q->cursor_key ? 1
              : id < q->cursor_id ? -1
              : id > q->cursor_id ? 1
                                  : 0;

    return !q->has_cursor || (q->desc ? cmp < 0 : cmp > 0);
}

static void h_list(struct call *c)
{
    struct pipedrive_sim *sim = c->sim;
    struct list_query q;
    bool archived = sim_path_is(&c->path, 3, "archived");
    char *next = NULL;

    if (!parse_list_query(c, &q)) {
        list_query_clear(&q);
        return;
    }
    json_t *data = json_array();
    sim_store_lock(sim->store);
    size_t n = sim_store_deal_count(sim->store);
    struct sim_deal **hits = xcalloc(n ? n : 1, sizeof(*hits));
    size_t nhits = 0;
    /* The simulator keeps no archived (read-only) deals: that list is
     * always empty, but answers as Pipedrive does. */
    for (size_t i = 0; !archived && i < n; i++) {
        struct sim_deal *d = sim_store_deal_at(sim->store, i);
        if (deal_listed(d, &q))
            hits[nhits++] = d;
    }
    qsort_r(hits, nhits, sizeof(*hits), compare_listed, &q);
    for (size_t i = 0; i < nhits; i++) {
        if (!after_cursor(hits[i], &q))
            continue;
        if ((long)json_array_size(data) == q.limit) {
            const struct sim_deal *last = hits[i - 1];
            next =
                xasprintf("%" PRId64 ".%s", sort_key(last, q.sort), last->id);
            break;
        }
        json_array_append_new(data,
                              pipedrive_deal_json(hits[i], &sim->account,
                                                  PIPEDRIVE_REST, q.keys));
    }
    sim_store_unlock(sim->store);
    free(hits);
    reply_data(c->resp, data, cursor_data(next));
    free(next);
    list_query_clear(&q);
}

static bool text_matches(const char *value, const char *term, bool exact)
{
    if (!value)
        return false;
    return exact ? strcasecmp(value, term) == 0
                 : strcasestr(value, term) != NULL;
}

static void h_search(struct call *c)
{
    struct pipedrive_sim *sim = c->sim;
    const char *term = http_request_query(c->req, "term");
    const char *fields_text = http_request_query(c->req, "fields");
    const char *exact_text = http_request_query(c->req, "exact_match");
    json_t *fields = split_list(fields_text);
    bool exact = exact_text && strcmp(exact_text, "true") == 0;
    long limit, offset;
    char *next = NULL;

    if (!page_params(c, &limit, &offset))
        goto out;
    if (!term || strlen(term) < 2) {
        reply_error(c->resp, 400, "term must be at least 2 characters long");
        goto out;
    }
    if (exact_text && strcmp(exact_text, "true") &&
        strcmp(exact_text, "false")) {
        reply_error(c->resp, 400, "exact_match must be true or false");
        goto out;
    }
    bool titles = !fields || in_list(fields, "title");
    bool customs = !fields || in_list(fields, "custom_fields");
    json_t *items = json_array();
    long seen = 0;
    sim_store_lock(sim->store);
    for (size_t i = 0; i < sim_store_deal_count(sim->store); i++) {
        struct sim_deal *d = sim_store_deal_at(sim->store, i);
        json_t *matched = json_array();
        bool hit = false;
        if (d->archived) {
            json_decref(matched);
            continue;
        }
        if (titles && text_matches(sim_deal_value(d, DEAL_NAME), term, exact))
            hit = true;
        for (size_t k = 0; customs && k < pipedrive_custom_count; k++) {
            const char *v = sim_deal_value(d, pipedrive_customs[k].field);
            if (text_matches(v, term, exact)) {
                json_array_append_new(matched, json_string(v));
                hit = true;
            }
        }
        if (!hit || seen++ < offset) {
            json_decref(matched);
            continue;
        }
        if ((long)json_array_size(items) == limit) {
            json_decref(matched);
            next = offset_cursor(seen - 1);
            break;
        }
        const char *owner = sim_deal_value(d, DEAL_OWNER);
        const struct sim_stage *st =
            sim_store_stage(sim->store, pipedrive_stage_id(d));
        json_t *item = json_pack(
            "{s:I, s:s, s:s, s:o, s:s, s:s, s:i, s:o, s:{s:I, s:s}, s:n, "
            "s:n, s:o, s:[], s:b}",
            "id", (json_int_t)strtoll(d->id, NULL, 10), "type", "deal", "title",
            sim_deal_value(d, DEAL_NAME) ? sim_deal_value(d, DEAL_NAME) : "",
            "value",
            json_real(sim_deal_value(d, DEAL_AMOUNT)
                          ? strtod(sim_deal_value(d, DEAL_AMOUNT), NULL)
                          : 0),
            "currency", "EUR", "status", pipedrive_status(d), "visible_to", 3,
            "owner",
            owner
                ? json_pack("{s:I}", "id", (json_int_t)strtoll(owner, NULL, 10))
                : json_null(),
            "stage", "id", (json_int_t)strtoll(pipedrive_stage_id(d), NULL, 10),
            "name", st ? st->label : "", "person", "organization",
            "custom_fields", matched, "notes", "is_archived", 0);
        json_array_append_new(
            items, json_pack("{s:f, s:o}", "result_score", 1.0, "item", item));
    }
    sim_store_unlock(sim->store);
    reply_data(c->resp, json_pack("{s:o}", "items", items), cursor_data(next));
out:
    free(next);
    json_decref(fields);
}

/* The changelog key of a store field, or NULL for none. */
static const char *changelog_key(int field, const char *old, const char *new_)
{
    const struct pipedrive_custom *cf = NULL;

    for (size_t i = 0; i < pipedrive_custom_count; i++) {
        if (pipedrive_customs[i].field == field)
            cf = &pipedrive_customs[i];
    }
    if (cf)
        return cf->key;
    switch (field) {
    case DEAL_NAME:
        return "title";
    case DEAL_AMOUNT:
        return "value";
    case DEAL_CLOSE_DATE:
        return "expected_close_date";
    case DEAL_OWNER:
        return "owner_id";
    case DEAL_STAGE: {
        bool was_closed = old && strchr(old, '-');
        bool is_closed = new_ && strchr(new_, '-');
        return was_closed || is_closed ? "status" : "stage_id";
    }
    default:
        return NULL;
    }
}

/* A value as the changelog shows it: the status for a stage change that
 * opened or closed the deal. */
static const char *changelog_value(int field, const char *key, const char *v)
{
    if (field != DEAL_STAGE || strcmp(key, "status") != 0)
        return v;
    if (v && strncmp(v, "won-", 4) == 0)
        return "won";
    if (v && strncmp(v, "lost-", 5) == 0)
        return "lost";
    return "open";
}

static int compare_entries(const void *a, const void *b)
{
    const json_t *ea = *(json_t *const *)a, *eb = *(json_t *const *)b;
    int64_t ta = json_integer_value(json_object_get(ea, "_ms"));
    int64_t tb = json_integer_value(json_object_get(eb, "_ms"));

    return ta < tb ? 1 : ta > tb ? -1 : 0;
}

/* One changelog entry of the change that set v, with its time in ms
 * (_ms) for the sort. */
static void add_entry(struct pipedrive_sim *sim, const struct sim_value *v,
                      const char *key, const char *old, const char *new_,
                      json_t ***entries, size_t *n)
{
    char when[32];

    pipedrive_time_v1(v->time_ms, when);
    json_t *e = json_pack(
        "{s:s, s:o, s:o, s:I, s:s, s:s, s:s, s:b, s:I}", "field_key", key,
        "old_value", old ? json_string(old) : json_null(), "new_value",
        new_ ? json_string(new_) : json_null(), "actor_user_id",
        (json_int_t)strtoll(
            pipedrive_actor_user(&sim->account, v->actor, v->actor_id), NULL,
            10),
        "time", when, "change_source", pipedrive_change_source(v->actor),
        "change_source_user_agent",
        v->actor == SIM_ACTOR_TOKEN ? "fieldsync" : "crmsim",
        "is_bulk_update_flag", 0, "_ms", (json_int_t)v->time_ms);
    *entries = xrealloc(*entries, (*n + 1) * sizeof(**entries));
    (*entries)[(*n)++] = e;
}

/* Every change of the deal's fields the history still holds (the seed's
 * and a creation's values are not changes), newest first. A won or lost
 * deal reopened into another stage than it was closed in changed its
 * status and its stage_id: two entries of one time (in either order, as
 * the sort leaves them; Pipedrive documents none). */
static json_t **changelog_entries(struct pipedrive_sim *sim,
                                  const struct sim_deal *d, size_t *n)
{
    json_t **entries = NULL;

    *n = 0;
    for (int f = 0; f < SIM_FIELD_COUNT; f++) {
        for (const struct sim_value *v = d->fields[f]; v; v = v->prev) {
            const char *was = v->prev ? v->prev->value : NULL;
            const char *key = changelog_key(f, was, v->value);
            /* The seed's values and a creation's are not changes. */
            if (!key || v->actor == SIM_ACTOR_IMPORT ||
                (!v->prev && v->time_ms <= d->created_ms))
                continue;
            add_entry(sim, v, key, changelog_value(f, key, was),
                      changelog_value(f, key, v->value), &entries, n);
            if (f != DEAL_STAGE || strcmp(key, "status") != 0)
                continue;
            const char *stage_was = pipedrive_stage_of(v->prev);
            const char *stage_now = pipedrive_stage_of(v);
            if (strcmp(stage_was, stage_now) != 0)
                add_entry(sim, v, "stage_id", stage_was, stage_now, &entries,
                          n);
        }
    }
    if (*n > 1)
        qsort(entries, *n, sizeof(*entries), compare_entries);
    return entries;
}

static void h_changelog(struct call *c)
{
    struct pipedrive_sim *sim = c->sim;
    long limit, offset;
    size_t n = 0;
    json_t **entries = NULL;
    char *next = NULL;

    if (!page_params(c, &limit, &offset))
        return;
    sim_store_lock(sim->store);
    struct sim_deal *d = sim_store_find(sim->store, c->id);
    if (d)
        entries = changelog_entries(sim, d, &n);
    sim_store_unlock(sim->store);
    if (!d) {
        reply_error(c->resp, 404, "Deal not found");
        return;
    }
    json_t *data = json_array();
    for (size_t i = 0; i < n; i++) {
        if ((long)i >= offset && (long)json_array_size(data) < limit) {
            json_object_del(entries[i], "_ms");
            json_array_append(data, entries[i]);
        } else if ((long)i >= offset && !next) {
            next = offset_cursor((long)i);
        }
        json_decref(entries[i]);
    }
    free(entries);
    reply_data(c->resp, data, cursor_data(next));
    free(next);
}

/* ---- webhooks --------------------------------------------------------- */

/* The registered webhook as the v1 API shows it; a->mu held. */
static json_t *webhook_json(struct pipedrive_sim *sim)
{
    struct pipedrive_account *a = &sim->account;
    char added[32];

    clock_format_iso(a->hook_added_ms, added);
    json_int_t user = (json_int_t)sim->config.user_id;
    return json_pack(
        "{s:I, s:I, s:I, s:I, s:s, s:s, s:s, s:s, s:i, s:s, s:n, s:s, s:o, "
        "s:o, s:n, s:n, s:n, s:I, s:s}",
        "id", (json_int_t)a->webhook_id, "company_id",
        (json_int_t)a->company_id, "owner_id", user, "user_id", user,
        "event_action", a->event_action, "event_object", "deal",
        "subscription_url", a->subscription_url, "version", "2.0", "is_active",
        1, "add_time", added, "remove_time", "type", "general",
        "http_auth_user",
        a->hook_user ? json_string(a->hook_user) : json_null(),
        "http_auth_password",
        a->hook_password ? json_string(a->hook_password) : json_null(),
        "remove_reason", "last_delivery_time", "last_http_status", "admin_id",
        user, "name", a->hook_name);
}

static void reply_v1(struct http_response *resp, int status, json_t *data)
{
    sim_reply(resp, status,
              json_pack("{s:s, s:b, s:o}", "status", "ok", "success", 1, "data",
                        data));
}

static void reply_v1_errors(struct http_response *resp, const char *field,
                            const char *message)
{
    sim_reply(resp, 400,
              json_pack("{s:s, s:b, s:{s:[s]}}", "status", "error", "success",
                        0, "errors", field, message));
}

static void h_webhooks(struct call *c)
{
    struct pipedrive_account *a = &c->sim->account;
    json_t *data = json_array();

    pthread_mutex_lock(&a->mu);
    if (a->webhook_id)
        json_array_append_new(data, webhook_json(c->sim));
    pthread_mutex_unlock(&a->mu);
    reply_v1(c->resp, 200, data);
}

static bool is_url(const char *s)
{
    return s &&
           (strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0) &&
           strlen(s) < 2048 && !strpbrk(s, " \t\r\n");
}

/* Registers the company's webhook; crmsim keeps one, so a second
 * registration replaces the first. Deliveries go to its URL from now. */
static void h_webhook_add(struct call *c)
{
    struct pipedrive_sim *sim = c->sim;
    struct pipedrive_account *a = &sim->account;
    const char *url =
        json_string_value(json_object_get(c->body, "subscription_url"));
    const char *action =
        json_string_value(json_object_get(c->body, "event_action"));
    const char *object =
        json_string_value(json_object_get(c->body, "event_object"));
    const char *name = json_string_value(json_object_get(c->body, "name"));
    const char *version =
        json_string_value(json_object_get(c->body, "version"));
    const char *user =
        json_string_value(json_object_get(c->body, "http_auth_user"));
    const char *password =
        json_string_value(json_object_get(c->body, "http_auth_password"));

    if (!need_body(c))
        return;
    if (!is_url(url)) {
        reply_v1_errors(c->resp, "subscription_url",
                        "invalid or non-reachable URL");
        return;
    }
    if (!action || (strcmp(action, "*") && strcmp(action, "create") &&
                    strcmp(action, "change") && strcmp(action, "delete"))) {
        reply_v1_errors(c->resp, "event_action",
                        "must be create, change, delete or *");
        return;
    }
    if (!object || (strcmp(object, "*") && strcmp(object, "deal"))) {
        reply_v1_errors(c->resp, "event_object",
                        "crmsim delivers deal events only");
        return;
    }
    if (!name || !*name || strlen(name) > 255) {
        reply_v1_errors(c->resp, "name", "is required, at most 255 characters");
        return;
    }
    if (version && strcmp(version, "2.0") != 0) {
        reply_v1_errors(c->resp, "version",
                        "crmsim sends webhooks v2 (2.0) only");
        return;
    }
    if (!user != !password) {
        reply_v1_errors(c->resp, "http_auth_password",
                        "give both http_auth_user and http_auth_password");
        return;
    }
    pthread_mutex_lock(&a->mu);
    free(a->subscription_url);
    free(a->event_action);
    free(a->hook_name);
    free(a->hook_user);
    free(a->hook_password);
    a->webhook_id = a->webhook_id + 1;
    a->subscription_url = xstrdup(url);
    a->event_action = xstrdup(action);
    a->hook_name = xstrdup(name);
    a->hook_user = user ? xstrdup(user) : NULL;
    a->hook_password = password ? xstrdup(password) : NULL;
    a->hook_added_ms = clock_now_ms();
    json_t *data = webhook_json(sim);
    pthread_mutex_unlock(&a->mu);
    webhook_sender_set_url(sim->sender, url);
    reply_v1(c->resp, 201, data);
}

static void h_webhook_delete(struct call *c)
{
    struct pipedrive_sim *sim = c->sim;
    struct pipedrive_account *a = &sim->account;
    long id;
    bool found;

    pthread_mutex_lock(&a->mu);
    found = a->subscription_url && parse_long(c->id, 1, 1L << 40, &id) &&
            id == a->webhook_id;
    if (found) {
        free(a->subscription_url);
        a->subscription_url = NULL;
    }
    pthread_mutex_unlock(&a->mu);
    if (!found) {
        reply_error(c->resp, 404, "Webhook not found");
        return;
    }
    webhook_sender_set_url(sim->sender, NULL);
    reply_v1(c->resp, 200, json_pack("{s:I}", "id", (json_int_t)id));
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

static struct route_result route_v2(struct call *c, const char *m)
{
    static const struct route_result not_found = {NULL, -1, 404};
    const struct sim_path *p = &c->path;

    if (p->count == 3 && sim_path_is(p, 2, "stages"))
        return pick(m, "GET", h_stages, KIND_STAGES);
    if (p->count == 3 && sim_path_is(p, 2, "pipelines"))
        return pick(m, "GET", h_pipelines, KIND_PIPELINES);
    if (p->count == 3 && sim_path_is(p, 2, "dealFields"))
        return pick(m, "GET", h_deal_fields, KIND_DEAL_FIELDS);
    if (!sim_path_is(p, 2, "deals"))
        return not_found;
    if (p->count == 3)
        return strcmp(m, "POST") == 0 ? pick(m, "POST", h_create, KIND_CREATE)
                                      : pick(m, "GET", h_list, KIND_LIST);
    if (p->count == 4 && sim_path_is(p, 3, "archived"))
        return pick(m, "GET", h_list, KIND_ARCHIVED);
    if (p->count == 4 && sim_path_is(p, 3, "search"))
        return pick(m, "GET", h_search, KIND_SEARCH);
    if (p->count == 4) {
        long id;
        if (!parse_long(p->seg[3], 1, 1L << 40, &id))
            return not_found;
        c->id = p->seg[3];
        if (strcmp(m, "PATCH") == 0)
            return pick(m, "PATCH", h_update, KIND_UPDATE);
        if (strcmp(m, "DELETE") == 0)
            return pick(m, "DELETE", h_delete, KIND_DELETE);
        return pick(m, "GET", h_get, KIND_GET);
    }
    return not_found;
}

static struct route_result route_api(struct call *c, const char *m)
{
    static const struct route_result not_found = {NULL, -1, 404};
    const struct sim_path *p = &c->path;

    if (sim_path_is(p, 0, "api") && sim_path_is(p, 1, "v2"))
        return route_v2(c, m);
    if (!sim_path_is(p, 0, "v1"))
        return not_found;
    if (p->count == 3 && sim_path_is(p, 1, "users") && sim_path_is(p, 2, "me"))
        return pick(m, "GET", h_user_me, KIND_USER_ME);
    if (p->count == 2 && sim_path_is(p, 1, "users"))
        return pick(m, "GET", h_users, KIND_USERS);
    if (p->count == 2 && sim_path_is(p, 1, "webhooks"))
        return strcmp(m, "POST") == 0
                   ? pick(m, "POST", h_webhook_add, KIND_WEBHOOK_ADD)
                   : pick(m, "GET", h_webhooks, KIND_WEBHOOKS);
    if (p->count == 3 && sim_path_is(p, 1, "webhooks")) {
        c->id = p->seg[2];
        return pick(m, "DELETE", h_webhook_delete, KIND_WEBHOOK_DELETE);
    }
    if (p->count == 4 && sim_path_is(p, 1, "deals")) {
        long id;
        if (!parse_long(p->seg[2], 1, 1L << 40, &id))
            return not_found;
        c->id = p->seg[2];
        if (sim_path_is(p, 3, "changelog"))
            return pick(m, "GET", h_changelog, KIND_CHANGELOG);
        if (sim_path_is(p, 3, "merge"))
            return pick(m, "PUT", h_merge, KIND_MERGE);
    }
    return not_found;
}

/* The API token (x-api-token, or the legacy api_token query parameter),
 * or an OAuth access token issued here and still alive (Bearer). */
static enum sim_oauth_check authorised(struct pipedrive_sim *sim,
                                       const struct http_request *req,
                                       int64_t *expired_ms)
{
    const char *token = http_request_header(req, "x-api-token");
    const char *bearer = sim_bearer_token(req);

    if (!token)
        token = http_request_query(req, "api_token");
    if (sim_same_secret(token, sim->config.token))
        return SIM_OAUTH_OK;
    if (!bearer)
        return SIM_OAUTH_UNKNOWN;
    return sim_oauth_check(sim->oauth, bearer, expired_ms);
}

/* Refuses the call's credentials: Pipedrive's envelope, its OAuth
 * proxy's words for a bad or expired access token. */
static void refuse_auth(struct call *c, enum sim_oauth_check auth)
{
    bool bearer = sim_bearer_token(c->req) != NULL;

    sim_control_count_refused(c->sim->control, auth == SIM_OAUTH_EXPIRED);
    if (auth == SIM_OAUTH_EXPIRED)
        reply_error(c->resp, 401, "Invalid token: access token has expired");
    else if (bearer)
        reply_error(c->resp, 401, "Invalid token: access token is invalid");
    else
        reply_error(c->resp, 401, "unauthorized access");
}

/* ---- OAuth (oauth.pipedrive.com) -------------------------------------- */

/* The token endpoint's refusals: Pipedrive's message beside the OAuth
 * error code. */
static void reply_oauth_error(struct http_response *resp, int status,
                              const char *error, const char *message)
{
    sim_reply(resp, status,
              json_pack("{s:b, s:s, s:s}", "success", 0, "message", message,
                        "error", error));
}

/* POST /oauth/token with grant_type refresh_token and the client in a
 * Basic header: a new access token, a new refresh token (the old one
 * dead from then on) and the company's api_domain. */
static void h_oauth_token(struct pipedrive_sim *sim,
                          const struct http_request *req,
                          struct http_response *resp)
{
    const char *client = http_request_header(req, "Authorization");
    const char *type = http_request_header(req, "Content-Type");
    struct sim_form form;
    struct sim_oauth_issue issue;

    sim_form_parse(&form, req->body, req->body_len);
    const char *grant = sim_form_get(&form, "grant_type");
    sim_control_count_call(sim->control, KIND_OAUTH_TOKEN, false);
    if (!type || strncasecmp(type, "application/x-www-form-urlencoded",
                             strlen("application/x-www-form-urlencoded")) != 0)
        reply_oauth_error(resp, 400, "invalid_request",
                          "Invalid request: content must be "
                          "application/x-www-form-urlencoded");
    else if (!client)
        reply_oauth_error(resp, 400, "invalid_client",
                          "Invalid client: cannot retrieve client "
                          "credentials");
    else if (!sim->oauth || !sim_same_secret(client, sim->client_basic))
        reply_oauth_error(resp, 400, "invalid_client",
                          "Invalid client: client is invalid");
    else if (!grant)
        reply_oauth_error(resp, 400, "invalid_request",
                          "Missing parameter: `grant_type`");
    else if (strcmp(grant, "refresh_token") != 0)
        reply_oauth_error(resp, 400, "unsupported_grant_type",
                          "Unsupported grant type: `grant_type` is invalid");
    else if (!sim_oauth_refresh(sim->oauth,
                                sim_form_get(&form, "refresh_token"), &issue))
        reply_oauth_error(resp, 400, "invalid_grant",
                          "Invalid grant: refresh token is invalid");
    else {
        pthread_mutex_lock(&sim->mu);
        json_t *body = json_pack(
            "{s:s, s:s, s:I, s:s, s:s, s:s}", "access_token",
            issue.access_token, "token_type", "Bearer", "expires_in",
            (json_int_t)issue.ttl_s, "refresh_token", issue.refresh_token,
            "scope", "base,deals:full,users:read,admin", "api_domain",
            sim->api_domain ? sim->api_domain : "");
        pthread_mutex_unlock(&sim->mu);
        sim_reply(resp, 200, body);
        sim_oauth_issue_clear(&issue);
    }
    sim_form_free(&form);
}

static bool parse_body(struct call *c)
{
    json_error_t jerr;

    if (c->req->body_len == 0)
        return true;
    c->body = json_loadb(c->req->body, c->req->body_len, JSON_REJECT_DUPLICATES,
                         &jerr);
    if (c->body)
        return true;
    reply_error(c->resp, 400, "The request body is not valid JSON");
    return false;
}

static void serve_api(struct call *c)
{
    struct pipedrive_sim *sim = c->sim;
    struct route_result r = route_api(c, c->req->method);
    int status = 0;

    if (!r.fn) {
        reply_error(c->resp, r.status,
                    r.status == 404 ? "Unknown method ."
                                    : "Method not allowed for this resource");
        return;
    }
    int64_t expired_ms = 0;
    enum sim_oauth_check auth = authorised(sim, c->req, &expired_ms);
    if (auth != SIM_OAUTH_OK) {
        refuse_auth(c, auth);
        return;
    }
    if (!admit(sim, (enum call_kind)r.kind, c->resp))
        return;
    enum sim_api_fault fault =
        sim_control_roll_fault(sim->control, (int)r.kind, &status);
    if (fault == SIM_FAULT_5XX) {
        reply_error(c->resp, status,
                    "Service temporarily unavailable, please try again");
        return;
    }
    if (parse_body(c))
        r.fn(c);
    if (fault == SIM_FAULT_HANG) {
        clock_sleep_ms(PIPEDRIVE_SIM_HANG_MS);
        reply_error(c->resp, 504, "Gateway timeout");
    }
}

static void on_request(void *ctx, const struct http_request *req,
                       struct http_response *resp)
{
    struct call c = {.sim = ctx, .req = req, .resp = resp};

    if (strcmp(req->path, "/oauth/token") == 0 ||
        strcmp(req->path, "/oauth/token/") == 0) {
        if (strcmp(req->method, "POST") != 0)
            reply_oauth_error(resp, 405, "invalid_request",
                              "Method not allowed");
        else
            h_oauth_token(c.sim, req, resp);
        return;
    }
    /* v1 answers at /api/v1 too, as on a company's api_domain. */
    sim_path_split(&c.path, strncmp(req->path, "/api/v1/", 8) == 0
                                ? req->path + 4
                                : req->path);
    serve_api(&c);
    json_decref(c.body);
    sim_path_free(&c.path);
}

/* ---- the crmsim pipedrive command ------------------------------------- */

static char *deal_id(void *ctx, size_t n)
{
    return xasprintf("%zu", (size_t)DEAL_ID_BASE + n);
}

static char *user_id(void *ctx, size_t n)
{
    struct pipedrive_sim *sim = ctx;

    if (sim->naming_api_user)
        return xstrdup(sim->user_id);
    return xasprintf("%zu", (size_t)USER_ID_BASE + n);
}

/* A deal value of 0 is Pipedrive's "no value". */
static bool same_as_empty(void *ctx, int field, const char *value)
{
    return field == DEAL_AMOUNT && strtod(value, NULL) == 0;
}

static void on_start(void *ctx, const struct sim_core *core)
{
    struct pipedrive_sim *sim = ctx;

    sim->store = core->store;
    sim->control = core->control;
    sim->sender = core->sender;
    /* The token's user is one of the company's users, after the seed's:
     * it may own deals like any other. */
    sim_store_lock(sim->store);
    sim->naming_api_user = true;
    sim_store_add_owner(sim->store, API_USER_NAME);
    sim->naming_api_user = false;
    sim_store_unlock(sim->store);
}

/* The company's api_domain: the one given, else this simulator's own
 * URL (its --listen host, loopback for a wildcard). */
static void on_listening(void *ctx, uint16_t port)
{
    struct pipedrive_sim *sim = ctx;
    const char *listen = sim->config.listen ? sim->config.listen : "";
    const char *colon = strrchr(listen, ':');
    int host_len = colon ? (int)(colon - listen) : (int)strlen(listen);
    char *domain;

    if (sim->config.api_domain)
        domain = xstrdup(sim->config.api_domain);
    else if (host_len == 0 || strncmp(listen, "0.0.0.0", 7) == 0 ||
             strncmp(listen, "[::]", 4) == 0)
        domain = xasprintf("http://127.0.0.1:%u", (unsigned)port);
    else
        domain = xasprintf("http://%.*s:%u", host_len, listen, (unsigned)port);
    pthread_mutex_lock(&sim->mu);
    sim->api_domain = domain;
    pthread_mutex_unlock(&sim->mu);
}

/* Another client of the company spends the rest of the 2 s window. */
static void on_exhaust(void *ctx)
{
    struct pipedrive_sim *sim = ctx;
    int64_t now = clock_now_ms();

    pthread_mutex_lock(&sim->mu);
    while (sim_window_take(&sim->burst, now))
        continue;
    pthread_mutex_unlock(&sim->mu);
}

static void usage(FILE *out)
{
    fputs("usage: crmsim pipedrive --listen HOST:PORT --data DIR\n"
          "         --webhook-url URL --token T [options]\n"
          "\n"
          "Serves Pipedrive's API v2 for deals, stages, pipelines and deal\n"
          "fields (v1 for users, changelog and merge), seeded from\n"
          "DIR/sales_pipeline.csv and DIR/sales_teams.csv, and POSTs\n"
          "webhooks v2 for every deal change to URL, one event a POST. The\n"
          "/_sim control endpoint (no auth) changes deals as a CRM user and\n"
          "injects faults; see docs/SIMULATOR.md.\n"
          "\n"
          "options:\n",
          out);
    fputs(sim_common_help, out);
    fputs("  --token T             the API token (x-api-token) accepted\n"
          "  --company-id N        the company id (default 9120044)\n"
          "  --user-id N           the token's user, actor of API changes\n"
          "                        (default 13377001)\n"
          "  --webhook-user U      HTTP Basic user sent with webhooks\n"
          "  --webhook-password P  HTTP Basic password sent with webhooks\n"
          "  --rate-2s N           API calls per rolling 2 s (default 20)\n"
          "  --rate-daily N        API tokens per UTC day (default 30000)\n"
          "  --ban-ms N            how long a webhook banned after 10 failed\n"
          "                        first attempts stays banned (1800000)\n"
          "  --oauth-client-id ID  serve /oauth/token for this OAuth client\n"
          "  --oauth-client-secret S  its secret (Basic client auth)\n"
          "  --refresh-token T     the install's first refresh token (each\n"
          "                        refresh rotates it)\n"
          "  --token-ttl-s N       access tokens' lifetime (default 3599)\n"
          "  --api-domain URL      api_domain answered (default: this\n"
          "                        simulator's own URL)\n"
          "  --help                show this help\n",
          out);
}

/* Returns 0 to run, 1 when help was shown, -1 on a usage error. */
static int parse_options(int argc, char **argv, struct sim_common_options *o,
                         struct pipedrive_sim_config *p)
{
    enum {
        OPT_TOKEN = 256,
        OPT_COMPANY,
        OPT_USER,
        OPT_HOOK_USER,
        OPT_HOOK_PASSWORD,
        OPT_RATE_2S,
        OPT_RATE_DAILY,
        OPT_BAN_MS,
        OPT_OAUTH_CLIENT,
        OPT_OAUTH_SECRET,
        OPT_REFRESH,
        OPT_TTL,
        OPT_API_DOMAIN,
        OPT_HELP,
    };
    static const struct option own[] = {
        {"token", required_argument, NULL, OPT_TOKEN},
        {"company-id", required_argument, NULL, OPT_COMPANY},
        {"user-id", required_argument, NULL, OPT_USER},
        {"webhook-user", required_argument, NULL, OPT_HOOK_USER},
        {"webhook-password", required_argument, NULL, OPT_HOOK_PASSWORD},
        {"rate-2s", required_argument, NULL, OPT_RATE_2S},
        {"rate-daily", required_argument, NULL, OPT_RATE_DAILY},
        {"ban-ms", required_argument, NULL, OPT_BAN_MS},
        {"oauth-client-id", required_argument, NULL, OPT_OAUTH_CLIENT},
        {"oauth-client-secret", required_argument, NULL, OPT_OAUTH_SECRET},
        {"refresh-token", required_argument, NULL, OPT_REFRESH},
        {"token-ttl-s", required_argument, NULL, OPT_TTL},
        {"api-domain", required_argument, NULL, OPT_API_DOMAIN},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    struct option *longopts = sim_longopts(own);
    int64_t rate_2s = 20, rate_daily = 30000;
    int c, rc = 0;

    sim_common_defaults(o);
    p->company_id = 9120044;
    p->user_id = 13377001;
    p->ban_ms = PIPEDRIVE_SIM_BAN_MS;
    p->token_ttl_s = PIPEDRIVE_SIM_TOKEN_TTL_S;
    optind = 1;
    while (rc == 0 && (c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_TOKEN:
            p->token = optarg;
            break;
        case OPT_COMPANY:
            rc = sim_parse_number("--company-id", optarg, 1, INT64_MAX,
                                  &p->company_id);
            break;
        case OPT_USER:
            rc = sim_parse_number("--user-id", optarg, 1, INT64_MAX,
                                  &p->user_id);
            break;
        case OPT_HOOK_USER:
            p->hook_user = optarg;
            break;
        case OPT_HOOK_PASSWORD:
            p->hook_password = optarg;
            break;
        case OPT_RATE_2S:
            rc = sim_parse_number("--rate-2s", optarg, 1, 1000000, &rate_2s);
            break;
        case OPT_RATE_DAILY:
            rc = sim_parse_number("--rate-daily", optarg, 1, 2000000000,
                                  &rate_daily);
            break;
        case OPT_BAN_MS:
            rc = sim_parse_number("--ban-ms", optarg, 1, 86400000, &p->ban_ms);
            break;
        case OPT_OAUTH_CLIENT:
            p->oauth_client_id = optarg;
            break;
        case OPT_OAUTH_SECRET:
            p->oauth_client_secret = optarg;
            break;
        case OPT_REFRESH:
            p->refresh_token = optarg;
            break;
        case OPT_TTL:
            rc = sim_parse_number("--token-ttl-s", optarg, 1, 86400,
                                  &p->token_ttl_s);
            break;
        case OPT_API_DOMAIN:
            p->api_domain = optarg;
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
    p->rate_2s = (int)rate_2s;
    p->rate_daily = (int)rate_daily;
    if (optind < argc) {
        fprintf(stderr, "crmsim: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (sim_common_check(o) != 0)
        return -1;
    if (!p->token) {
        fprintf(stderr, "crmsim: --token is required\n");
        return -1;
    }
    if (!p->oauth_client_id != !p->oauth_client_secret ||
        !p->oauth_client_id != !p->refresh_token) {
        fprintf(stderr, "crmsim: --oauth-client-id, --oauth-client-secret "
                        "and --refresh-token go together\n");
        return -1;
    }
    p->listen = o->listen;
    if (!p->hook_user != !p->hook_password) {
        fprintf(stderr, "crmsim: give both --webhook-user and "
                        "--webhook-password, or neither\n");
        return -1;
    }
    return 0;
}

int pipedrive_sim_main(int argc, char **argv)
{
    struct sim_common_options o;
    struct pipedrive_sim sim = {0};
    struct webhook_format format;

    int rc = parse_options(argc, argv, &o, &sim.config);
    if (rc != 0)
        return rc > 0 ? 0 : 2;

    snprintf(sim.user_id, sizeof(sim.user_id), "%" PRId64, sim.config.user_id);
    sim.account.company_id = sim.config.company_id;
    sim.account.company_domain = "crmsim";
    sim.account.api_user_id = sim.user_id;
    sim.account.ban_ms = sim.config.ban_ms;
    pthread_mutex_init(&sim.account.mu, NULL);
    if (sim.config.hook_user) {
        sim.account.hook_user = xstrdup(sim.config.hook_user);
        sim.account.hook_password = xstrdup(sim.config.hook_password);
    }
    pipedrive_webhook_format(&sim.account, &format);
    pthread_mutex_init(&sim.mu, NULL);
    if (sim.config.oauth_client_id) {
        struct sim_oauth_config oc = {sim.config.refresh_token,
                                      sim.config.token_ttl_s, true};
        char *pair = xasprintf("%s:%s", sim.config.oauth_client_id,
                               sim.config.oauth_client_secret);
        char *b64 = crypto_base64((const uint8_t *)pair, strlen(pair));
        sim.client_basic = xasprintf("Basic %s", b64);
        sim.oauth = sim_oauth_new(&oc);
        free(b64);
        free(pair);
    }
    sim_window_init(&sim.burst, sim.config.rate_2s, WINDOW_MS);
    sim_window_init(&sim.search, SEARCH_PER_WINDOW, WINDOW_MS);
    sim_daily_init(&sim.daily, sim.config.rate_daily, clock_now_ms());

    struct sim_store_config store = {
        .pipeline = &pipeline,
        .deal_id = deal_id,
        .owner_id = user_id,
        .user_id = user_id,
        .ctx = &sim,
        .same_as_empty = same_as_empty,
    };
    struct sim_frontend fe = {
        .name = "pipedrive",
        .store = &store,
        .webhook = &format,
        .call_kinds = call_kinds,
        .call_kind_count = KIND_COUNT,
        .on_start = on_start,
        .on_listening = on_listening,
        .on_request = on_request,
        .on_exhaust = on_exhaust,
        .ctx = &sim,
    };
    rc = sim_serve(&o, &fe);

    sim_oauth_free(sim.oauth);
    free(sim.client_basic);
    free(sim.api_domain);
    sim_window_free(&sim.burst);
    sim_window_free(&sim.search);
    pthread_mutex_destroy(&sim.mu);
    pthread_mutex_destroy(&sim.account.mu);
    free(sim.account.subscription_url);
    free(sim.account.event_action);
    free(sim.account.hook_name);
    free(sim.account.hook_user);
    free(sim.account.hook_password);
    return rc;
}
