/* The Pipedrive provider: checks webhooks v2 against their Basic
 * credentials, turns deal events into normalised changes, and reads and
 * writes deals over API v2 (users, changelog and webhooks over v1), each
 * call paying its token cost to the connection's governor, with the
 * integration user's API token or an OAuth app's access token. */
#include "providers/pipedrive.h"

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/crypto.h"
#include "base/log.h"
#include "providers/oauth.h"
#include "providers/provider_call.h"
#include "providers/provider_util.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Token costs of the calls made, from the API's own x-token-cost. */
#define COST_DEALS_LIST 10
#define COST_DEALS_ARCHIVED 20
#define COST_DEAL_CREATE 5
#define COST_DEAL_UPDATE 5
#define COST_DEAL_SEARCH 20
#define COST_CHANGELOG 20
#define COST_USERS 20
#define COST_USER_ME 2
#define COST_STAGES 5
#define COST_DEAL_FIELDS 10
#define COST_WEBHOOKS 10
#define COST_WEBHOOK_ADD 10
#define COST_WEBHOOK_DELETE 6

/* Lite plan, API token: 20 calls per rolling 2 s, 30,000 tokens a day. */
#define PD_DEFAULT_WINDOW_CALLS 20
#define PD_DEFAULT_DAILY_TOKENS 30000
/* After a 429 that is not the burst window (the day's budget as the
 * company counts it, shared with its other apps), probe again after this
 * long rather than trust our idea of the company's midnight. */
#define PD_DAILY_PROBE_MS (15 * 60 * 1000)
/* A 403 answered as an HTML page is Cloudflare blocking a client that
 * kept calling after 429s: back off hard. */
#define PD_BLOCKED_PAUSE_MS 60000
/* Added to the burst window the governor counts in (as HubSpot's
 * HS_WINDOW_MARGIN_MS): Pipedrive counts a call when it arrives. */
#define PD_WINDOW_MARGIN_MS 200
/* Random bytes of a webhook password fieldsync makes (hex). */
#define PIPEDRIVE_HOOK_PASSWORD_BYTES 24
/* PATCHes of one pass in flight at once. */
#define PD_WRITE_PARALLEL 4
/* Burst 429s one call waits out before giving up. */
#define PD_BURST_RETRIES 2
#define PD_MAX_PAGES 10000
/* Changelog pages read per deal at most; past them a field's time is the
 * deal's creation (see docs/PIPEDRIVE.md). */
#define PD_CHANGELOG_PAGES 3
#define PD_CHANGELOG_LIMIT 100
/* The last ms of a second a REST time names. */
#define PD_SECOND_END_MS 999
/* How long after its update_time a write's answer may come before the
 * write is taken to have changed nothing. */
#define PD_STALE_WRITE_MS 1000

/* Custom fields looked for by name in /dealFields, and what they hold. */
static const struct {
    const char *name; /* compared lowercased, spaces and '-' as '_' */
    int field;        /* deal field, or -1 for our record id */
} pd_custom[] = {
    {"account", DEAL_ACCOUNT},         {"product", DEAL_PRODUCT},
    {"engage_date", DEAL_ENGAGE_DATE}, {"postcode", DEAL_POSTCODE},
    {"location", DEAL_LOCATION},       {"fieldsync_id", -1},
};

#define PD_CUSTOM_COUNT (sizeof(pd_custom) / sizeof(pd_custom[0]))

/* The standard deal fields and their v2 keys. */
static const char *const pd_std_keys[DEAL_FIELD_COUNT] = {
    [DEAL_NAME] = "title",     [DEAL_STAGE] = "stage_id",
    [DEAL_AMOUNT] = "value",   [DEAL_CLOSE_DATE] = "expected_close_date",
    [DEAL_OWNER] = "owner_id",
};

/* ---- small JSON and text helpers ---- */

/* A number as the shortest plain decimal text that reads back as the
 * same double, so 1054.5 stays "1054.5" rather than 17 digits. */
