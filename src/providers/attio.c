/* The Attio provider: verifies and cuts webhook deliveries (ids only),
 * turns their events into reads, deletes and merges, and reads, writes
 * and checks the connection's object over REST v2 within Attio's read and
 * write budgets. */
#include "providers/attio.h"

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/crypto.h"
#include "base/log.h"
#include "providers/provider_call.h"
#include "providers/provider_util.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Member the stored event carries with the time it was received: Attio's
 * events carry none, and a delete needs one. */
#define RECEIVED_KEY "fieldsync_received_at"
#define READ_RETRIES 3
#define RETRY_AFTER_DEFAULT_MS 1000
#define RETRY_AFTER_MAX_MS 60000
#define MEMBERS_MAX 10000
#define MAX_PAGES 100000
#define WRITE_BATCH 10
/* A field whose current value is our push this recent has its history
 * read, for an edit the push may have overwritten. */
#define HISTORY_WINDOW_MS 600000

static const char *json_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

char *attio_signature(const char *secret, const char *body, size_t len)
{
    uint8_t mac[CRYPTO_SHA256_LEN];

    crypto_hmac_sha256(secret, strlen(secret), body, len, mac);
    return crypto_hex(mac, sizeof(mac));
}

int64_t attio_retry_after(const char *value, int64_t now_ms)
{
    struct tm tm = {0};
    char *end = NULL;

    if (!value || !*value)
        return 0;
    if (isdigit((unsigned char)value[0])) {
        long secs = strtol(value, &end, 10);
        if (end && *end == '\0' && secs >= 0 && secs <= 86400)
            return now_ms + (int64_t)secs * 1000;
        return 0;
    }
    /* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT". */
    end = strptime(value, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end || *end != '\0')
        return 0;
    return (int64_t)timegm(&tm) * 1000;
}

/* ---- the connection's map ---- */

static fs_result load_map(const struct connection *conn, struct attio_map *m)
{
    fs_result r = attio_map_from_settings(conn->settings, m);

    if (r != FS_OK)
        log_error("provider=attio connection=%" PRId64
                  " event=settings_unusable (run fieldsync connect again)",
                  conn->id);
    return r;
}

static unsigned at_synced_fields(const struct connection *conn)
{
    struct attio_map m;
    unsigned bits = 0;

    if (attio_map_from_settings(conn->settings, &m) == FS_OK)
        bits = attio_map_synced(&m);
    attio_map_clear(&m);
    return bits;
}

/* 100 reads and 25 writes a second, each in a rolling second; no daily
 * budget. rate_window overrides reads, the map's writes_per_s writes. */
static void at_rate_budget(const struct connection *conn, enum call_class cls,
                           struct rate_budget *out)
{
    out->window_ms = 1000;
    out->daily_units = 0;
    if (cls == CALL_READ) {
        out->window_calls =
            conn->rate_window > 0 ? conn->rate_window : ATTIO_READS_PER_S;
        return;
    }
    struct attio_map m;
    out->window_calls = ATTIO_WRITES_PER_S;
    if (attio_map_from_settings(conn->settings, &m) == FS_OK &&
        m.writes_per_s > 0)
        out->window_calls = m.writes_per_s;
    attio_map_clear(&m);
}

/* ---- webhooks ---- */

static const char *req_header(const struct webhook_request *req,
                              const char *name)
{
    return req->header ? req->header(req->header_ctx, name) : NULL;
}

/* The delivery's dedup key: Idempotency-Key, the same on every retry;
 * without one, a hash of the body (a retry sends the same bytes). */
static char *delivery_key(const struct webhook_request *req)
{
    const char *key = req_header(req, "Idempotency-Key");
    uint8_t digest[CRYPTO_SHA256_LEN];

    if (key && *key)
        return strlen(key) <= ATTIO_MAX_KEY_LEN ? xstrdup(key) : NULL;
    crypto_sha256(req->body, req->body_len, digest);
    char *hex = crypto_hex(digest, sizeof(digest));
    char *out = xasprintf("body:%s", hex);
    free(hex);
    return out;
}

static fs_result at_split_webhook(const struct webhook_request *req,
                                  struct webhook_item **items, size_t *count)
{
    json_t *root = NULL;
    struct webhook_item *out = NULL;
    char *key = NULL;
    size_t n = 0;
    fs_result result = FS_ERR_INVALID;

    *items = NULL;
    *count = 0;
    root = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, NULL);
    const json_t *events = json_object_get(root, "events");
    if (!json_is_object(root) || !json_str(root, "webhook_id") ||
        !json_is_array(events) || json_array_size(events) == 0)
        goto out;
    n = json_array_size(events);
    if (n > ATTIO_MAX_EVENTS) {
        result = FS_ERR_TOO_LARGE;
        goto out;
    }
    key = delivery_key(req);
    if (!key)
        goto out;

    int64_t now = clock_now_ms();
    out = xcalloc(n, sizeof(*out));
    for (size_t i = 0; i < n; i++) {
        json_t *event = json_deep_copy(json_array_get(events, i));
        if (!json_is_object(event) || !json_str(event, "event_type")) {
            json_decref(event);
            goto out;
        }
        json_object_set_new(event, RECEIVED_KEY, json_integer(now));
        out[i].dedup_key = n == 1 ? xstrdup(key) : xasprintf("%s:%zu", key, i);
        out[i].account_id = xstrdup("");
        out[i].app_id = xstrdup("");
        out[i].body = json_dumps(event, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(event);
        if (!out[i].body)
            abort();
    }
    *items = out;
    *count = n;
    out = NULL;
    result = FS_OK;
out:
    webhook_items_free(out, n);
    free(key);
    json_decref(root);
    return result;
}