static char *number_text(double v)
{
    char buf[64];

    if (!isfinite(v) || fabs(v) >= 1e15)
        return NULL;
    for (int prec = 0; prec <= 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*f", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    return xstrdup(buf);
}

/* A Pipedrive time: RFC 3339 (v2, webhooks), "YYYY-MM-DD HH:MM:SS" (v1,
 * UTC) or 10-digit epoch seconds (the webhook meta table's reading).
 * *coarse tells whether it had only whole seconds. 0 when none. */
static int64_t pd_time(const json_t *v, bool *coarse)
{
    int64_t ms = 0;
    const char *s = json_string_value(v);

    if (coarse)
        *coarse = true;
    if (json_is_integer(v))
        return json_integer_value(v) * 1000;
    if (!s)
        return 0;
    if (provider_parse_int64(s, &ms) == 0)
        return strlen(s) <= 10 ? ms * 1000 : ms;
    if (clock_parse_iso(s, &ms) != 0)
        return 0;
    if (coarse)
        *coarse = strchr(s, '.') == NULL;
    return ms;
}

/* A time of a read. REST times have whole seconds only; a deal's
 * update_time is taken at the second's start, so a coarse read never
 * wins over what a webhook timed to the ms within that second. */
static int64_t pd_read_time(const json_t *v)
{
    return pd_time(v, NULL);
}

/* A changelog entry's time: its field changed within that second, so
 * at its end at the latest. Taken there, a field re-read because it
 * differs from what we knew wins over what we knew from earlier in the
 * same second (an import, a webhook timed to the ms) (docs/PIPEDRIVE.md). */
static int64_t pd_logged_time(const json_t *v)
{
    bool coarse = true;
    int64_t ms = pd_time(v, &coarse);

    return ms > 0 && coarse ? ms + PD_SECOND_END_MS : ms;
}

/* The time of our own write: the CRM's update_time has whole seconds;
 * our clock when the answer came, kept within that second, is the best
 * guess of its ms, later than what the CRM held before the write (even
 * a read of the same second) and not later than an edit made after it. */
static int64_t pd_write_time(const json_t *update_time)
{
    int64_t second = pd_time(update_time, NULL);
    int64_t now = clock_now_ms();

    /* An update_time well before the answer: the write changed nothing
     * (the deal held these values already), so it has no time of its
     * own; the pusher takes its clock. */
    if (second <= 0 || now > second + PD_SECOND_END_MS + PD_STALE_WRITE_MS)
        return 0;
    if (now < second)
        return second;
    return now > second + PD_SECOND_END_MS ? second + PD_SECOND_END_MS : now;
}

/* ---- the connection's field map ---- */

enum pd_kind {
    PD_TEXT,   /* varchar, text, varchar_auto */
    PD_DATE,   /* YYYY-MM-DD */
    PD_ENUM,   /* option id <-> label */
    PD_ID,     /* stage_id, owner_id: integer ids */
    PD_NUMBER, /* value */
};

struct pd_map {
    char *key[DEAL_FIELD_COUNT]; /* NULL: not synced */
    bool custom[DEAL_FIELD_COUNT];
    enum pd_kind kind[DEAL_FIELD_COUNT];
    json_t *options[DEAL_FIELD_COUNT]; /* enum: {"id": "label"} */
    char *our_key;
};

static void pd_map_clear(struct pd_map *m)
{
    for (int f = 0; f < DEAL_FIELD_COUNT; f++) {
        free(m->key[f]);
        json_decref(m->options[f]);
    }
    free(m->our_key);
    memset(m, 0, sizeof(*m));
}

static enum pd_kind kind_of_type(const char *type)
{
    if (type && strcmp(type, "date") == 0)
        return PD_DATE;
    if (type && strcmp(type, "enum") == 0)
        return PD_ENUM;
    return PD_TEXT;
}

/* The connection's map: the standard fields always, the custom ones its
 * settings name ({"custom_fields": {name: {key, type, options}}}). */
static void pd_map_load(const struct connection *conn, struct pd_map *m)
{
    json_t *root = NULL;
    const json_t *custom;

    memset(m, 0, sizeof(*m));
    for (int f = 0; f < DEAL_FIELD_COUNT; f++) {
        if (!pd_std_keys[f])
            continue;
        m->key[f] = xstrdup(pd_std_keys[f]);
        m->kind[f] = f == DEAL_NAME         ? PD_TEXT
                     : f == DEAL_AMOUNT     ? PD_NUMBER
                     : f == DEAL_CLOSE_DATE ? PD_DATE
                                            : PD_ID;
    }
    if (conn && conn->settings)
        root = json_loads(conn->settings, 0, NULL);
    custom = json_object_get(root, "custom_fields");
    for (size_t i = 0; i < PD_CUSTOM_COUNT; i++) {
        const json_t *def = json_object_get(custom, pd_custom[i].name);
        const char *key = provider_json_str(def, "key");
        int f = pd_custom[i].field;
        if (!key || !*key)
            continue;
        if (f < 0) {
            m->our_key = xstrdup(key);
            continue;
        }
        m->key[f] = xstrdup(key);
        m->custom[f] = true;
        m->kind[f] = kind_of_type(provider_json_str(def, "type"));
        if (m->kind[f] == PD_ENUM)
            m->options[f] = json_incref(json_object_get(def, "options"));
    }
    json_decref(root);
}

char *pipedrive_field_key(const struct connection *conn, int field)
{
    struct pd_map m;
    char *key = NULL;

    if (field < 0 || field >= DEAL_FIELD_COUNT)
        return NULL;
    pd_map_load(conn, &m);
    if (m.key[field])
        key = xstrdup(m.key[field]);
    pd_map_clear(&m);
    return key;
}

/* The field a wire key holds (status is part of the stage), or -1. */
static int pd_field_of_key(const struct pd_map *m, const char *key)
{
    if (strcmp(key, "status") == 0)
        return DEAL_STAGE;
    for (int f = 0; f < DEAL_FIELD_COUNT; f++) {
        if (m->key[f] && strcmp(m->key[f], key) == 0)
            return f;
    }
    return -1;
}

/* ---- values ---- */

/* The bare value of a custom field as REST or a webhook shows it:
 * {"type":..,"value":..}, {"type":"enum","id":..}, {"id":..,"label":..}
 * or the plain value. */
static const json_t *custom_bare(const json_t *v)
{
    if (!json_is_object(v))
        return v;
    if (json_object_get(v, "value"))
        return json_object_get(v, "value");
    return json_object_get(v, "id");
}

/* A wire value to the field's canonical form; *out NULL when empty.
 * FS_ERR_INVALID when it has none (an unknown option, a bad date). */
static fs_result pd_value_in(const struct pd_map *m, int field,
                             const json_t *raw, char **out)
{
    const json_t *v = m->custom[field] ? custom_bare(raw) : raw;
    char *text = NULL;
    fs_result result;

    *out = NULL;
    if (!v || json_is_null(v))
        return FS_OK;
    switch (m->kind[field]) {
    case PD_NUMBER:
        if (!json_is_number(v))
            return FS_ERR_INVALID;
        /* Pipedrive keeps no empty value: a deal without one holds 0. */
        if (json_number_value(v) == 0)
            return FS_OK;
        text = json_is_integer(v) ? provider_json_text(v)
                                  : number_text(json_real_value(v));
        break;
    case PD_ID:
        if (json_is_object(v))
            v = json_object_get(v, "id");
        text = provider_json_text(v);
        break;
    case PD_ENUM: {
        char *id = provider_json_text(v);
        const char *label =
            id ? json_string_value(json_object_get(m->options[field], id))
               : NULL;
        free(id);
        if (!label)
            return FS_ERR_INVALID;
        text = xstrdup(label);
        break;
    }
    case PD_TEXT:
    case PD_DATE:
        text = json_is_number(v) ? number_text(json_number_value(v))
                                 : provider_json_text(v);
        break;
    }
    if (!text)
        return FS_ERR_INVALID;
    result = deal_field_canonical((enum deal_field)field, text, out);
    free(text);
    return result;
}

/* A canonical value to what Pipedrive takes (null clears). */
static fs_result pd_value_out(const struct pd_map *m, int field,
                              const char *value, json_t **out)
{
    int64_t id;
    const char *label;
    const char *opt_id;
    json_t *opt;

    *out = NULL;
    if (!value || !*value) {
        /* The deal's value cannot be empty: 0 is its "none". */
        *out = m->kind[field] == PD_NUMBER ? json_integer(0) : json_null();
        return FS_OK;
    }
    switch (m->kind[field]) {
    case PD_NUMBER: {
        char *end = NULL;
        double d = strtod(value, &end);
        if (end == value || *end || !isfinite(d))
            return FS_ERR_INVALID;
        if (provider_parse_int64(value, &id) == 0)
            *out = json_integer(id);
        else
            *out = json_real(d);
        return FS_OK;
    }
    case PD_ID:
        if (provider_parse_int64(value, &id) != 0)
            return FS_ERR_INVALID;
        *out = json_integer(id);
        return FS_OK;
    case PD_ENUM:
        json_object_foreach(m->options[field], opt_id, opt)
        {
            label = json_string_value(opt);
            if (label && strcmp(label, value) == 0 &&
                provider_parse_int64(opt_id, &id) == 0) {
                *out = json_integer(id);
                return FS_OK;
            }
        }
        return FS_ERR_INVALID;
    case PD_TEXT:
    case PD_DATE:
        break;
    }
    *out = json_string(value);
    return FS_OK;
}

/* The member holding a field in a deal object (custom ones under
 * custom_fields), or NULL when absent. */
static const json_t *pd_member(const struct pd_map *m, const json_t *obj,
                               int field, bool *present)
{
    const json_t *holder =
        m->custom[field] ? json_object_get(obj, "custom_fields") : obj;
    const json_t *v = json_object_get(holder, m->key[field]);

    *present = v != NULL;
    return v;
}

/* A deal's stage: its stage_id while open; won or lost deals are in
 * their pipeline's won or lost stage ("won-<pipeline>"), as Pipedrive
 * keeps won and lost as a status beside the stage. */
static fs_result pd_stage_in(const json_t *obj, char **out)
{
    const char *status = provider_json_str(obj, "status");
    char *pipeline = provider_json_text(json_object_get(obj, "pipeline_id"));
    char *text = NULL;
    fs_result result;

    *out = NULL;
    if (status && (strcmp(status, "won") == 0 || strcmp(status, "lost") == 0) &&
        pipeline)
        text = xasprintf("%s-%s", status, pipeline);
    else if (json_is_integer(json_object_get(obj, "stage_id")))
        text = provider_json_text(json_object_get(obj, "stage_id"));
    free(pipeline);
    if (!text)
        return json_is_null(json_object_get(obj, "stage_id")) ||
                       !json_object_get(obj, "stage_id")
                   ? FS_OK
                   : FS_ERR_INVALID;
    result = deal_field_canonical(DEAL_STAGE, text, out);
    free(text);
    return result;
}

/* A field's canonical value from a deal object (REST or webhook data). */
static fs_result pd_field_in(const struct pd_map *m, const json_t *obj,
                             int field, char **out)
{
    bool present = false;

    if (field == DEAL_STAGE)
        return pd_stage_in(obj, out);
    return pd_value_in(m, field, pd_member(m, obj, field, &present), out);
}

/* Whether a change's previous (changed fields only) names the field. */
static bool pd_changed(const struct pd_map *m, const json_t *previous,
                       int field)
{
    const json_t *holder = m->custom[field]
                               ? json_object_get(previous, "custom_fields")
                               : previous;

    if (field == DEAL_STAGE && json_object_get(previous, "status"))
        return true;
    return json_object_get(holder, m->key[field]) != NULL;
}

static char *pd_our_id(const struct pd_map *m, const json_t *obj)
{
    if (!m->our_key)
        return NULL;
    return provider_json_id(custom_bare(
        json_object_get(json_object_get(obj, "custom_fields"), m->our_key)));
}

static enum change_actor pd_actor(const struct connection *conn,
                                  const char *source, const char *user_id)
{
    bool ours = source && strcmp(source, "api") == 0 && user_id &&
                conn->app_id && *conn->app_id &&
                strcmp(user_id, conn->app_id) == 0;
    return ours ? ACTOR_US : ACTOR_OTHER;
}

/* ---- webhook deliveries ---- */

char *pipedrive_basic_auth(const char *user, const char *password)
{
    char *pair = xasprintf("%s:%s", user ? user : "", password ? password : "");
    char *b64 = crypto_base64((const uint8_t *)pair, strlen(pair));
    char *header = xasprintf("Basic %s", b64);

    free(b64);
    free(pair);
    return header;
}

static const char *req_header(const struct webhook_request *req,
                              const char *name)
{
    return req->header ? req->header(req->header_ctx, name) : NULL;
}

/* The Basic credentials registered with the webhook are its only proof
 * of origin: compared whole, in constant time. */
static fs_result pd_verify_webhook(const struct connection *conn,
                                   const struct webhook_request *req,
                                   int64_t now_ms)
{
    const char *given = req_header(req, "Authorization");
    char *expected = NULL;
    fs_result result = FS_ERR_AUTH;

    if (!conn->client_secret || !*conn->client_secret || !conn->webhook_user ||
        !*conn->webhook_user || !given || strncasecmp(given, "Basic ", 6) != 0)
        return FS_ERR_AUTH;
    expected = pipedrive_basic_auth(conn->webhook_user, conn->client_secret);
    given += 6;
    while (*given == ' ')
        given++;
    if (crypto_equal(expected + 6, strlen(expected + 6), given, strlen(given)))
        result = FS_OK;
    free(expected);
    return result;
}

static fs_result pd_split_webhook(const struct webhook_request *req,
                                  struct webhook_item **items, size_t *count)
{
    json_t *root = NULL;
    const json_t *meta;
    const char *id;
    const char *ts;
    struct webhook_item *item = NULL;
    fs_result result = FS_ERR_INVALID;

    *items = NULL;
    *count = 0;
    if (req->body_len > PIPEDRIVE_MAX_EVENT_BYTES)
        return FS_ERR_TOO_LARGE;
    root = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, NULL);
    meta = json_object_get(root, "meta");
    id = provider_json_str(meta, "id");
    if (!json_is_object(root) || !json_is_object(meta) || !id || !*id ||
        strlen(id) > PIPEDRIVE_MAX_EVENT_ID)
        goto out;

    item = xcalloc(1, sizeof(*item));
    item->account_id = provider_json_text(json_object_get(meta, "company_id"));
    if (!item->account_id)
        item->account_id = xstrdup("");
    item->app_id = xstrdup("");
    /* The event's time leads, so events arriving together sit together
     * in the inbox's unique index; meta.id is the same on every retry. */
    ts = provider_json_str(meta, "timestamp");
    item->dedup_key = xasprintf("%s:%s", ts ? ts : "", id);
    item->body = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    if (!item->body)
        abort();
    *items = item;
    *count = 1;
    result = FS_OK;
out:
    json_decref(root);
    return result;
}

/* ---- events ---- */

static void set_ignored(struct crm_event *ev, const char *what)
{
    ev->kind = CRM_EVENT_IGNORED;
    free(ev->ignored_type);
    ev->ignored_type = xstrdup(what);
}

/* A merge: the losing deal folds into the survivor, which is read again.
 * Either event of Pipedrive's pair (the loser's delete with merged_to_id,
 * the survivor's change with merged_from_id) does it alone, so losing one
 * of them loses nothing. */
static void pd_set_merge(struct crm_event *ev, char *loser, char *survivor)
{
    ev->kind = CRM_EVENT_MERGE;
    free(ev->crm_id);
    ev->crm_id = xstrdup(survivor);
    ev->new_id = survivor;
    ev->merged_ids = xcalloc(1, sizeof(char *));
    ev->merged_ids[0] = loser;
    ev->merged_count = 1;
}

/* The fields a change sets: those previous names (changed only), with
 * their values from data. Without previous the change is read whole. */
static void pd_parse_change(const struct connection *conn,
                            const struct pd_map *m, const json_t *data,
                            const json_t *previous, struct crm_event *ev)
{
    bool any = false;
    bool bad = false;

    if (!json_is_object(data) || !json_is_object(previous)) {
        ev->kind = CRM_EVENT_READ;
        return;
    }
    /* A deleted deal brought back (within Pipedrive's 30 days). */
    if (json_is_true(json_object_get(previous, "is_deleted")) &&
        !json_is_true(json_object_get(data, "is_deleted"))) {
        ev->kind = CRM_EVENT_RESTORE;
        return;
    }
    for (int f = 0; f < DEAL_FIELD_COUNT; f++) {
        if (!m->key[f] || !pd_changed(m, previous, f))
            continue;
        char *value = NULL;
        if (pd_field_in(m, data, f, &value) != FS_OK) {
            log_info("provider=pipedrive deal=%s field=%s value_rejected=1",
                     ev->crm_id, deal_fields[f].name);
            bad = true;
            continue;
        }
        ev->present[f] = true;
        ev->values[f] = value;
        any = true;
    }
    if (any)
        ev->kind = CRM_EVENT_CHANGE;
    else
        set_ignored(ev, bad ? "change.deal:invalid_value"
                            : "change.deal:unsynced_fields");
}

static fs_result pd_parse_deal_event(const struct connection *conn,
                                     const json_t *root, const char *action,
                                     struct crm_event *ev)
{
    const json_t *meta = json_object_get(root, "meta");
    char *user_id = provider_json_text(json_object_get(meta, "user_id"));
    char *merged_to = provider_json_text(json_object_get(meta, "merged_to_id"));
    char *merged_from =
        provider_json_text(json_object_get(meta, "merged_from_id"));
    struct pd_map m;
    fs_result result = FS_OK;

    pd_map_load(conn, &m);
    ev->actor =
        pd_actor(conn, provider_json_str(meta, "change_source"), user_id);
    if (strcmp(action, "create") == 0) {
        ev->kind = CRM_EVENT_CREATE;
    } else if (strcmp(action, "delete") == 0) {
        if (merged_to && *merged_to) {
            pd_set_merge(ev, xstrdup(ev->crm_id), merged_to);
            merged_to = NULL;
        } else {
            ev->kind = CRM_EVENT_DELETE;
        }
    } else if (strcmp(action, "change") == 0) {
        if (merged_from && *merged_from) {
            pd_set_merge(ev, merged_from, xstrdup(ev->crm_id));
            merged_from = NULL;
        } else {
            pd_parse_change(conn, &m, json_object_get(root, "data"),
                            json_object_get(root, "previous"), ev);
        }
    } else {
        char *what = xasprintf("%s.deal", action);
        set_ignored(ev, what);
        free(what);
    }
    pd_map_clear(&m);
    free(merged_to);
    free(merged_from);
    free(user_id);
    return result;
}

static fs_result pd_parse_event(const struct connection *conn, const char *json,
                                struct crm_event *out)
{
    json_t *root = json_loads(json, 0, NULL);
    const json_t *meta = json_object_get(root, "meta");
    const char *action = provider_json_str(meta, "action");
    const char *entity = provider_json_str(meta, "entity");
    fs_result result = FS_ERR_INVALID;

    memset(out, 0, sizeof(*out));
    /* Webhooks v1 name these "object" and "added"/"updated"/"deleted". */
    if (!entity)
        entity = provider_json_str(meta, "object");
    if (!json_is_object(meta) || !action || !entity)
        goto out;
    out->crm_id = provider_json_text(json_object_get(meta, "entity_id"));
    if (!out->crm_id)
        out->crm_id = provider_json_text(json_object_get(meta, "id"));
    out->time = pd_time(json_object_get(meta, "timestamp"), NULL);
    const char *version = provider_json_str(meta, "version");
    if (strcmp(entity, "deal") != 0 || !version || strcmp(version, "2.0")) {
        /* Other objects, and webhooks v1 (registered by hand with the
         * old format), are not ours to apply. */
        char *what =
            xasprintf("%s.%s%s", action, entity, version ? "" : ":webhooks_v1");
        set_ignored(out, what);
        free(what);
        result = FS_OK;
        goto out;
    }
    if (!out->crm_id || !*out->crm_id || out->time <= 0)
        goto out;
    result = pd_parse_deal_event(conn, root, action, out);
out:
    if (result != FS_OK)
        crm_event_clear(out);
    json_decref(root);
    return result;
}

/* ---- REST calls ---- */

struct pd_reply {
    long status;
    json_t *json;
};

static void pd_reply_clear(struct pd_reply *r)
{
    json_decref(r->json);
    memset(r, 0, sizeof(*r));
}

static fs_result pd_status_result(long status)
{
    switch (status) {
    case 402: /* the company's plan lacks the feature */
        return FS_ERR_FORBIDDEN;
    case 410:
        return FS_ERR_NOT_FOUND;
    default:
        return provider_status_result(status);
    }
}

/* The burst window's figures, fed to the governor on every answer. */
static void pd_observe(struct provider_session *s,
                       const struct http_client_response *resp)
{
    int left = provider_header_int(resp, "x-ratelimit-remaining", -1);
    struct rate_governor *gov = s->governor;

    if (left >= 0 && gov)
        rate_governor_observe(gov, left, -1, clock_now_ms());
    if (left >= 0 && s->write_governor)
        rate_governor_observe(s->write_governor, left, -1, clock_now_ms());
}

static void pd_pause(struct provider_session *s, int64_t until)
{
    if (s->governor)
        rate_governor_pause(s->governor, until);
    if (s->write_governor)
        rate_governor_pause(s->write_governor, until);
}

/* After a 429: the burst window when it says it is spent (for
 * x-ratelimit-reset seconds; true); for a search with room left in the
 * burst window, the search API's own 2 s window (true); else the
 * company's daily budget. */
static bool pd_pause_for(struct provider_session *s,
                         const struct http_client_response *resp, bool search)
{
    int64_t now = clock_now_ms();
    int left = provider_header_int(resp, "x-ratelimit-remaining", -1);
    int reset = provider_header_int(resp, "x-ratelimit-reset", -1);
    int retry_after = provider_header_int(resp, "Retry-After", -1);

    if (search && left > 0) {
        /* 10 searches per 2 s on every plan: taken for the daily budget,
         * one search too many paused the connection for 15 minutes. */
        pd_pause(s, now + PIPEDRIVE_WINDOW_MS);
        log_warn("provider=pipedrive connection=%" PRId64
                 " rate_limit=search pause_ms=%d",
                 s->conn->id, PIPEDRIVE_WINDOW_MS);
        return true;
    }

    if (left == 0 || (left < 0 && retry_after > 0)) {
        int64_t wait = reset > 0 && reset <= 3600 ? reset * 1000LL
                       : retry_after > 0 && retry_after <= 3600
                           ? retry_after * 1000LL
                           : PIPEDRIVE_WINDOW_MS;
        pd_pause(s, now + wait);
        log_warn("provider=pipedrive connection=%" PRId64
                 " rate_limit=burst pause_ms=%" PRId64,
                 s->conn->id, wait);
        return true;
    }
    pd_pause(s, now + PD_DAILY_PROBE_MS);
    log_warn("provider=pipedrive connection=%" PRId64
             " rate_limit=daily pause_ms=%d",
             s->conn->id, PD_DAILY_PROBE_MS);
    return false;
}

static bool is_html(const struct http_client_response *resp)
{
    char *type = http_client_response_header(resp, "Content-Type");
    bool html = type && strstr(type, "text/html") != NULL;

    free(type);
    return html;
}

/* An OAuth connection: its calls go to the company's api_domain with a
 * Bearer token, v1 under /api/v1 there (the API token's /v1 is
 * api.pipedrive.com's legacy root). */
static bool pd_oauth(const struct connection *conn)
{
    return conn->refresh_token != NULL;
}

static char *pd_url(const struct connection *conn, const char *path)
{
    if (pd_oauth(conn) && strncmp(path, "/v1/", 4) == 0) {
        char *api = xasprintf("/api%s", path);
        char *url = provider_url(conn, api);
        free(api);
        return url;
    }
    return provider_url(conn, path);
}

/* The header that authorises the session's next calls (caller frees),
 * and the token in it, to hand back after a 401. */
static fs_result pd_auth_header(struct provider_session *s, char **token,
                                char **header)
{
    *header = NULL;
    fs_result r = provider_access_token(s, token);
    if (r != FS_OK)
        return r;
    *header = pd_oauth(s->conn) ? xasprintf("Authorization: Bearer %s", *token)
                                : xasprintf("x-api-token: %s", *token);
    return FS_OK;
}

/* One call with the connection's token, paying cost tokens (the token
 * taken once the budget lets the call out). Any answer but 429, 5xx, a
 * Cloudflare block and timeouts comes back as FS_OK with its status and
 * parsed body. */
static fs_result pd_call(struct provider_session *s, enum call_class cls,
                         int cost, const char *method, const char *path,
                         const json_t *body, struct pd_reply *reply)
{
    struct call_cost price = {cls, cost};
    char *token = NULL, *auth = NULL;
    struct http_client_response resp = {0};
    char *url = pd_url(s->conn, path);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    fs_result result;

    memset(reply, 0, sizeof(*reply));
    for (int attempt = 0;; attempt++) {
        result = provider_call_acquire(s, &price);
        if (result != FS_OK)
            goto out;
        free(token);
        free(auth);
        result = pd_auth_header(s, &token, &auth);
        if (result != FS_OK)
            goto out;
        const char *headers[] = {auth, "Content-Type: application/json",
                                 "Accept: application/json", NULL};
        result = provider_call_transmit(s, method, url, headers, text,
                                        text ? strlen(text) : 0, &resp);
        pd_observe(s, &resp);
        if (result != FS_ERR_RATE_LIMITED || resp.status != 429)
            break;
        /* The burst window is the company's, shared with its other
         * apps: wait out the reset Pipedrive names (the governor holds
         * the next send) and try again, a few times. The daily budget is
         * not waited for. */
        bool burst = pd_pause_for(s, &resp, strstr(path, "/search") != NULL);
        if (!burst || attempt >= PD_BURST_RETRIES)
            break;
        http_client_response_free(&resp);
    }
    if (result == FS_OK && resp.status == 403 && is_html(&resp)) {
        pd_pause(s, clock_now_ms() + PD_BLOCKED_PAUSE_MS);
        log_warn("provider=pipedrive connection=%" PRId64
                 " rate_limit=blocked pause_ms=%d",
                 s->conn->id, PD_BLOCKED_PAUSE_MS);
        result = FS_ERR_RATE_LIMITED;
    }
    if (result != FS_OK)
        goto out;
    reply->status = resp.status;
    if (resp.status == 401)
        provider_token_rejected(s, token);
    if (resp.body.len > 0)
        reply->json = json_loadb(resp.body.data, resp.body.len, 0, NULL);
    if (reply->status < 300 &&
        !json_is_true(json_object_get(reply->json, "success")))
        result = FS_ERR_REMOTE;
out:
    http_client_response_free(&resp);
    free(text);
    free(auth);
    free(token);
    free(url);
    return result;
}

/* A GET whose status must be 2xx. */
static fs_result pd_get(struct provider_session *s, int cost, const char *path,
                        struct pd_reply *reply)
{
    fs_result result = pd_call(s, CALL_READ, cost, "GET", path, NULL, reply);

    if (result == FS_OK)
        result = pd_status_result(reply->status);
    return result;
}

static char *pd_error_message(const json_t *body, long status)
{
    const char *error = provider_json_str(body, "error");
    const char *info = provider_json_str(body, "error_info");

    /* An empty text says nothing: the status does. */
    if (error && !*error)
        error = NULL;
    if (info && !*info)
        info = NULL;
    if (!error) {
        error = info;
        info = NULL;
    }
    if (error && info)
        return xasprintf("%s (%s)", error, info);
    if (error)
        return xstrdup(error);
    return xasprintf("Pipedrive answered %ld", status);
}

static char *pd_next_cursor(const json_t *body)
{
    return provider_json_id(json_object_get(
        json_object_get(body, "additional_data"), "next_cursor"));
}

/* ---- deals as the API returns them ---- */

/* Fills a deal from a v2 deal object. Values with no canonical form are
 * left empty with time 0, so they never win a merge. */
static fs_result pd_deal_from_json(const struct connection *conn,
                                   const struct pd_map *m, const json_t *obj,
                                   struct crm_deal *d)
{
    memset(d, 0, sizeof(*d));
    d->crm_id = provider_json_id(json_object_get(obj, "id"));
    if (!d->crm_id)
        return FS_ERR_INVALID;
    d->our_id = pd_our_id(m, obj);
    d->modified = pd_time(json_object_get(obj, "update_time"), NULL);
    d->archived = json_is_true(json_object_get(obj, "is_deleted")) ||
                  json_is_true(json_object_get(obj, "is_archived"));
    int64_t read_time = pd_read_time(json_object_get(obj, "update_time"));

    for (int f = 0; f < DEAL_FIELD_COUNT; f++) {
        if (!m->key[f])
            continue;
        d->times[f] = read_time;
        d->actors[f] = ACTOR_UNKNOWN;
        if (pd_field_in(m, obj, f, &d->values[f]) != FS_OK) {
            log_info("provider=pipedrive deal=%s field=%s value_rejected=1",
                     d->crm_id, deal_fields[f].name);
            d->values[f] = NULL;
            d->times[f] = 0;
        }
    }
    return FS_OK;
}

fs_result pipedrive_parse_deal(const struct connection *conn, const char *json,
                               struct crm_deal *out)
{
    json_t *obj = json_loads(json, 0, NULL);
    struct pd_map m;
    fs_result result = FS_ERR_INVALID;