static fs_result at_verify_webhook(const struct connection *conn,
                                   const struct webhook_request *req,
                                   int64_t now_ms)
{
    const char *sig = req_header(req, "Attio-Signature");
    char *expected = NULL;
    char *given = NULL;
    fs_result result = FS_ERR_AUTH;

    (void)now_ms;
    if (!sig)
        sig = req_header(req, "X-Attio-Signature");
    if (!sig || !conn->client_secret || !*conn->client_secret ||
        (!req->body && req->body_len))
        return FS_ERR_AUTH;
    expected = attio_signature(conn->client_secret, req->body, req->body_len);
    given = xstrdup(sig);
    for (char *p = given; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    if (crypto_equal(expected, strlen(expected), given, strlen(given)))
        result = FS_OK;
    free(expected);
    free(given);
    return result;
}

static void set_ignored(struct crm_event *ev, const char *type,
                        const char *detail)
{
    ev->kind = CRM_EVENT_IGNORED;
    free(ev->ignored_type);
    ev->ignored_type =
        detail ? xasprintf("%s:%s", type, detail) : xstrdup(type);
}

/* A record.* event of the map's object. */
static fs_result parse_record_event(const struct connection *conn,
                                    const struct attio_map *m,
                                    const json_t *event, const char *type,
                                    struct crm_event *ev)
{
    const json_t *id = json_object_get(event, "id");
    const char *object_id = json_str(id, "object_id");
    const char *record_id = json_str(id, "record_id");
    const char *action = type + strlen("record.");

    if (!record_id || !*record_id || !object_id)
        return FS_ERR_INVALID;
    ev->crm_id = xstrdup(record_id);
    ev->actor = attio_actor(conn, json_object_get(event, "actor"));
    if (m->object_id && strcmp(object_id, m->object_id) != 0) {
        set_ignored(ev, type, "other_object");
        return FS_OK;
    }

    if ((strcmp(action, "created") == 0 || strcmp(action, "updated") == 0) &&
        ev->actor == ACTOR_US) {
        /* Our own write: its answer told us what it did, and anyone
         * else's change to the record has an event of its own. */
        set_ignored(ev, type, "echo");
    } else if (strcmp(action, "created") == 0) {
        ev->kind = CRM_EVENT_CREATE;
    } else if (strcmp(action, "updated") == 0) {
        const char *attr = json_str(id, "attribute_id");
        if (attr && attio_map_field_of_attribute(m, attr) < 0 &&
            !(m->our_id.id && strcmp(attr, m->our_id.id) == 0))
            set_ignored(ev, type, "unsynced_attribute");
        else
            ev->kind = CRM_EVENT_READ;
    } else if (strcmp(action, "deleted") == 0) {
        ev->kind = CRM_EVENT_DELETE;
    } else if (strcmp(action, "merged") == 0) {
        /* The record in id is the merge's result (a new record, or the
         * original that absorbed the duplicate); each event names one
         * record that went into it. */
        const char *dup = json_str(event, "duplicate_record_id");
        if (!dup || !*dup)
            return FS_ERR_INVALID;
        ev->kind = CRM_EVENT_MERGE;
        ev->new_id = xstrdup(record_id);
        ev->merged_ids = xcalloc(1, sizeof(char *));
        ev->merged_ids[0] = xstrdup(dup);
        ev->merged_count = 1;
    } else {
        set_ignored(ev, type, NULL);
    }
    return FS_OK;
}

static fs_result at_parse_event(const struct connection *conn, const char *json,
                                struct crm_event *out)
{
    json_t *event = json_loads(json, 0, NULL);
    struct attio_map m = {0};
    fs_result result = FS_ERR_INVALID;

    memset(out, 0, sizeof(*out));
    const char *type = json_str(event, "event_type");
    if (!json_is_object(event) || !type)
        goto out;
    const json_t *received = json_object_get(event, RECEIVED_KEY);
    out->time = json_is_integer(received) ? json_integer_value(received)
                                          : clock_now_ms();

    if (strncmp(type, "record.", 7) != 0) {
        set_ignored(out, type, NULL);
        result = FS_OK;
        goto out;
    }
    result = load_map(conn, &m);
    if (result == FS_OK)
        result = parse_record_event(conn, &m, event, type, out);
out:
    if (result != FS_OK)
        crm_event_clear(out);
    attio_map_clear(&m);
    json_decref(event);
    return result;
}

/* ---- REST calls ---- */

struct at_reply {
    long status;
    json_t *json;
};

static void at_reply_clear(struct at_reply *r)
{
    json_decref(r->json);
    memset(r, 0, sizeof(*r));
}

/* Attio's error message ("message" of {status_code,type,code,message}). */
static char *at_error_message(const json_t *body, long status)
{
    const char *message = json_str(body, "message");
    const char *code = json_str(body, "code");

    if (message && code)
        return xasprintf("%s: %s", code, message);
    if (message)
        return xstrdup(message);
    return xasprintf("Attio answered %ld", status);
}

static char *at_url(const struct connection *conn, const char *path)
{
    const char *base = conn->base_url ? conn->base_url : "";
    size_t len = strlen(base);

    while (len > 0 && base[len - 1] == '/')
        len--;
    return xasprintf("%.*s%s", (int)len, base, path);
}

/* After a 429: hold the class's calls until Retry-After (an HTTP-date,
 * usually the next second). */
static void at_pause(struct provider_session *s, enum call_class cls,
                     const struct http_client_response *resp)
{
    int64_t now = clock_now_ms();
    char *value = http_client_response_header(resp, "Retry-After");
    int64_t until = attio_retry_after(value, now);
    struct rate_governor *gov = provider_session_governor(s, cls);

    free(value);
    if (until <= now)
        until = now + RETRY_AFTER_DEFAULT_MS;
    if (until > now + RETRY_AFTER_MAX_MS)
        until = now + RETRY_AFTER_MAX_MS;
    if (gov)
        rate_governor_pause(gov, until);
    log_warn("provider=attio connection=%" PRId64
             " rate_limit=%s pause_ms=%" PRId64,
             s->conn->id, cls == CALL_READ ? "read" : "write", until - now);
}

/* One call with the connection's token, in its class's budget. A read
 * refused by the rate limit waits for Retry-After and goes again a few
 * times (an id-only event's change is only known through its read); a
 * write is left to the pusher's next try. Any answer but 429, 5xx and
 * timeouts is FS_OK with its status. */
static fs_result at_call(struct provider_session *s, enum call_class cls,
                         const char *method, const char *path,
                         const json_t *body, struct at_reply *reply)
{
    char *token = NULL;
    fs_result result = provider_access_token(s, &token);
    if (result != FS_OK) {
        memset(reply, 0, sizeof(*reply));
        return result;
    }
    char *url = at_url(s->conn, path);
    char *auth = xasprintf("Authorization: Bearer %s", token ? token : "");
    free(token);
    const char *headers[] = {auth, "Content-Type: application/json",
                             "Accept: application/json", NULL};
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    struct call_cost cost = {cls, 1};
    struct http_client_response resp = {0};

    memset(reply, 0, sizeof(*reply));
    for (int attempt = 0;; attempt++) {
        result = provider_call_send(s, &cost, method, url, headers, text,
                                    text ? strlen(text) : 0, &resp);
        if (result != FS_ERR_RATE_LIMITED || resp.status != 429)
            break;
        at_pause(s, cls, &resp);
        if (cls != CALL_READ || attempt + 1 >= READ_RETRIES)
            break;
        http_client_response_free(&resp);
    }
    if (result != FS_OK)
        goto out;
    reply->status = resp.status;
    if (resp.body.len > 0)
        reply->json = json_loadb(resp.body.data, resp.body.len, 0, NULL);
    if (!reply->json && reply->status < 300 && reply->status != 204)
        result = FS_ERR_REMOTE;
out:
    http_client_response_free(&resp);
    free(text);
    free(auth);
    free(url);
    return result;
}

/* A call whose answer must be 2xx. */
static fs_result at_call_ok(struct provider_session *s, enum call_class cls,
                            const char *method, const char *path,
                            const json_t *body, struct at_reply *reply)
{
    fs_result result = at_call(s, cls, method, path, body, reply);

    if (result == FS_OK)
        result = provider_status_result(reply->status);
    if (result != FS_OK && reply->json) {
        char *message = at_error_message(reply->json, reply->status);
        log_info("provider=attio path=%s status=%ld error=\"%s\"", path,
                 reply->status, message);
        free(message);
    }
    return result;
}

static char *object_path(const struct attio_map *m, const char *rest)
{
    char *esc = provider_url_escape(m->object);
    char *path = xasprintf("/v2/objects/%s%s", esc, rest);
    free(esc);
    return path;
}

/* ---- deals ---- */

/* Adds the well-formed records of a query answer; returns how many the
 * page held. */
static size_t add_records(const struct connection *conn,
                          const struct attio_map *m, const json_t *data,
                          struct crm_deal_list *l)
{
    size_t i;
    const json_t *rec;

    json_array_foreach(data, i, rec)
    {
        struct crm_deal *d = crm_deal_list_add(l);
        if (attio_deal_from_record(conn, m, rec, d) != FS_OK) {
            crm_deal_list_drop_last(l);
            log_info("provider=attio event=record_unreadable");
        }
    }
    return json_array_size(data);
}

/* One page of a query: records in creation order (a stable order for
 * offset paging), filter may be NULL. */
static fs_result query_page(struct provider_session *s,
                            const struct attio_map *m, json_t *filter,
                            int limit, int64_t offset, struct crm_deal_list *l,
                            size_t *got)
{
    json_t *body = json_pack("{s:[{s:s, s:s}], s:i, s:I}", "sorts", "direction",
                             "asc", "attribute", "created_at", "limit", limit,
                             "offset", (json_int_t)offset);
    char *path = object_path(m, "/records/query");
    struct at_reply reply = {0};

    if (filter)
        json_object_set_new(body, "filter", filter);
    fs_result result = at_call_ok(s, CALL_READ, "POST", path, body, &reply);
    if (result == FS_OK)
        *got = add_records(s->conn, m, json_object_get(reply.json, "data"), l);
    at_reply_clear(&reply);
    json_decref(body);
    free(path);
    return result;
}

/* Pages through every record by offset; the cursor's token is the next
 * offset. */
static fs_result scan_page(struct provider_session *s,
                           struct crm_cursor *cursor, struct crm_deal **out,
                           size_t *count)
{
    struct attio_map m = {0};
    struct crm_deal_list list = {0};
    int64_t offset = cursor->after ? strtoll(cursor->after, NULL, 10) : 0;
    size_t got = 0;

    *out = NULL;
    *count = 0;
    if (cursor->done)
        return FS_OK;
    fs_result result = load_map(s->conn, &m);
    if (result == FS_OK)
        result = query_page(s, &m, NULL, ATTIO_PAGE_LIMIT, offset, &list, &got);
    if (result == FS_OK) {
        free(cursor->after);
        cursor->after = xasprintf("%" PRId64, offset + (int64_t)got);
        cursor->done = got < ATTIO_PAGE_LIMIT;
        for (size_t i = 0; i < list.count; i++) {
            if (list.items[i].modified > cursor->watermark)
                cursor->watermark = list.items[i].modified;
        }
        crm_deal_list_give(&list, out, count);
    }
    crm_deals_free(list.items, list.count);
    attio_map_clear(&m);
    return result;
}

static fs_result at_list_deals(struct provider_session *s,
                               struct crm_cursor *cursor, struct crm_deal **out,
                               size_t *count)
{
    return scan_page(s, cursor, out, count);
}

/* Attio keeps no record-level modification time, and an emptied value
 * shows no time at all, so the backstop reads every record: the caller
 * compares each with what it knows and re-reads those that differ. */
static fs_result at_changed_since(struct provider_session *s,
                                  struct crm_cursor *cursor,
                                  struct crm_deal **out, size_t *count)
{
    return scan_page(s, cursor, out, count);
}

/* The newest value of an attribute's history someone other than us
 * wrote, when the current value is ours: an edit our push may have
 * overwritten (its webhook leads to a read that shows only our value). */
static fs_result other_value(struct provider_session *s,
                             const struct attio_map *m, const char *crm_id,
                             const struct attio_attr *a, const json_t **out,
                             struct at_reply *reply)
{
    char *id = provider_url_escape(crm_id);
    char *slug = provider_url_escape(a->slug);
    char *rest = xasprintf(
        "/records/%s/attributes/%s/values?show_historic=true", id, slug);
    char *path = object_path(m, rest);
    fs_result result = at_call_ok(s, CALL_READ, "GET", path, NULL, reply);
    size_t i;
    const json_t *v;
    int64_t newest = 0;

    *out = NULL;
    json_array_foreach(json_object_get(reply->json, "data"), i, v)
    {
        const json_t *actor = json_object_get(v, "created_by_actor");
        int64_t t = 0;
        bool ours = attio_actor(s->conn, actor) == ACTOR_US;
        if (ours || !json_str(v, "active_from") ||
            clock_parse_iso(json_str(v, "active_from"), &t) != 0)
            continue;
        const json_t *until = json_object_get(v, "active_until");
        if (t >= newest) {
            newest = t;
            *out = until && !json_is_null(until) ? v : NULL;
        }
    }
    free(path);
    free(rest);
    free(slug);
    free(id);
    return result;
}

/* Fills others[] for the fields whose current value is our recent push;
 * one call an attribute (a location answers for postcode and location). */
static fs_result add_history(struct provider_session *s,
                             const struct attio_map *m, struct crm_deal *d,
                             int64_t now)
{
    bool looked[DEAL_FIELD_COUNT] = {false};

    for (int f = 0; f < DEAL_FIELD_COUNT; f++) {
        const struct attio_attr *a = &m->fields[f];
        if (!a->slug || looked[f] || d->actors[f] != ACTOR_US ||
            now - d->times[f] > HISTORY_WINDOW_MS)
            continue;
        struct at_reply reply = {0};
        const json_t *v = NULL;
        fs_result result = other_value(s, m, d->crm_id, a, &v, &reply);
        for (int g = f; result == FS_OK && g < DEAL_FIELD_COUNT; g++) {
            char *value = NULL;
            if (!m->fields[g].slug || strcmp(m->fields[g].slug, a->slug) != 0)
                continue;
            looked[g] = true;
            if (!v || attio_value_in(a->kind, g, v, &value) != FS_OK)
                continue;
            clock_parse_iso(json_str(v, "active_from"), &d->others[g].time);
            d->others[g].value = value;
            d->others[g].present = true;
        }
        at_reply_clear(&reply);
        if (result != FS_OK)
            return result;
    }
    return FS_OK;
}

/* Reads records by id with one query ({"record_id":{"$in":[...]}}); ids
 * the answer lacks are gone (Attio's deletes are permanent). */
static fs_result at_read_deals(struct provider_session *s,
                               const char *const *crm_ids, size_t n,
                               struct crm_deal **out, size_t *count)
{
    struct attio_map m = {0};
    struct crm_deal_list list = {0};
    fs_result result = load_map(s->conn, &m);

    *out = NULL;
    *count = 0;
    for (size_t start = 0; result == FS_OK && start < n;
         start += ATTIO_PAGE_LIMIT) {
        size_t chunk =
            n - start < ATTIO_PAGE_LIMIT ? n - start : ATTIO_PAGE_LIMIT;
        json_t *ids = json_array();
        size_t got = 0, first = list.count;
        for (size_t i = 0; i < chunk; i++)
            json_array_append_new(ids, json_string(crm_ids[start + i]));
        json_t *filter = json_pack("{s:{s:o}}", "record_id", "$in", ids);
        result = query_page(s, &m, filter, (int)chunk, 0, &list, &got);
        for (size_t i = 0; result == FS_OK && i < chunk; i++) {
            bool found = false;
            for (size_t j = first; j < list.count && !found; j++)
                found = strcmp(list.items[j].crm_id, crm_ids[start + i]) == 0;
            if (!found) {
                struct crm_deal *d = crm_deal_list_add(&list);
                d->crm_id = xstrdup(crm_ids[start + i]);
                d->archived = true;
            }
        }
    }
    int64_t now = clock_now_ms();
    for (size_t i = 0; result == FS_OK && i < list.count; i++) {
        if (!list.items[i].archived)
            result = add_history(s, &m, &list.items[i], now);
    }
    if (result == FS_OK)
        crm_deal_list_give(&list, out, count);
    crm_deals_free(list.items, list.count);
    attio_map_clear(&m);
    return result;
}

/* ---- writes ---- */

static void result_ok(struct crm_write_result *r, const char *crm_id,
                      int64_t time, const char *writer)
{
    r->done = true;
    r->result = FS_OK;
    free(r->crm_id);
    r->crm_id = dup_or_null(crm_id);
    free(r->error);
    r->error = NULL;
    r->time = time;
    free(r->writer_id);
    r->writer_id = dup_or_null(writer);
}

/* The values object of one write: the present fields (a location once,
 * built from postcode and location), plus our id on a create. */
static fs_result write_values(const struct attio_map *m,
                              const struct crm_write *w, bool create,
                              json_t **out)
{
    json_t *values = json_object();

    *out = NULL;
    for (int f = 0; f < DEAL_FIELD_COUNT; f++) {
        json_t *list = NULL;
        if (!w->present[f] || !m->fields[f].slug)
            continue;
        if (attio_value_out(m, f, w->values, &list) != FS_OK) {
            json_decref(values);
            return FS_ERR_INVALID;
        }
        json_object_set_new(values, m->fields[f].slug, list);
    }
    if (create && w->our_id)
        json_object_set_new(values, m->our_id.slug,
                            json_pack("[s]", w->our_id));
    *out = values;
    return FS_OK;
}

/* The newest active_from among the written attributes' values, and who
 * wrote them when it was an API token (ours: Attio names our writes by
 * it). */
static int64_t written_time(const struct attio_map *m,
                            const struct crm_write *w, const json_t *record,
                            const char **writer)
{
    const json_t *values = json_object_get(record, "values");
    int64_t newest = 0;

    *writer = NULL;
    for (int f = 0; f < DEAL_FIELD_COUNT; f++) {
        size_t i;
        const json_t *v;
        if (!w->present[f] || !m->fields[f].slug)
            continue;
        json_array_foreach(json_object_get(values, m->fields[f].slug), i, v)
        {
            const json_t *until = json_object_get(v, "active_until");
            const json_t *actor = json_object_get(v, "created_by_actor");
            int64_t t = 0;
            if (until && !json_is_null(until))
                continue;
            if (json_str(v, "active_from") &&
                clock_parse_iso(json_str(v, "active_from"), &t) == 0 &&
                t > newest)
                newest = t;
            const char *type = json_str(actor, "type");
            if (type && strcmp(type, "api-token") == 0 && json_str(actor, "id"))
                *writer = json_str(actor, "id");
        }
    }
    return newest;
}

/* What the CRM put in fields a create left empty (a required status's
 * default). */
static void take_defaults(const struct connection *conn,
                          const struct attio_map *m, const struct crm_write *w,
                          const json_t *record, struct crm_write_result *r)
{
    struct crm_deal d;

    if (attio_deal_from_record(conn, m, record, &d) != FS_OK)
        return;
    for (int f = 0; f < DEAL_FIELD_COUNT; f++) {
        if (!w->present[f] && d.values[f]) {
            r->defaults[f] = d.values[f];
            d.values[f] = NULL;
        }
    }
    crm_deal_clear(&d);
}

static fs_result write_one(struct provider_session *s,
                           const struct attio_map *m, const struct crm_write *w,
                           struct crm_write_result *r)
{
    json_t *values = NULL;
    char *path = NULL;
    struct at_reply reply = {0};
    bool create = w->crm_id == NULL;
    fs_result result = FS_OK;

    if (create && !w->our_id) {
        provider_result_fail(r, FS_ERR_INVALID, "a create needs our record id");
        return FS_OK;
    }
    if (write_values(m, w, create, &values) != FS_OK) {
        provider_result_fail(r, FS_ERR_INVALID,
                             "a value is not in a form Attio takes");
        return FS_OK;
    }
    json_t *body = json_pack("{s:{s:o}}", "data", "values", values);
    if (create) {
        /* Assert on our id: a retried create updates the record it made. */
        char *slug = provider_url_escape(m->our_id.slug);
        char *rest = xasprintf("/records?matching_attribute=%s", slug);
        path = object_path(m, rest);
        free(rest);
        free(slug);
    } else {
        char *id = provider_url_escape(w->crm_id);
        char *rest = xasprintf("/records/%s", id);
        path = object_path(m, rest);
        free(rest);
        free(id);
    }
    result =
        at_call(s, CALL_WRITE, create ? "PUT" : "PATCH", path, body, &reply);
    if (result != FS_OK)
        goto out;

    const json_t *data = json_object_get(reply.json, "data");
    const char *id = json_str(json_object_get(data, "id"), "record_id");
    if (reply.status >= 200 && reply.status < 300 && id) {
        const char *writer = NULL;
        int64_t t = written_time(m, w, data, &writer);
        result_ok(r, id, t, writer);
        if (create)
            take_defaults(s->conn, m, w, data, r);
    } else if (reply.status >= 200 && reply.status < 300) {
        provider_result_fail(r, FS_ERR_REMOTE, "Attio returned no record id");
    } else {
        fs_result code = provider_status_result(reply.status);
        char *message = at_error_message(reply.json, reply.status);
        provider_result_fail(r, code, message);
        free(message);
        if (code == FS_ERR_AUTH || code == FS_ERR_FORBIDDEN)
            result = code;
    }
out:
    json_decref(body);
    at_reply_clear(&reply);
    free(path);
    return result;
}

/* Attio has no batch write: one PATCH (or assert) a record. */
static fs_result at_write_deals(struct provider_session *s,
                                const struct crm_write *writes, size_t n,
                                struct crm_write_result *results)
{
    struct attio_map m = {0};
    fs_result result;

    if (n > attio_provider.max_write_batch)
        return FS_ERR_TOO_LARGE;
    memset(results, 0, n * sizeof(*results));
    result = load_map(s->conn, &m);
    for (size_t i = 0; result == FS_OK && i < n; i++)
        result = write_one(s, &m, &writes[i], &results[i]);
    attio_map_clear(&m);
    return result;
}

static fs_result at_find_by_our_id(struct provider_session *s,
                                   const char *our_id, char **crm_id)
{
    struct attio_map m = {0};
    struct crm_deal_list list = {0};
    size_t got = 0;
    fs_result result = load_map(s->conn, &m);

    *crm_id = NULL;
    if (result == FS_OK) {
        json_t *filter = json_pack("{s:{s:s}}", m.our_id.slug, "$eq", our_id);
        result = query_page(s, &m, filter, 1, 0, &list, &got);
    }
    if (result == FS_OK && list.count == 0)
        result = FS_ERR_NOT_FOUND;
    if (result == FS_OK)
        *crm_id = xstrdup(list.items[0].crm_id);
    crm_deals_free(list.items, list.count);
    attio_map_clear(&m);
    return result;
}

/* ---- owners, stages, and the connection check ---- */

static char *member_name(const json_t *member)
{
    const char *first = json_str(member, "first_name");
    const char *last = json_str(member, "last_name");
    bool has_first = first && *first, has_last = last && *last;

    if (has_first && has_last)
        return xasprintf("%s %s", first, last);
    if (has_first || has_last)
        return xstrdup(has_first ? first : last);
    return NULL;
}

static fs_result at_list_owners(struct provider_session *s,
                                struct crm_owner **out, size_t *count)
{
    struct at_reply reply = {0};
    struct crm_owner *owners = NULL;
    size_t n = 0, i;
    const json_t *member;

    *out = NULL;
    *count = 0;
    fs_result result =
        at_call_ok(s, CALL_READ, "GET", "/v2/workspace_members", NULL, &reply);
    if (result != FS_OK)
        goto out;
    const json_t *data = json_object_get(reply.json, "data");
    if (json_array_size(data) > MEMBERS_MAX) {
        result = FS_ERR_TOO_LARGE;
        goto out;
    }
    owners = xcalloc(json_array_size(data) + 1, sizeof(*owners));
    json_array_foreach(data, i, member)
    {
        const char *id =
            json_str(json_object_get(member, "id"), "workspace_member_id");
        if (!id)
            continue;
        owners[n].id = xstrdup(id);
        owners[n].email = dup_or_null(json_str(member, "email_address"));
        owners[n].name = member_name(member);
        n++;
    }
    *out = owners;
    *count = n;
    owners = NULL;
    n = 0;
out:
    crm_owners_free(owners, n);
    at_reply_clear(&reply);
    return result;
}

/* The stage attribute's statuses; the attribute's slug stands for the one
 * pipeline. Archived statuses are listed too: deals may still hold one. */
static fs_result at_list_stages(struct provider_session *s,
                                struct crm_stage **out, size_t *count)
{
    struct attio_map m = {0};
    struct at_reply reply = {0};
    struct crm_stage *stages = NULL;
    size_t n = 0, i;
    const json_t *st;
    char *path = NULL;

    *out = NULL;
    *count = 0;
    fs_result result = load_map(s->conn, &m);
    if (result != FS_OK)
        goto out;
    char *slug = provider_url_escape(m.fields[DEAL_STAGE].slug);
    char *rest = xasprintf("/attributes/%s/statuses?show_archived=true", slug);
    path = object_path(&m, rest);
    free(rest);
    free(slug);
    result = at_call_ok(s, CALL_READ, "GET", path, NULL, &reply);
    if (result != FS_OK)
        goto out;
    const json_t *data = json_object_get(reply.json, "data");
    stages = xcalloc(json_array_size(data) + 1, sizeof(*stages));
    json_array_foreach(data, i, st)
    {
        const char *id = json_str(json_object_get(st, "id"), "status_id");
        if (!id)
            continue;
        stages[n].pipeline_id = xstrdup(m.fields[DEAL_STAGE].slug);
        stages[n].id = xstrdup(id);
        stages[n].label = dup_or_null(json_str(st, "title"));
        n++;
    }
    *out = stages;
    *count = n;
    stages = NULL;
    n = 0;
out:
    crm_stages_free(stages, n);
    at_reply_clear(&reply);
    free(path);
    attio_map_clear(&m);
    return result;
}

/* What connect asked for, from its options in the settings: "object"
 * (default deals), "map" ("field=attribute,..."; our_id for our id's
 * attribute, an empty attribute leaving a field out) and "rate-writes". */
struct map_request {
    char *object;
    char *overrides[DEAL_FIELD_COUNT];
    char *our_id;
    int writes_per_s;
};

static void request_clear(struct map_request *req)
{
    free(req->object);
    for (int f = 0; f < DEAL_FIELD_COUNT; f++)
        free(req->overrides[f]);
    free(req->our_id);
    memset(req, 0, sizeof(*req));
}

/* One "field=attribute" of --map. */
static fs_result take_pair(struct map_request *req, const char *pair,
                           size_t len, char **error)
{
    const char *eq = memchr(pair, '=', len);
    char *name = NULL;
    fs_result result = FS_ERR_INVALID;

    if (!eq) {
        *error = xasprintf("--map takes field=attribute pairs, not '%.*s'",
                           (int)len, pair);
        return FS_ERR_INVALID;
    }
    name = xstrndup(pair, (size_t)(eq - pair));
    char *slug = xstrndup(eq + 1, len - (size_t)(eq - pair) - 1);
    int f = deal_field_by_name(name);
    char **slot = strcmp(name, "our_id") == 0 ? &req->our_id
                  : f >= 0                    ? &req->overrides[f]
                                              : NULL;
    if (!slot) {
        *error = xasprintf("--map names '%s', which is not a deal field", name);
    } else if (*slot) {
        *error = xasprintf("--map names '%s' twice", name);
    } else {
        *slot = slug;
        slug = NULL;
        result = FS_OK;
    }
    free(slug);
    free(name);
    return result;
}

static fs_result read_request(const char *settings, struct map_request *req,
                              char **error)
{
    json_t *root = settings ? json_loads(settings, 0, NULL) : json_object();
    fs_result result = FS_ERR_INVALID;

    memset(req, 0, sizeof(*req));
    if (!json_is_object(root)) {
        *error = xstrdup("the connection's settings are not a JSON object");
        goto out;
    }
    const char *object = json_str(root, "object");
    req->object = xstrdup(object && *object ? object : "deals");
    const char *map = json_str(root, "map");
    for (const char *p = map; p && *p;) {
        size_t len = strcspn(p, ",");
        if (len > 0 && take_pair(req, p, len, error) != FS_OK)
            goto out;
        p += len;
        if (*p == ',')
            p++;
    }
    const char *writes = json_str(root, "rate-writes");
    if (writes) {
        char *end = NULL;
        long v = strtol(writes, &end, 10);
        if (!end || *end || v < 1 || v > 100000) {
            *error = xstrdup("--rate-writes is a count of writes a second");
            goto out;
        }
        req->writes_per_s = (int)v;
    }
    result = FS_OK;
out:
    json_decref(root);
    return result;
}

/* Checks the token (GET /v2/self), finds the object and its attributes,
 * and builds and checks the attribute map. */
static fs_result at_prepare(struct provider_session *s, char **settings,
                            char **error)
{
    struct map_request req;
    struct at_reply self = {0}, object = {0}, attrs = {0};
    struct attio_map m = {0};
    char *path = NULL;
    char *notes = NULL;

    *settings = NULL;
    *error = NULL;
    fs_result result = read_request(s->conn->settings, &req, error);
    if (result != FS_OK)
        goto out;
    result = at_call_ok(s, CALL_READ, "GET", "/v2/self", NULL, &self);
    if (result == FS_OK && !json_is_true(json_object_get(self.json, "active")))
        result = FS_ERR_AUTH;
    if (result != FS_OK) {
        *error =
            xasprintf("the token was refused (%s)", fs_result_name(result));
        goto out;
    }
    struct attio_map probe = {.object = req.object};
    path = object_path(&probe, "");
    result = at_call_ok(s, CALL_READ, "GET", path, NULL, &object);
    if (result != FS_OK) {
        *error = xasprintf("the workspace has no object '%s' (%s)", req.object,
                           fs_result_name(result));
        goto out;
    }
    free(path);
    path = object_path(&probe, "/attributes?show_archived=false");
    result = at_call_ok(s, CALL_READ, "GET", path, NULL, &attrs);
    if (result != FS_OK) {
        *error = xasprintf("cannot list the attributes of '%s' (%s)",
                           req.object, fs_result_name(result));
        goto out;
    }

    const json_t *obj_data = json_object_get(object.json, "data");
    const char *object_id =
        json_str(json_object_get(obj_data, "id"), "object_id");
    const char *slug = json_str(obj_data, "api_slug");
    result = attio_map_build(
        slug ? slug : req.object, object_id, (const char *const *)req.overrides,
        req.our_id, json_object_get(attrs.json, "data"), &m, &notes, error);
    if (result != FS_OK)
        goto out;
    m.workspace_id = dup_or_null(json_str(self.json, "workspace_id"));
    m.writes_per_s = req.writes_per_s;
    if (notes)
        log_notice("provider=attio object=%s unsynced=\"%s\" (the object has "
                   "no attribute for them)",
                   m.object, notes);
    json_t *j = attio_map_to_json(&m);
    *settings = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
out:
    free(notes);
    free(path);
    attio_map_clear(&m);
    at_reply_clear(&self);
    at_reply_clear(&object);
    at_reply_clear(&attrs);
    request_clear(&req);
    return result;
}

/* Registers a webhook for the object's record events at target_url;
 * *secret is the secret Attio signs with. */
static fs_result at_register_webhook(struct provider_session *s,
                                     const char *target_url, char **secret,
                                     char **error)
{
    struct attio_map m = {0};
    struct at_reply reply = {0};
    static const char *const types[] = {"record.created", "record.updated",
                                        "record.deleted", "record.merged"};

    *secret = NULL;
    *error = NULL;
    fs_result result = load_map(s->conn, &m);
    if (result != FS_OK) {
        *error = xstrdup("the connection has no attribute map");
        return result;
    }
    json_t *subs = json_array();
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        json_t *filter = json_null();
        if (m.object_id)
            filter = json_pack("{s:[{s:s, s:s, s:s}]}", "$and", "field",
                               "id.object_id", "operator", "equals", "value",
                               m.object_id);
        json_array_append_new(subs, json_pack("{s:s, s:o}", "event_type",
                                              types[i], "filter", filter));
    }
    json_t *body = json_pack("{s:{s:s, s:o}}", "data", "target_url", target_url,
                             "subscriptions", subs);
    result = at_call_ok(s, CALL_WRITE, "POST", "/v2/webhooks", body, &reply);
    const char *given = json_str(json_object_get(reply.json, "data"), "secret");
    if (result == FS_OK && given && *given) {
        *secret = xstrdup(given);
    } else {
        if (result == FS_OK)
            result = FS_ERR_REMOTE;
        *error = reply.json ? at_error_message(reply.json, reply.status)
                            : xstrdup(fs_result_name(result));
    }
    json_decref(body);
    at_reply_clear(&reply);
    attio_map_clear(&m);
    return result;
}

const struct provider attio_provider = {
    .name = "attio",
    .max_write_batch = WRITE_BATCH,
    .webhooks_by_url = true,
    .separate_write_budget = true,
    .rate_budget = at_rate_budget,
    .synced_fields = at_synced_fields,
    .prepare = at_prepare,
    .register_webhook = at_register_webhook,
    .split_webhook = at_split_webhook,
    .verify_webhook = at_verify_webhook,
    .parse_event = at_parse_event,
    .list_deals = at_list_deals,
    .changed_since = at_changed_since,
    .read_deals = at_read_deals,
    .write_deals = at_write_deals,
    .find_by_our_id = at_find_by_our_id,
    .list_owners = at_list_owners,
    .list_stages = at_list_stages,
};