    memset(out, 0, sizeof(*out));
    pd_map_load(conn, &m);
    if (json_is_object(obj))
        result = pd_deal_from_json(conn, &m, obj, out);
    if (result != FS_OK)
        crm_deal_clear(out);
    pd_map_clear(&m);
    json_decref(obj);
    return result;
}

static void pd_parse_page(const struct connection *conn, const struct pd_map *m,
                          const json_t *body, bool archived,
                          struct crm_deal_list *l)
{
    size_t i;
    const json_t *obj;

    json_array_foreach(json_object_get(body, "data"), i, obj)
    {
        struct crm_deal *d = crm_deal_list_add(l);
        if (pd_deal_from_json(conn, m, obj, d) != FS_OK) {
            crm_deal_list_drop_last(l);
        } else if (archived) {
            d->archived = true;
        }
    }
}

/* The custom_fields= list: only the keys we map (at most 15). */
static void pd_append_custom_keys(struct buf *b, const struct pd_map *m)
{
    bool first = true;

    for (int f = 0; f < DEAL_FIELD_COUNT; f++) {
        if (!m->custom[f])
            continue;
        buf_appendf(b, "%s%s", first ? "&custom_fields=" : ",", m->key[f]);
        first = false;
    }
    if (m->our_key)
        buf_appendf(b, "%s%s", first ? "&custom_fields=" : ",", m->our_key);
}

static void pd_append_cursor(struct buf *b, const char *cursor)
{
    if (!cursor)
        return;
    char *esc = provider_url_escape(cursor);
    buf_appendf(b, "&cursor=%s", esc);
    free(esc);
}

/* A listed value's time. The list shows what the CRM held when it was
 * asked for (sent_at, our clock): every change made before then, so a
 * webhook of one of them arriving late (beyond the backstop's overlap,
 * never listed again) is older; a change made after it in the same
 * second is newer. Within the deal's update_time second. */
static int64_t pd_listed_time(int64_t second, int64_t sent_at)
{
    if (second <= 0 || sent_at <= second)
        return second;
    return sent_at < second + PD_SECOND_END_MS ? sent_at
                                               : second + PD_SECOND_END_MS;
}

/* One page of a deal list at path (with its query); the next cursor goes
 * to *next. */
static fs_result pd_list_page(struct provider_session *s,
                              const struct pd_map *m, int cost,
                              const char *path, bool archived,
                              struct crm_deal_list *l, char **next)
{
    struct pd_reply reply = {0};
    size_t first = l->count;
    int64_t sent_at = clock_now_ms();
    fs_result result = pd_get(s, cost, path, &reply);

    *next = NULL;
    if (result == FS_OK) {
        pd_parse_page(s->conn, m, reply.json, archived, l);
        *next = pd_next_cursor(reply.json);
    }
    for (size_t i = first; i < l->count; i++) {
        struct crm_deal *d = &l->items[i];
        for (int f = 0; f < DEAL_FIELD_COUNT; f++)
            if (d->times[f] == d->modified)
                d->times[f] = pd_listed_time(d->modified, sent_at);
    }
    pd_reply_clear(&reply);
    return result;
}

static fs_result pd_list_deals(struct provider_session *s,
                               struct crm_cursor *cursor, struct crm_deal **out,
                               size_t *count)
{
    struct pd_map m;
    struct buf path = {0};
    struct crm_deal_list list = {0};
    char *next = NULL;
    fs_result result;

    *out = NULL;
    *count = 0;
    if (cursor->done)
        return FS_OK;
    pd_map_load(s->conn, &m);
    buf_appendf(&path, "/api/v2/deals?limit=%d", PIPEDRIVE_PAGE_MAX);
    pd_append_custom_keys(&path, &m);
    pd_append_cursor(&path, cursor->after);
    result =
        pd_list_page(s, &m, COST_DEALS_LIST, path.data, false, &list, &next);
    if (result == FS_OK) {
        free(cursor->after);
        cursor->after = next;
        cursor->done = next == NULL;
        crm_deal_list_give(&list, out, count);
    }
    crm_deals_free(list.items, list.count);
    buf_free(&path);
    pd_map_clear(&m);
    return result;
}

/* The backstop's read: every deal updated since the watermark, then the
 * deleted ones (status=deleted: the schema takes one status a call), then
 * the archived ones (a list of their own). The paging token is
 * "<phase>|<query mark ms>|<Pipedrive cursor>" (phases d, x, a), so the
 * query keeps its filter while the cursor's watermark moves on. */
static fs_result pd_changed_since(struct provider_session *s,
                                  struct crm_cursor *cursor,
                                  struct crm_deal **out, size_t *count)
{
    struct pd_map m;
    struct buf path = {0};
    struct crm_deal_list list = {0};
    char phase = 'd';
    int64_t mark = cursor->watermark;
    const char *after = NULL;
    char *next = NULL;
    char since[32];
    fs_result result;

    *out = NULL;
    *count = 0;
    if (cursor->done)
        return FS_OK;
    if (cursor->after && strlen(cursor->after) > 2 && cursor->after[1] == '|') {
        char *bar = strchr(cursor->after + 2, '|');
        phase = cursor->after[0];
        mark = strtoll(cursor->after + 2, NULL, 10);
        after = bar && bar[1] ? bar + 1 : NULL;
    }
    if (mark < 0)
        mark = 0;
    clock_format_iso(mark - mark % 1000, since);
    memcpy(since + 19, "Z", 2); /* whole seconds: 2026-12-01T10:20:00Z */
    pd_map_load(s->conn, &m);
    if (phase == 'a')
        buf_appendf(&path, "/api/v2/deals/archived?limit=%d",
                    PIPEDRIVE_PAGE_MAX);
    else if (phase == 'x')
        buf_appendf(&path, "/api/v2/deals?limit=%d&status=deleted",
                    PIPEDRIVE_PAGE_MAX);
    else
        buf_appendf(&path, "/api/v2/deals?limit=%d", PIPEDRIVE_PAGE_MAX);
    buf_appendf(&path,
                "&updated_since=%s&sort_by=update_time&"
                "sort_direction=asc",
                since);
    pd_append_custom_keys(&path, &m);
    pd_append_cursor(&path, after);
    result = pd_list_page(s, &m,
                          phase == 'a' ? COST_DEALS_ARCHIVED : COST_DEALS_LIST,
                          path.data, phase != 'd', &list, &next);
    if (result != FS_OK)
        goto out;

    for (size_t i = 0; i < list.count; i++) {
        if (list.items[i].modified > cursor->watermark)
            cursor->watermark = list.items[i].modified;
    }
    free(cursor->after);
    cursor->after = NULL;
    if (next)
        cursor->after = xasprintf("%c|%" PRId64 "|%s", phase, mark, next);
    else if (phase == 'd' || phase == 'x')
        cursor->after =
            xasprintf("%c|%" PRId64 "|", phase == 'd' ? 'x' : 'a', mark);
    else
        cursor->done = true;
    crm_deal_list_give(&list, out, count);
out:
    free(next);
    crm_deals_free(list.items, list.count);
    buf_free(&path);
    pd_map_clear(&m);
    return result;
}

/* ---- per-field times from the changelog ---- */

/* A changelog value (always text) in the field's canonical form. */
static fs_result pd_logged_value(const struct pd_map *m, int field,
                                 const json_t *text, char **out)
{
    const char *t = json_string_value(text);
    json_t *v = NULL;
    fs_result result;

    *out = NULL;
    if (!t || !*t)
        return FS_OK;
    if (field == DEAL_STAGE)
        return deal_field_canonical(DEAL_STAGE, t, out);
    if (m->kind[field] == PD_NUMBER)
        v = json_real(strtod(t, NULL));
    else
        v = json_string(t);
    result = pd_value_in(m, field, v, out);
    json_decref(v);
    return result;
}

/* The status a stage value shows: won or lost for a pipeline's won and
 * lost stages, else open. */
static const char *pd_shown_status(const char *stage)
{
    if (stage && strncmp(stage, "won-", 4) == 0)
        return "won";
    if (stage && strncmp(stage, "lost-", 5) == 0)
        return "lost";
    return "open";
}

/* Whether a changelog entry set the value the deal shows. */
static bool pd_entry_is_current(const struct pd_map *m, int field,
                                const char *key, const json_t *entry,
                                const struct crm_deal *deal)
{
    const char *now = deal->values[field];
    char *logged = NULL;
    bool same;

    if (strcmp(key, "status") == 0) {
        const char *status = provider_json_str(entry, "new_value");
        return status && strcmp(status, pd_shown_status(now)) == 0;
    }
    if (pd_logged_value(m, field, json_object_get(entry, "new_value"),
                        &logged) != FS_OK)
        return false;
    same = (!logged && !now) || (logged && now && strcmp(logged, now) == 0);
    free(logged);
    return same;
}

static bool pd_known_status(const char *status)
{
    return status &&
           (strcmp(status, "open") == 0 || strcmp(status, "won") == 0 ||
            strcmp(status, "lost") == 0);
}

/* Keeps a stage id or status in buf; "" (not known) for none or one that
 * does not fit. */
static void pd_keep(char *buf, size_t size, const char *text)
{
    if (!text || strlen(text) >= size) {
        buf[0] = '\0';
        return;
    }
    memcpy(buf, text, strlen(text) + 1);
}

/* Before the newest entry, the deal is as read: its status as its values
 * show it, its stage_id as read (or, open, as its values show it). */
static void pd_start_stepping(struct pipedrive_changelog *log,
                              const struct crm_deal *deal)
{
    const char *now = deal->values[DEAL_STAGE];
    const char *status = now ? pd_shown_status(now) : NULL;
    const char *stage = log->stage_id;

    if (!stage && status && strcmp(status, "open") == 0)
        stage = now;
    log->stepping = true;
    pd_keep(log->status_after, sizeof(log->status_after), status);
    pd_keep(log->stage_after, sizeof(log->stage_after), stage);
}

/* The stage a stage_id or status entry left the deal in, as text into
 * left ("": not known): the entry's new value, the other half (the
 * stage_id of a status entry, the status of a stage_id one) as the newer
 * entries tell it. Then steps log back past the entry, to its old value.
 * Either order of a change's two entries gives what the change left. */
static void pd_stage_left(struct pipedrive_changelog *log, const char *key,
                          const json_t *entry, char *left, size_t size)
{
    bool is_status = strcmp(key, "status") == 0;
    char *now = provider_json_text(json_object_get(entry, "new_value"));
    char *was = provider_json_text(json_object_get(entry, "old_value"));
    const char *stage = is_status ? log->stage_after : now;
    const char *status = is_status ? now : log->status_after;
    int n = -1;

    if (status && (strcmp(status, "won") == 0 || strcmp(status, "lost") == 0)) {
        if (log->pipeline_id)
            n = snprintf(left, size, "%s-%s", status, log->pipeline_id);
    } else if (stage && *stage &&
               (!is_status || (status && strcmp(status, "open") == 0))) {
        n = snprintf(left, size, "%s", stage);
    }
    if (n < 0 || (size_t)n >= size)
        left[0] = '\0';
    if (is_status)
        pd_keep(log->status_after, sizeof(log->status_after),
                pd_known_status(was) ? was : NULL);
    else
        pd_keep(log->stage_after, sizeof(log->stage_after), was);
    free(now);
    free(was);
}

size_t pipedrive_apply_changelog(const struct connection *conn,
                                 const char *json, struct crm_deal *deal,
                                 struct pipedrive_changelog *log)
{
    json_t *body = json_loads(json, 0, NULL);
    struct pd_map m;
    size_t n = 0;
    size_t i;
    const json_t *entry;

    pd_map_load(conn, &m);
    json_array_foreach(json_object_get(body, "data"), i, entry)
    {
        const char *key = provider_json_str(entry, "field_key");
        int f = key ? pd_field_of_key(&m, key) : -1;
        /* "won-" or "lost-" and a pipeline id, or a stage id. */
        char left[PIPEDRIVE_ID_MAX + 8] = "";
        if (f == DEAL_STAGE) {
            if (!log->stepping)
                pd_start_stepping(log, deal);
            pd_stage_left(log, key, entry, left, sizeof(left));
        }
        int64_t t = pd_logged_time(json_object_get(entry, "time"));
        if (log->answered_at > 0 && t > log->answered_at)
            t = log->answered_at;
        if (f < 0 || t <= 0)
            continue;
        if (log->timed[f] && log->othered[f])
            continue;
        int64_t second = pd_read_time(json_object_get(entry, "time"));
        /* A newer change of the field in this entry's second (a status
         * entry aside: it is half of the same change as a stage_id one). */
        bool superseded_within = log->newer_second[f] == second;
        if (strcmp(key, "status") != 0)
            log->newer_second[f] = second;
        char *who = provider_json_text(json_object_get(entry, "actor_user_id"));
        enum change_actor actor =
            pd_actor(conn, provider_json_str(entry, "change_source"), who);
        free(who);
        /* The deal and its changelog are two reads: a change landing
         * between them (our own push, say) is in the changelog but not in
         * the values. The value read is then older than that entry, and
         * the older entry that set it times it, or, when none does, the
         * deal's creation. The deal's update_time would not do: it is the
         * newest change of any field, and timed a value years old after
         * a rep's edit still being pushed, undoing it. Superseded within
         * its second, the value is timed at the second's start: at its
         * end it beat the newer change's webhook, timed to the ms. */
        if (!log->timed[f] && pd_entry_is_current(&m, f, key, entry, deal)) {
            log->timed[f] = true;
            if (deal->times[f] != 0)
                deal->times[f] = superseded_within ? second : t;
            deal->actors[f] = actor;
            n++;
        }
        if (actor == ACTOR_US)
            log->ours_second[f] = second;
        if (actor == ACTOR_US || log->othered[f])
            continue;
        /* The newest value someone else wrote; kept when our push landed
         * on it, so the merge can tell whether the push overwrote a
         * newer edit. For the stage, what the entry left the deal in: a
         * won or lost status is that pipeline's stage (left alone, a won
         * deal our push reopened stayed open for good when the won's
         * webhook was lost), an open one the stage it was reopened in
         * (the old value of the next stage_id entry, or the stage read:
         * a reopening in the deal's stage names none, and our push over
         * it stayed for good; make stress found it). */
        char *value = NULL;
        log->othered[f] = true;
        if (f == DEAL_STAGE) {
            if (!*left ||
                deal_field_canonical(DEAL_STAGE, left, &value) != FS_OK)
                continue;
        } else if (pd_logged_value(&m, f, json_object_get(entry, "new_value"),
                                   &value) != FS_OK) {
            continue;
        }
        bool same =
            (!value && !deal->values[f]) ||
            (value && deal->values[f] && strcmp(value, deal->values[f]) == 0);
        if (same) {
            free(value);
            continue;
        }
        free(deal->others[f].value);
        deal->others[f].value = value;
        /* Within its second, and before the push that landed on it: at
         * the second's start, and at the latest at its end when that
         * push is of a later second (else the push may be the earlier). */
        deal->others[f].time = second;
        deal->others[f].time_latest =
            log->ours_second[f] > second ? second + PD_SECOND_END_MS : 0;
        deal->others[f].present = true;
    }
    pd_map_clear(&m);
    json_decref(body);
    return n;
}

static size_t synced_count(const struct pd_map *m)
{
    size_t n = 0;

    for (int f = 0; f < DEAL_FIELD_COUNT; f++)
        n += m->key[f] != NULL;
    return n;
}

/* Gives each field of a read deal its own time and actor: the changelog
 * is read, newest first, until every synced field is timed; a field it
 * never names was set at creation. Even a deal whose update_time is its
 * add_time: times have whole seconds, so a CRM user's edit within the
 * second the deal was made looks like no change, and timing its values
 * at add_time left the edit behind what fieldsync knew of the creation
 * (from its webhook, to the ms), the two sides apart for good. */
static fs_result pd_time_fields(struct provider_session *s,
                                const struct pd_map *m, const json_t *obj,
                                struct crm_deal *d)
{
    int64_t added = pd_read_time(json_object_get(obj, "add_time"));
    char *creator = provider_json_text(json_object_get(obj, "creator_user_id"));
    enum change_actor created_by =
        creator && s->conn->app_id && strcmp(creator, s->conn->app_id) == 0
            ? ACTOR_US
            : ACTOR_OTHER;
    char *pipeline = provider_json_text(json_object_get(obj, "pipeline_id"));
    char *stage = provider_json_text(json_object_get(obj, "stage_id"));
    struct pipedrive_changelog log = {.pipeline_id = pipeline,
                                      .stage_id = stage};
    bool *timed = log.timed;
    size_t want = synced_count(m), got = 0;
    char *cursor = NULL;
    fs_result result = FS_OK;

    free(creator);
    for (int page = 0; got < want && page < PD_CHANGELOG_PAGES; page++) {
        struct buf path = {0};
        struct pd_reply reply = {0};
        buf_appendf(&path, "/v1/deals/%s/changelog?limit=%d", d->crm_id,
                    PD_CHANGELOG_LIMIT);
        pd_append_cursor(&path, cursor);
        result = pd_get(s, COST_CHANGELOG, path.data, &reply);
        log.answered_at = clock_now_ms();
        buf_free(&path);
        free(cursor);
        cursor = NULL;
        if (result == FS_OK) {
            char *text = json_dumps(reply.json, JSON_COMPACT);
            got += pipedrive_apply_changelog(s->conn, text, d, &log);
            free(text);
            cursor = pd_next_cursor(reply.json);
        }
        pd_reply_clear(&reply);
        if (result != FS_OK || !cursor)
            break;
    }
    free(cursor);
    free(pipeline);
    free(stage);
    for (int f = 0; result == FS_OK && f < DEAL_FIELD_COUNT; f++) {
        if (!m->key[f] || timed[f])
            continue;
        if (d->times[f] != 0 && added > 0)
            d->times[f] = added;
        d->actors[f] = created_by;
    }
    return result;
}

/* Reads up to PIPEDRIVE_IDS_MAX deals by id; those Pipedrive does not
 * return are gone (deleted, archived, or never ours). */
static fs_result pd_read_chunk(struct provider_session *s,
                               const struct pd_map *m, const char *const *ids,
                               size_t n, struct crm_deal_list *l)
{
    struct buf path = {0};
    struct pd_reply reply = {0};
    size_t i;
    const json_t *obj;
    fs_result result;

    buf_append_str(&path, "/api/v2/deals?ids=");
    for (size_t k = 0; k < n; k++) {
        char *esc = provider_url_escape(ids[k]);
        buf_appendf(&path, "%s%s", k ? "," : "", esc);
        free(esc);
    }
    buf_appendf(&path, "&limit=%d", PIPEDRIVE_IDS_MAX);
    pd_append_custom_keys(&path, m);
    result = pd_get(s, COST_DEALS_LIST, path.data, &reply);
    buf_free(&path);
    if (result != FS_OK)
        goto out;

    bool *found = xcalloc(n ? n : 1, sizeof(bool));
    json_array_foreach(json_object_get(reply.json, "data"), i, obj)
    {
        struct crm_deal *d = crm_deal_list_add(l);
        if (pd_deal_from_json(s->conn, m, obj, d) != FS_OK) {
            crm_deal_clear(d);
            l->count--;
            continue;
        }
        for (size_t k = 0; k < n; k++) {
            if (strcmp(ids[k], d->crm_id) == 0)
                found[k] = true;
        }
        if (!d->archived)
            result = pd_time_fields(s, m, obj, d);
        if (result != FS_OK)
            break;
    }
    for (size_t k = 0; result == FS_OK && k < n; k++) {
        if (found[k])
            continue;
        struct crm_deal *d = crm_deal_list_add(l);
        d->crm_id = xstrdup(ids[k]);
        d->archived = true;
    }
    free(found);
out:
    pd_reply_clear(&reply);
    return result;
}

static fs_result pd_read_deals(struct provider_session *s,
                               const char *const *crm_ids, size_t n,
                               struct crm_deal **out, size_t *count)
{
    struct pd_map m;
    struct crm_deal_list list = {0};
    fs_result result = FS_OK;

    *out = NULL;
    *count = 0;
    pd_map_load(s->conn, &m);
    for (size_t i = 0; i < n && result == FS_OK; i += PIPEDRIVE_IDS_MAX) {
        size_t chunk = n - i < PIPEDRIVE_IDS_MAX ? n - i : PIPEDRIVE_IDS_MAX;
        result = pd_read_chunk(s, &m, crm_ids + i, chunk, &list);
    }
    if (result == FS_OK)
        crm_deal_list_give(&list, out, count);
    crm_deals_free(list.items, list.count);
    pd_map_clear(&m);
    return result;
}

/* ---- writes ---- */

/* A stage to write: "won-<pipeline>" and "lost-<pipeline>" set the
 * status; an open stage sets stage_id and reopens the deal. */
static fs_result pd_stage_out(const char *value, json_t *body)
{
    int64_t id;

    if (!value || !*value)
        return FS_ERR_INVALID;
    if (strncmp(value, "won-", 4) == 0 || strncmp(value, "lost-", 5) == 0) {
        json_object_set_new(body, "status",
                            json_string(value[0] == 'w' ? "won" : "lost"));
        return FS_OK;
    }
    if (provider_parse_int64(value, &id) != 0)
        return FS_ERR_INVALID;
    json_object_set_new(body, "stage_id", json_integer(id));
    json_object_set_new(body, "status", json_string("open"));
    return FS_OK;
}

fs_result pipedrive_write_body(const struct connection *conn,
                               const struct crm_write *w, bool create,
                               char **json)
{
    struct pd_map m;
    json_t *body = json_object();
    json_t *custom = json_object();
    fs_result result = FS_OK;

    *json = NULL;
    pd_map_load(conn, &m);
    for (int f = 0; f < DEAL_FIELD_COUNT && result == FS_OK; f++) {
        json_t *v = NULL;
        if (!w->present[f] || !m.key[f])
            continue;
        /* A new deal leaves out what it has no value for. */
        if (create && (!w->values[f] || !*w->values[f]))
            continue;
        if (f == DEAL_STAGE) {
            result = pd_stage_out(w->values[f], body);
            continue;
        }
        result = pd_value_out(&m, f, w->values[f], &v);
        if (result == FS_OK)
            json_object_set_new(m.custom[f] ? custom : body, m.key[f], v);
    }
    if (result == FS_OK && create) {
        if (!m.our_key || !w->our_id)
            result = FS_ERR_INVALID;
        else
            json_object_set_new(custom, m.our_key, json_string(w->our_id));
    }
    if (json_object_size(custom) > 0)
        json_object_set(body, "custom_fields", custom);
    if (result == FS_OK)
        *json = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(custom);
    json_decref(body);
    pd_map_clear(&m);
    return result;
}

/* Whether a failure stops the whole call rather than this write. */
static bool whole_call(fs_result code)
{
    return code == FS_ERR_AUTH || code == FS_ERR_FORBIDDEN ||
           code == FS_ERR_RATE_LIMITED || code == FS_ERR_UNAVAILABLE ||
           code == FS_ERR_TIMEOUT;
}

/* Records a write's answer in r; returns the whole-call failure it is,
 * or FS_OK. */
static fs_result pd_take_answer(long status, const json_t *body,
                                struct crm_write_result *r)
{
    if (status >= 200 && status < 300) {
        const json_t *data = json_object_get(body, "data");
        char *id = provider_json_id(json_object_get(data, "id"));
        if (!json_is_true(json_object_get(body, "success")))
            provider_result_fail(r, FS_ERR_REMOTE,
                                 "Pipedrive answered without success");
        else if (id)
            provider_result_ok(
                r, id, pd_write_time(json_object_get(data, "update_time")));
        else
            provider_result_fail(r, FS_ERR_REMOTE,
                                 "Pipedrive returned no deal id");
        free(id);
        return FS_OK;
    }
    fs_result code = pd_status_result(status);
    char *message = pd_error_message(body, status);
    provider_result_fail(r, code, message);
    free(message);
    return whole_call(code) ? code : FS_OK;
}

/* What Pipedrive put in fields a create left empty (every deal has a
 * stage, and an owner: the token's user when none is given), taken as
 * the CRM's values. */
static void pd_take_defaults(const struct connection *conn,
                             const struct crm_write *w, const json_t *body,
                             struct crm_write_result *r)
{
    struct pd_map m;
    struct crm_deal d;

    pd_map_load(conn, &m);
    if (pd_deal_from_json(conn, &m, json_object_get(body, "data"), &d) ==
        FS_OK) {
        for (int f = 0; f < DEAL_FIELD_COUNT; f++) {
            if (!w->present[f] && d.values[f]) {
                r->defaults[f] = d.values[f];
                d.values[f] = NULL;
            }
        }
    }
    crm_deal_clear(&d);
    pd_map_clear(&m);
}

/* Records a write's answer in r, and for a create (created set) the
 * values Pipedrive gave the fields it left empty; returns the whole-call
 * failure it is, or FS_OK. */
static fs_result pd_write_answer(const struct connection *conn, long status,
                                 const json_t *body,
                                 const struct crm_write *created,
                                 struct crm_write_result *r)
{
    fs_result result = pd_take_answer(status, body, r);

    if (result == FS_OK && r->result == FS_OK && created)
        pd_take_defaults(conn, created, body, r);
    return result;
}

/* Sends one deal's body; records the outcome in r, and for a create
 * (created set) the values Pipedrive gave the fields it left empty. */
static fs_result pd_send_deal(struct provider_session *s, const char *method,
                              const char *path, int cost, const char *body,
                              const struct crm_write *created,
                              struct crm_write_result *r)
{
    json_t *json = json_loads(body, 0, NULL);
    struct pd_reply reply = {0};
    fs_result result = pd_call(s, CALL_WRITE, cost, method, path, json, &reply);

    json_decref(json);
    if (result == FS_OK || (result == FS_ERR_REMOTE && reply.status < 300))
        result = pd_write_answer(s->conn, reply.status, reply.json, created, r);
    pd_reply_clear(&reply);
    return result;
}

static fs_result pd_update_one(struct provider_session *s,
                               const struct crm_write *w, const char *crm_id,
                               struct crm_write_result *r)
{
    char *body = NULL;
    char *esc = NULL;
    char *path = NULL;
    fs_result result;

    if (pipedrive_write_body(s->conn, w, false, &body) != FS_OK) {
        provider_result_fail(r, FS_ERR_INVALID,
                             "a value is not in a form Pipedrive takes");
        return FS_OK;
    }
    esc = provider_url_escape(crm_id);
    path = xasprintf("/api/v2/deals/%s", esc);
    result = pd_send_deal(s, "PATCH", path, COST_DEAL_UPDATE, body, NULL, r);
    free(path);
    free(esc);
    free(body);
    return result;
}

/* The first deal a search answer names (data.items[].item.id), or NULL.
 * The caller frees. */
static char *pd_search_hit(const json_t *body)
{
    size_t i;
    const json_t *item;

    json_array_foreach(json_object_get(json_object_get(body, "data"), "items"),
                       i, item)
    {
        char *id = provider_json_id(
            json_object_get(json_object_get(item, "item"), "id"));
        if (id)
            return id;
    }
    return NULL;
}

static fs_result pd_find_by_our_id(struct provider_session *s,
                                   const char *our_id, char **crm_id)
{
    char *esc = provider_url_escape(our_id);
    char *path = xasprintf("/api/v2/deals/search?term=%s&fields=custom_fields"
                           "&exact_match=true&limit=10",
                           esc);
    struct pd_reply reply = {0};
    fs_result result;

    *crm_id = NULL;
    result = pd_get(s, COST_DEAL_SEARCH, path, &reply);
    if (result != FS_OK)
        goto out;
    *crm_id = pd_search_hit(reply.json);
    if (!*crm_id)
        result = FS_ERR_NOT_FOUND;
out:
    pd_reply_clear(&reply);
    free(path);
    free(esc);
    return result;
}

/* A create tried before looks for the deal by our id first: the earlier
 * try, whose answer was lost, may have made it; it is then brought up to
 * this write instead of made again. A first try creates at once. */
static fs_result pd_create_one(struct provider_session *s,
                               const struct crm_write *w,
                               struct crm_write_result *r)
{
    char *body = NULL;
    char *existing = NULL;
    fs_result result;

    if (!w->our_id) {
        provider_result_fail(r, FS_ERR_INVALID, "a create needs our record id");
        return FS_OK;
    }
    if (pipedrive_write_body(s->conn, w, true, &body) != FS_OK) {
        provider_result_fail(r, FS_ERR_INVALID,
                             "a value is not in a form Pipedrive takes, or the "
                             "fieldsync_id field is not set up");
        return FS_OK;
    }
    result = w->may_exist ? pd_find_by_our_id(s, w->our_id, &existing)
                          : FS_ERR_NOT_FOUND;
    if (result == FS_OK) {
        struct crm_write again = *w;
        log_info("provider=pipedrive record=%s crm_id=%s create_found=1",
                 w->our_id, existing);
        result = pd_update_one(s, &again, existing, r);
        if (result == FS_OK && r->result == FS_OK && !r->crm_id)
            r->crm_id = xstrdup(existing);
    } else if (result == FS_ERR_NOT_FOUND) {
        result = pd_send_deal(s, "POST", "/api/v2/deals", COST_DEAL_CREATE,
                              body, w, r);
    }
    free(existing);
    free(body);
    return result;
}

/* The credentials one write of a pass went with. */
struct pd_group_auth {
    char *token;
    char *header;
    const char *headers[4];
};

/* Sends a group of PATCHes at once: each takes its budget, then all go
 * with the token current then (one that outlives the wait for budget).
 * Calls past a budget that stays spent, or without a token, are not
 * sent and end with that result. */
static void pd_send_group(struct provider_session *s,
                          const struct call_cost *price,
                          struct http_client_call *calls, size_t n,
                          struct pd_group_auth *auths)
{
    size_t ready = 0;
    char *token = NULL, *header = NULL;
    fs_result r = FS_OK;

    while (ready < n && (r = provider_call_acquire(s, price)) == FS_OK)
        ready++;
    if (ready > 0 && (r = pd_auth_header(s, &token, &header)) != FS_OK)
        ready = 0;
    for (size_t i = 0; i < n; i++) {
        if (i >= ready) {
            memset(&calls[i].resp, 0, sizeof(calls[i].resp));
            calls[i].result = r;
            continue;
        }
        auths[i].token = xstrdup(token);
        auths[i].header = xstrdup(header);
        auths[i].headers[0] = auths[i].header;
        auths[i].headers[1] = "Content-Type: application/json";
        auths[i].headers[2] = "Accept: application/json";
        calls[i].headers = auths[i].headers;
    }
    provider_call_transmit_many(s, calls, ready, PD_WRITE_PARALLEL);
    free(header);
    free(token);
}

/* The PATCHes of a pass, sent at once (PD_WRITE_PARALLEL in flight),
 * each paying its tokens. A 429, 5xx or timeout leaves that write undone
 * and is the call's result; the other answers count. */
static fs_result pd_update_many(struct provider_session *s,
                                const struct crm_write *writes,
                                const size_t *idx, size_t n,
                                struct crm_write_result *results)
{
    struct call_cost price = {CALL_WRITE, COST_DEAL_UPDATE};
    struct http_client_call *calls = xcalloc(n ? n : 1, sizeof(*calls));
    char **urls = xcalloc(n ? n : 1, sizeof(char *));
    char **bodies = xcalloc(n ? n : 1, sizeof(char *));
    size_t *of = xcalloc(n ? n : 1, sizeof(size_t));
    struct pd_group_auth *auths = xcalloc(n ? n : 1, sizeof(*auths));
    size_t k = 0;
    fs_result result = FS_OK;

    for (size_t j = 0; j < n; j++) {
        const struct crm_write *w = &writes[idx[j]];
        char *body = NULL;
        if (pipedrive_write_body(s->conn, w, false, &body) != FS_OK) {
            provider_result_fail(&results[idx[j]], FS_ERR_INVALID,
                                 "a value is not in a form Pipedrive takes");
            continue;
        }
        char *esc = provider_url_escape(w->crm_id);
        char *path = xasprintf("/api/v2/deals/%s", esc);
        urls[k] = provider_url(s->conn, path);
        free(path);
        free(esc);
        bodies[k] = body;
        calls[k] = (struct http_client_call){.method = "PATCH",
                                             .url = urls[k],
                                             .body = body,
                                             .body_len = strlen(body)};
        of[k++] = idx[j];
    }
    /* A group at a time: each call's place in the burst window is taken
     * just before its group goes, so the window the governor counts is
     * the one Pipedrive sees. */
    struct rate_governor *gov = provider_session_governor(s, CALL_WRITE);
    for (size_t at = 0; at < k;) {
        size_t group = k - at < PD_WRITE_PARALLEL ? k - at : PD_WRITE_PARALLEL;
        /* Several at once only while the window has room for them all
         * now; else one at a time, each taking its place as it goes. */
        if (gov &&
            rate_governor_wait(gov, (int)group, (int)group * COST_DEAL_UPDATE,
                               clock_now_ms()) > 0)
            group = 1;
        pd_send_group(s, &price, calls + at, group, &auths[at]);
        at += group;
    }
    for (size_t i = 0; i < k; i++) {
        struct http_client_response *resp = &calls[i].resp;
        struct crm_write_result *r = &results[of[i]];
        pd_observe(s, resp);
        if (calls[i].result == FS_OK) {
            json_t *body = json_loadb(resp->body.data, resp->body.len, 0, NULL);
            fs_result code = pd_take_answer(resp->status, body, r);
            json_decref(body);
            if (code != FS_OK) {
                r->done = false;
                if (result == FS_OK)
                    result = code;
            }
        } else if (result == FS_OK || calls[i].result == FS_ERR_RATE_LIMITED) {
            result = calls[i].result;
        }
        if (calls[i].result == FS_ERR_RATE_LIMITED && resp->status == 429)
            pd_pause_for(s, resp, false);
        if (calls[i].result == FS_OK && resp->status == 401)
            provider_token_rejected(s, auths[i].token);
        http_client_response_free(resp);
        free(urls[i]);
        free(bodies[i]);
        free(auths[i].token);
        free(auths[i].header);
    }
    free(auths);
    free(of);
    free(bodies);
    free(urls);
    free(calls);
    return result;
}

/* One PATCH per deal (Pipedrive has no batch write): every pending field
 * of a deal goes in its one call; the pass's PATCHes go at once, its
 * creates one after the other. */
static fs_result pd_write_deals(struct provider_session *s,
                                const struct crm_write *writes, size_t n,
                                struct crm_write_result *results)
{
    size_t *updates = NULL;
    size_t update_n = 0;
    fs_result result = FS_OK;

    if (n > pipedrive_provider.max_write_batch)
        return FS_ERR_TOO_LARGE;
    memset(results, 0, n * sizeof(*results));
    updates = xcalloc(n ? n : 1, sizeof(size_t));
    for (size_t i = 0; i < n; i++) {
        if (writes[i].crm_id)
            updates[update_n++] = i;
    }
    if (update_n > 0)
        result = pd_update_many(s, writes, updates, update_n, results);
    for (size_t i = 0; i < n && result == FS_OK; i++) {
        if (writes[i].crm_id)
            continue;
        result = pd_create_one(s, &writes[i], &results[i]);
        /* A whole-call failure leaves this write undone, to try again. */
        if (result != FS_OK)
            results[i].done = false;
    }
    free(updates);
    return result;
}

/* ---- users, stages, deal fields ---- */

/* Appends the users of a users answer's data[] (those with an id). */
static void pd_users_of(const json_t *body, struct crm_owner **owners,
                        size_t *n)
{
    size_t i;
    const json_t *u;

    json_array_foreach(json_object_get(body, "data"), i, u)
    {
        char *id = provider_json_id(json_object_get(u, "id"));
        if (!id)
            continue;
        *owners = xrealloc(*owners, (*n + 1) * sizeof(**owners));
        (*owners)[*n].id = id;
        (*owners)[*n].email = provider_json_text(json_object_get(u, "email"));
        (*owners)[*n].name = provider_json_text(json_object_get(u, "name"));
        (*n)++;
    }
}

static fs_result pd_list_owners(struct provider_session *s,
                                struct crm_owner **out, size_t *count)
{
    struct pd_reply reply = {0};
    fs_result result;

    *out = NULL;
    *count = 0;
    result = pd_get(s, COST_USERS, "/v1/users", &reply);
    if (result == FS_OK)
        pd_users_of(reply.json, out, count);
    pd_reply_clear(&reply);
    return result;
}

/* Each pipeline's won and lost stages, after its open ones. */
static void add_closed_stages(struct crm_stage **stages, size_t *n)
{
    size_t open = *n;

    for (size_t i = 0; i < open; i++) {
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen =
                strcmp((*stages)[j].pipeline_id, (*stages)[i].pipeline_id) == 0;
        if (seen)
            continue;
        *stages = xrealloc(*stages, (*n + 2) * sizeof(**stages));
        for (int k = 0; k < 2; k++) {
            struct crm_stage *st = &(*stages)[(*n)++];
            const char *pipeline = (*stages)[i].pipeline_id;
            st->pipeline_id = xstrdup(pipeline);
            st->id = xasprintf("%s-%s", k ? "lost" : "won", pipeline);
            st->label = xstrdup(k ? "Lost" : "Won");
        }
    }
}

/* Appends the live stages of a stages page's data[] (those with an id and
 * a pipeline). */
static void pd_stages_of(const json_t *body, struct crm_stage **stages,
                         size_t *n)
{
    size_t i;
    const json_t *st;

    json_array_foreach(json_object_get(body, "data"), i, st)
    {
        char *id = provider_json_id(json_object_get(st, "id"));
        char *pipeline = provider_json_id(json_object_get(st, "pipeline_id"));
        if (!id || !pipeline ||
            json_is_true(json_object_get(st, "is_deleted"))) {
            free(id);
            free(pipeline);
            continue;
        }
        *stages = xrealloc(*stages, (*n + 1) * sizeof(**stages));
        (*stages)[*n].pipeline_id = pipeline;
        (*stages)[*n].id = id;
        (*stages)[*n].label = provider_json_text(json_object_get(st, "name"));
        (*n)++;
    }
}

static fs_result pd_list_stages(struct provider_session *s,
                                struct crm_stage **out, size_t *count)
{
    struct crm_stage *stages = NULL;
    size_t n = 0;
    char *cursor = NULL;
    fs_result result = FS_OK;

    *out = NULL;
    *count = 0;
    for (int page = 0; page < PD_MAX_PAGES; page++) {
        struct buf path = {0};
        struct pd_reply reply = {0};

        buf_appendf(&path, "/api/v2/stages?limit=%d", PIPEDRIVE_PAGE_MAX);
        pd_append_cursor(&path, cursor);
        free(cursor);
        cursor = NULL;
        result = pd_get(s, COST_STAGES, path.data, &reply);
        buf_free(&path);
        if (result != FS_OK) {
            pd_reply_clear(&reply);
            break;
        }
        pd_stages_of(reply.json, &stages, &n);
        cursor = pd_next_cursor(reply.json);
        pd_reply_clear(&reply);
        if (!cursor)
            break;
    }
    free(cursor);
    if (result != FS_OK) {
        crm_stages_free(stages, n);
        return result;
    }
    add_closed_stages(&stages, &n);
    *out = stages;
    *count = n;
    return FS_OK;
}

/* A field name in the form the names above are written in. */
static char *name_key(const char *name)
{
    char *k = xstrdup(name);

    for (char *p = k; *p; p++) {
        *p = (char)tolower((unsigned char)*p);
        if (*p == ' ' || *p == '-')
            *p = '_';
    }
    return k;
}

static bool type_fits(int field, const char *type)
{
    bool text = strcmp(type, "varchar") == 0 || strcmp(type, "text") == 0 ||
                strcmp(type, "varchar_auto") == 0;

    if (field == DEAL_ENGAGE_DATE)
        return strcmp(type, "date") == 0;
    if (field == DEAL_PRODUCT || field == DEAL_ACCOUNT)
        return text || strcmp(type, "enum") == 0;
    return text;
}

/* {"id": "label"} of an enum field's options. */
static json_t *options_map(const json_t *options)
{
    json_t *map = json_object();
    size_t i;
    const json_t *o;

    json_array_foreach(options, i, o)
    {
        char *id = provider_json_text(json_object_get(o, "id"));
        const char *label = provider_json_str(o, "label");
        if (id && label)
            json_object_set_new(map, id, json_string(label));
        free(id);
    }
    return map;
}

/* Looks for one of our custom fields in a dealFields page. */
static void scan_fields_page(const json_t *page, json_t *found, char **error)
{
    size_t i;
    const json_t *def;

    json_array_foreach(json_object_get(page, "data"), i, def)
    {
        const char *name = provider_json_str(def, "field_name");
        const char *code = provider_json_str(def, "field_code");
        const char *type = provider_json_str(def, "field_type");
        if (!name || !code || !type ||
            !json_is_true(json_object_get(def, "is_custom_field")))
            continue;
        char *k = name_key(name);
        for (size_t c = 0; c < PD_CUSTOM_COUNT; c++) {
            if (strcmp(k, pd_custom[c].name) != 0 ||
                json_object_get(found, pd_custom[c].name))
                continue;
            int f = pd_custom[c].field;
            if (!type_fits(f < 0 ? DEAL_NAME : f, type)) {
                if (!*error)
                    *error = xasprintf("deal field \"%s\" is of type %s, "
                                       "which fieldsync cannot map",
                                       name, type);
                continue;
            }
            json_t *entry = json_pack("{s:s, s:s}", "key", code, "type", type);
            if (strcmp(type, "enum") == 0)
                json_object_set_new(
                    entry, "options",
                    options_map(json_object_get(def, "options")));
            json_object_set_new(found, pd_custom[c].name, entry);
        }
        free(k);
    }
}

fs_result pipedrive_settings_from_fields(const char *const *pages, size_t n,
                                         char **settings, char **error)
{
    json_t *found = json_object();
    fs_result result = FS_OK;

    *settings = NULL;
    *error = NULL;
    for (size_t i = 0; i < n; i++) {
        json_t *page = json_loads(pages[i], 0, NULL);
        if (!json_is_object(page)) {
            json_decref(page);
            result = FS_ERR_INVALID;
            *error = xstrdup("the deal fields answer is not JSON");
            goto out;
        }
        scan_fields_page(page, found, error);
        json_decref(page);
    }
    if (*error) {
        result = FS_ERR_INVALID;
        goto out;
    }
    if (!json_object_get(found, "fieldsync_id")) {
        *error = xstrdup("no deal field named fieldsync_id (text) holds "
                         "fieldsync's record id; create it in Pipedrive");
        result = FS_ERR_INVALID;
        goto out;
    }
    json_t *root = json_pack("{s:O}", "custom_fields", found);
    *settings = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(root);
out:
    json_decref(found);
    return result;
}

/* ---- OAuth ---- */

/* The connection's token endpoint: its oauth_url setting (connect
 * --oauth-url), else Pipedrive's. The caller frees. */
static char *pd_oauth_url(const struct connection *conn)
{
    json_t *settings =
        conn->settings ? json_loads(conn->settings, 0, NULL) : NULL;
    const char *url = json_string_value(json_object_get(settings, "oauth_url"));
    char *out = xstrdup(url && *url ? url : PIPEDRIVE_OAUTH_URL);

    json_decref(settings);
    return out;
}

static size_t trim_slashes(const char *s, size_t len)
{
    while (len > 0 && s[len - 1] == '/')
        len--;
    return len;
}

fs_result pipedrive_api_root(const char *api_domain, char **root)
{
    static const char *const api_paths[] = {"/api/v2", "/api/v1", "/v1"};
    const char *scheme_end = strstr(api_domain, "://");
    size_t host_at = scheme_end ? (size_t)(scheme_end - api_domain) + 3 : 0;
    size_t len = trim_slashes(api_domain, strlen(api_domain));

    *root = NULL;
    if (scheme_end && strncmp(api_domain, "https://", 8) != 0 &&
        strncmp(api_domain, "http://", 7) != 0)
        return FS_ERR_INVALID;
    if (strpbrk(api_domain, " \t\r\n?#@\\") != NULL)
        return FS_ERR_INVALID;
    for (size_t i = 0; i < sizeof(api_paths) / sizeof(api_paths[0]); i++) {
        size_t n = strlen(api_paths[i]);
        if (len >= host_at + n &&
            strncmp(api_domain + len - n, api_paths[i], n) == 0)
            len -= n;
    }
    len = trim_slashes(api_domain, len);
    if (len <= host_at || api_domain[host_at] == '/')
        return FS_ERR_INVALID;
    *root =
        xasprintf("%s%.*s", scheme_end ? "" : "https://", (int)len, api_domain);
    return FS_OK;
}

/* Pipedrive's token endpoint (oauth.pipedrive.com, not the API's host)
 * takes the app's client id and secret as HTTP Basic; its answer names
 * the company's API root (api_domain), which calls then go to, and may
 * rotate the refresh token (the keeper stores the new one first). */
static fs_result pd_oauth_token(struct provider_session *s,
                                const struct oauth_grant *grant,
                                struct oauth_tokens *out, char **error)
{
    char *url = pd_oauth_url(s->conn);
    fs_result r = oauth_token_request(
        s, url, OAUTH_CLIENT_BASIC, s->conn->oauth_client_id,
        s->conn->oauth_client_secret, grant, out, error);

    if (r == FS_OK && out->api_base) {
        char *root = NULL;
        if (pipedrive_api_root(out->api_base, &root) != FS_OK)
            log_warn("provider=pipedrive connection=%" PRId64
                     " event=api_domain_ignored",
                     s->conn->id);
        free(out->api_base);
        out->api_base = root;
    }
    free(url);
    return r;
}

/* A new connection's settings keep the token endpoint it was given. */
static void pd_keep_oauth_url(const struct connection *conn, char **settings)
{
    json_t *old = conn->settings ? json_loads(conn->settings, 0, NULL) : NULL;
    json_t *url = json_object_get(old, "oauth_url");
    json_t *now = *settings ? json_loads(*settings, 0, NULL) : json_object();

    if (json_is_string(url) && json_is_object(now)) {
        json_object_set(now, "oauth_url", url);
        free(*settings);
        *settings = json_dumps(now, JSON_COMPACT | JSON_SORT_KEYS);
    }
    json_decref(now);
    json_decref(old);
}

/* Checks the token, the company and the integration user against
 * /v1/users/me, then learns the custom fields' keys from /dealFields. */
static fs_result pd_prepare(struct provider_session *s, char **settings,
                            char **error)
{
    struct pd_reply reply = {0};
    char **pages = NULL;
    size_t n = 0;
    char *cursor = NULL;
    fs_result result;

    *settings = NULL;
    *error = NULL;
    result = pd_get(s, COST_USER_ME, "/v1/users/me", &reply);
    if (result != FS_OK) {
        *error =
            xasprintf("GET /v1/users/me failed: %s%s", fs_result_name(result),
                      result != FS_ERR_AUTH ? ""
                      : pd_oauth(s->conn)   ? " (check the OAuth app's access)"
                                            : " (check the API token)");
        goto out;
    }
    const json_t *me = json_object_get(reply.json, "data");
    char *me_id = provider_json_text(json_object_get(me, "id"));
    char *company = provider_json_text(json_object_get(me, "company_id"));
    const char *conn_company = s->conn->account_id;
    const char *conn_user = s->conn->app_id;
    if (!me_id || !conn_user || strcmp(me_id, conn_user) != 0)
        *error = xasprintf("the API token belongs to user %s, not the "
                           "integration user %s",
                           me_id ? me_id : "?", conn_user ? conn_user : "?");
    else if (!company || !conn_company || strcmp(company, conn_company) != 0)
        *error = xasprintf("the API token is of company %s, not %s",
                           company ? company : "?",
                           conn_company ? conn_company : "?");
    free(me_id);
    free(company);
    pd_reply_clear(&reply);
    if (*error) {
        result = FS_ERR_INVALID;
        goto out;
    }

    for (int page = 0; page < PD_MAX_PAGES; page++) {
        struct buf path = {0};
        buf_appendf(&path, "/api/v2/dealFields?limit=%d", PIPEDRIVE_PAGE_MAX);
        pd_append_cursor(&path, cursor);
        free(cursor);
        cursor = NULL;
        result = pd_get(s, COST_DEAL_FIELDS, path.data, &reply);
        buf_free(&path);
        if (result != FS_OK) {
            *error = xasprintf("GET /api/v2/dealFields failed: %s",
                               fs_result_name(result));
            goto out;
        }
        pages = xrealloc(pages, (n + 1) * sizeof(*pages));
        pages[n++] = json_dumps(reply.json, JSON_COMPACT);
        cursor = pd_next_cursor(reply.json);
        pd_reply_clear(&reply);
        if (!cursor)
            break;
    }
    result = pipedrive_settings_from_fields((const char *const *)pages, n,
                                            settings, error);
    if (result == FS_OK)
        pd_keep_oauth_url(s->conn, settings);
out:
    for (size_t i = 0; i < n; i++)
        free(pages[i]);
    free(pages);
    free(cursor);
    pd_reply_clear(&reply);
    return result;
}

/* Deletes webhooks already registered at url (their credentials may be
 * old), then registers one for every deal event, webhooks v2, with the
 * connection's Basic user and password (a fresh random one when it has
 * none), which is *secret. */
static fs_result pd_register_webhook(struct provider_session *s,
                                     const char *url, char **secret,
                                     char **error)
{
    struct pd_reply reply = {0};
    fs_result result;
    size_t i;
    const json_t *hook;
    /* Pipedrive sends back whatever password it was given: ours to make,
     * unless the connection brings one. */
    char *password = s->conn->client_secret && *s->conn->client_secret
                         ? xstrdup(s->conn->client_secret)
                         : crypto_random_hex(PIPEDRIVE_HOOK_PASSWORD_BYTES);

    *secret = NULL;
    *error = NULL;
    result = pd_get(s, COST_WEBHOOKS, "/v1/webhooks", &reply);
    if (result != FS_OK) {
        *error =
            xasprintf("GET /v1/webhooks failed: %s", fs_result_name(result));
        goto out;
    }
    json_array_foreach(json_object_get(reply.json, "data"), i, hook)
    {
        const char *at = provider_json_str(hook, "subscription_url");
        char *id = provider_json_text(json_object_get(hook, "id"));
        if (at && id && strcmp(at, url) == 0) {
            struct pd_reply gone = {0};
            char *path = xasprintf("/v1/webhooks/%s", id);
            pd_call(s, CALL_READ, COST_WEBHOOK_DELETE, "DELETE", path, NULL,
                    &gone);
            pd_reply_clear(&gone);
            free(path);
        }
        free(id);
    }
    pd_reply_clear(&reply);

    json_t *body =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "subscription_url",
                  url, "event_action", "*", "event_object", "deal", "name",
                  "fieldsync", "version", "2.0", "http_auth_user",
                  s->conn->webhook_user ? s->conn->webhook_user : "",
                  "http_auth_password", password);
    result = pd_call(s, CALL_READ, COST_WEBHOOK_ADD, "POST", "/v1/webhooks",
                     body, &reply);
    json_decref(body);
    if (result == FS_OK)
        result = pd_status_result(reply.status);
    if (result != FS_OK) {
        char *message = pd_error_message(reply.json, reply.status);
        const json_t *errors = json_object_get(reply.json, "errors");
        char *detail = errors ? json_dumps(errors, JSON_COMPACT) : NULL;
        *error = xasprintf("POST /v1/webhooks failed: %s%s%s", message,
                           detail ? " " : "", detail ? detail : "");
        free(detail);
        free(message);
    } else {
        *secret = password;
        password = NULL;
    }
out:
    pd_reply_clear(&reply);
    free(password);
    return result;
}

static void pd_rate_budget(const struct connection *conn, enum call_class cls,
                           struct rate_budget *out)
{
    out->window_calls =
        conn->rate_window > 0 ? conn->rate_window : PD_DEFAULT_WINDOW_CALLS;
    /* Counted a little longer than Pipedrive's window: a call's time on
     * the wire must not put it in a window Pipedrive still counts full. */
    out->window_ms = PIPEDRIVE_WINDOW_MS + PD_WINDOW_MARGIN_MS;
    out->daily_units =
        conn->rate_daily > 0 ? conn->rate_daily : PD_DEFAULT_DAILY_TOKENS;
}

/* The standard fields always; custom ones when connect found them. */
static unsigned pd_synced_fields(const struct connection *conn)
{
    struct pd_map m;
    unsigned bits = 0;

    pd_map_load(conn, &m);
    for (int f = 0; f < DEAL_FIELD_COUNT; f++) {
        if (m.key[f])
            bits |= 1u << f;
    }
    pd_map_clear(&m);
    return bits;
}

/* ---- answers without a network ---- */

fs_result pipedrive_read_answer(const struct connection *conn, const char *body,
                                size_t len, struct pipedrive_answer *out)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    struct crm_deal_list list = {0};
    struct pd_map m;

    memset(out, 0, sizeof(*out));
    if (!root)
        return FS_ERR_REMOTE;
    pd_map_load(conn, &m);
    pd_parse_page(conn, &m, root, false, &list);
    crm_deal_list_give(&list, &out->deals, &out->deal_count);
    out->next_cursor = pd_next_cursor(root);
    pd_users_of(root, &out->owners, &out->owner_count);
    pd_stages_of(root, &out->stages, &out->stage_count);
    add_closed_stages(&out->stages, &out->stage_count);
    out->found_id = pd_search_hit(root);
    out->error = pd_error_message(root, 200);
    pd_map_clear(&m);
    json_decref(root);
    return FS_OK;
}

void pipedrive_answer_clear(struct pipedrive_answer *a)
{
    if (!a)
        return;
    crm_deals_free(a->deals, a->deal_count);
    crm_owners_free(a->owners, a->owner_count);
    crm_stages_free(a->stages, a->stage_count);
    free(a->next_cursor);
    free(a->found_id);
    free(a->error);
    memset(a, 0, sizeof(*a));
}

fs_result pipedrive_read_write_answer(const struct connection *conn,
                                      const struct crm_write *w, long status,
                                      const char *body, size_t len,
                                      struct crm_write_result *out)
{
    json_t *root = len > 0 ? json_loadb(body, len, 0, NULL) : NULL;

    memset(out, 0, sizeof(*out));
    fs_result result =
        pd_write_answer(conn, status, root, w->crm_id ? NULL : w, out);
    json_decref(root);
    return result;
}

const struct provider pipedrive_provider = {
    .name = "pipedrive",
    .max_write_batch = 20,
    .webhooks_by_url = true,
    .bans_failing_hooks = true,
    .rate_budget = pd_rate_budget,
    .synced_fields = pd_synced_fields,
    .prepare = pd_prepare,
    .register_webhook = pd_register_webhook,
    .split_webhook = pd_split_webhook,
    .verify_webhook = pd_verify_webhook,
    .parse_event = pd_parse_event,
    .list_deals = pd_list_deals,
    .changed_since = pd_changed_since,
    .read_deals = pd_read_deals,
    .write_deals = pd_write_deals,
    .find_by_our_id = pd_find_by_our_id,
    .list_owners = pd_list_owners,
    .list_stages = pd_list_stages,
    .oauth_token = pd_oauth_token,
};
