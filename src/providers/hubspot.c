/* The HubSpot provider: verifies and cuts webhook deliveries, turns events
 * into normalised changes, and reads and writes deals over CRM v3 REST. */
#include "providers/hubspot.h"

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
#include <stdlib.h>
#include <string.h>

#define HS_OUR_ID_PROP "fieldsync_id"
#define HS_MODIFIED_PROP "hs_lastmodifieddate"
#define HS_DEAL_TYPE_ID "0-3"
#define HS_LIST_LIMIT 100
#define HS_SEARCH_LIMIT 200
/* HubSpot refuses to page a search past this many results. */
#define HS_SEARCH_CAP 10000
#define HS_READ_BATCH 50
#define HS_SEARCH_RETRIES 3
#define HS_SEARCH_RETRY_MS 1000
#define HS_WINDOW_MS 10000
#define HS_SEARCH_PER_S 5
/* HubSpot counts a call when it arrives, we when we send it: our windows
 * are this much longer, so a call sent as a slot frees never arrives
 * before the slot has freed there too. */
#define HS_WINDOW_MARGIN_MS 250
#define HS_MAX_PAGES 10000

/* Deal fields and the HubSpot properties that hold them. */
static const char *const hs_props[DEAL_FIELD_COUNT] = {
    [DEAL_NAME] = "dealname",          [DEAL_STAGE] = "dealstage",
    [DEAL_AMOUNT] = "amount",          [DEAL_CLOSE_DATE] = "closedate",
    [DEAL_OWNER] = "hubspot_owner_id", [DEAL_ACCOUNT] = "account_name",
    [DEAL_PRODUCT] = "product_name",   [DEAL_ENGAGE_DATE] = "engage_date",
    [DEAL_POSTCODE] = "postcode",      [DEAL_LOCATION] = "location",
};

const char *hubspot_property(int field)
{
    return field >= 0 && field < DEAL_FIELD_COUNT ? hs_props[field] : NULL;
}

static int hs_field_by_property(const char *prop)
{
    for (int f = 0; f < DEAL_FIELD_COUNT; f++) {
        if (strcmp(hs_props[f], prop) == 0)
            return f;
    }
    return -1;
}

/* ---- small JSON and text helpers ---- */

/* A HubSpot time: epoch ms as number or text, or ISO-8601. 0 if none. */
static int64_t hs_time(const json_t *v)
{
    int64_t ms = 0;

    if (json_is_integer(v))
        return json_integer_value(v);
    if (!json_is_string(v))
        return 0;
    if (provider_parse_int64(json_string_value(v), &ms) == 0)
        return ms;
    if (clock_parse_iso(json_string_value(v), &ms) == 0)
        return ms;
    return 0;
}

/* A value as HubSpot sends it to the canonical form of the field. Dates
 * come as epoch ms (webhooks) or ISO (REST) and become the UTC day. */
fs_result hubspot_value_in(int field, const char *raw, char **out)
{
    char day[32];
    int64_t ms;

    *out = NULL;
    if (!raw || !*raw)
        return FS_OK;
    if (deal_fields[field].type != FIELD_DATE)
        return deal_field_canonical((enum deal_field)field, raw, out);

    if (provider_parse_int64(raw, &ms) != 0 && clock_parse_iso(raw, &ms) != 0)
        return FS_ERR_INVALID;
    clock_format_iso(ms, day);
    day[10] = '\0';
    return deal_field_canonical((enum deal_field)field, day, out);
}

/* A canonical value to what HubSpot takes: "" clears, dates go as the
 * epoch ms of midnight UTC. */
fs_result hubspot_value_out(int field, const char *value, char **out)
{
    char *canon = NULL;
    int64_t ms;
    fs_result result;

    *out = NULL;
    if (!value || !*value) {
        *out = xstrdup("");
        return FS_OK;
    }
    if (deal_fields[field].type != FIELD_DATE) {
        *out = xstrdup(value);
        return FS_OK;
    }
    result = deal_field_canonical((enum deal_field)field, value, &canon);
    if (result != FS_OK)
        return result;
    if (!canon || clock_parse_iso(canon, &ms) != 0)
        result = FS_ERR_INVALID;
    else
        *out = xasprintf("%" PRId64, ms);
    free(canon);
    return result;
}

/* ---- webhook signatures ---- */

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

char *hubspot_uri_for_signature(const char *url)
{
    static const char decoded[] = ":/?@!$'()*,;";
    struct buf b = {0};

    buf_append(&b, "", 0);
    for (const char *p = url; *p; p++) {
        if (*p == '%' && hex_value(p[1]) >= 0 && hex_value(p[2]) >= 0) {
            char c = (char)(hex_value(p[1]) * 16 + hex_value(p[2]));
            if (c != '\0' && strchr(decoded, c)) {
                buf_append(&b, &c, 1);
                p += 2;
                continue;
            }
        }
        buf_append(&b, p, 1);
    }
    return buf_steal(&b);
}

static char *sha256_hex_of(const struct buf *b)
{
    uint8_t mac[CRYPTO_SHA256_LEN];

    crypto_sha256(b->data, b->len, mac);
    return crypto_hex(mac, sizeof(mac));
}

char *hubspot_signature_v1(const char *secret, const char *body, size_t len)
{
    struct buf b = {0};
    char *hex;

    buf_append_str(&b, secret);
    buf_append(&b, body, len);
    hex = sha256_hex_of(&b);
    buf_free(&b);
    return hex;
}

char *hubspot_signature_v2(const char *secret, const char *method,
                           const char *uri, const char *body, size_t len)
{
    struct buf b = {0};
    char *hex;

    buf_append_str(&b, secret);
    buf_append_str(&b, method);
    buf_append_str(&b, uri);
    buf_append(&b, body, len);
    hex = sha256_hex_of(&b);
    buf_free(&b);
    return hex;
}

char *hubspot_signature_v3(const char *secret, const char *method,
                           const char *uri, const char *body, size_t len,
                           const char *timestamp)
{
    uint8_t mac[CRYPTO_SHA256_LEN];
    struct buf b = {0};

    buf_append_str(&b, method);
    buf_append_str(&b, uri);
    buf_append(&b, body, len);
    buf_append_str(&b, timestamp);
    crypto_hmac_sha256(secret, strlen(secret), b.data, b.len, mac);
    buf_free(&b);
    return crypto_base64(mac, sizeof(mac));
}

static const char *req_header(const struct webhook_request *req,
                              const char *name)
{
    return req->header ? req->header(req->header_ctx, name) : NULL;
}

static bool same_text(const char *expected, const char *given)
{
    return crypto_equal(expected, strlen(expected), given, strlen(given));
}

static fs_result hs_verify_v3(const struct connection *conn,
                              const struct webhook_request *req,
                              const char *signature, int64_t now_ms)
{
    const char *ts_text = req_header(req, "X-HubSpot-Request-Timestamp");
    int64_t ts;
    char *uri = NULL;
    char *expected = NULL;
    fs_result result = FS_ERR_AUTH;

    if (!ts_text || provider_parse_int64(ts_text, &ts) != 0 || ts < 0)
        goto out;
    if (now_ms - ts > HUBSPOT_MAX_SKEW_MS || ts - now_ms > HUBSPOT_MAX_SKEW_MS)
        goto out;

    uri = hubspot_uri_for_signature(req->url);
    expected = hubspot_signature_v3(conn->client_secret, req->method, uri,
                                    req->body, req->body_len, ts_text);
    if (same_text(expected, signature))
        result = FS_OK;
out:
    free(uri);
    free(expected);
    return result;
}

static fs_result hs_verify_webhook(const struct connection *conn,
                                   const struct webhook_request *req,
                                   int64_t now_ms)
{
    const char *v3 = req_header(req, "X-HubSpot-Signature-v3");
    const char *sig = req_header(req, "X-HubSpot-Signature");
    const char *version = req_header(req, "X-HubSpot-Signature-Version");
    char *expected = NULL;
    char *given = NULL;
    fs_result result = FS_ERR_AUTH;

    if (!conn->client_secret || !*conn->client_secret || !req->method ||
        !req->url || (!req->body && req->body_len))
        return FS_ERR_AUTH;
    if (v3)
        return hs_verify_v3(conn, req, v3, now_ms);
    if (!sig)
        return FS_ERR_AUTH;

    if (!version || strcmp(version, "v1") == 0)
        expected =
            hubspot_signature_v1(conn->client_secret, req->body, req->body_len);
    else if (strcmp(version, "v2") == 0)
        expected = hubspot_signature_v2(conn->client_secret, req->method,
                                        req->url, req->body, req->body_len);
    else
        goto out;

    /* Hex is compared without regard to case. */
    given = xstrdup(sig);
    for (char *p = given; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    if (same_text(expected, given))
        result = FS_OK;
out:
    free(expected);
    free(given);
    return result;
}

/* ---- webhook deliveries and events ---- */

static const char *hs_event_type(const json_t *event)
{
    const char *type = provider_json_str(event, "subscriptionType");
    return type ? type : provider_json_str(event, "eventType");
}

/* Text of a member for the dedup key; "" when absent. */
static void key_part(struct buf *b, const json_t *event, const char *name,
                     bool last)
{
    char *text = provider_json_text(json_object_get(event, name));

    if (text)
        buf_append_str(b, text);
    if (!last)
        buf_append(b, ":", 1);
    free(text);
}

static fs_result hs_split_item(const json_t *event, struct webhook_item *item)
{
    const char *type = hs_event_type(event);
    struct buf key = {0};

    item->account_id = provider_json_text(json_object_get(event, "portalId"));
    if (!item->account_id || !*item->account_id)
        return FS_ERR_INVALID;
    item->app_id = provider_json_text(json_object_get(event, "appId"));
    if (!item->app_id)
        item->app_id = xstrdup("");

    /* The event's time leads, so keys of events arriving together sit
     * together in the inbox's unique index and a commit writes few of its
     * pages. */
    key_part(&key, event, "occurredAt", false);
    buf_append_str(&key, item->account_id);
    buf_append(&key, ":", 1);
    buf_append_str(&key, type ? type : "");
    buf_append(&key, ":", 1);
    key_part(&key, event, "objectId", false);
    key_part(&key, event, "propertyName", false);
    key_part(&key, event, "eventId", true);
    item->dedup_key = buf_steal(&key);

    item->body = json_dumps(event, JSON_COMPACT | JSON_SORT_KEYS);
    if (!item->body)
        abort();
    return FS_OK;
}

static fs_result hs_split_webhook(const struct webhook_request *req,
                                  struct webhook_item **items, size_t *count)
{
    json_t *root = NULL;
    struct webhook_item *out = NULL;
    size_t n = 0;
    fs_result result = FS_ERR_INVALID;

    *items = NULL;
    *count = 0;
    root = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_array(root) || json_array_size(root) == 0)
        goto out;
    n = json_array_size(root);
    if (n > HUBSPOT_MAX_EVENTS) {
        result = FS_ERR_TOO_LARGE;
        goto out;
    }

    out = xcalloc(n, sizeof(*out));
    for (size_t i = 0; i < n; i++) {
        const json_t *event = json_array_get(root, i);
        if (!json_is_object(event)) {
            result = FS_ERR_INVALID;
            goto out;
        }
        result = hs_split_item(event, &out[i]);
        if (result != FS_OK)
            goto out;
    }
    *items = out;
    *count = n;
    out = NULL;
    result = FS_OK;
out:
    webhook_items_free(out, n);
    json_decref(root);
    return result;
}

static void set_ignored(struct crm_event *ev, const char *type,
                        const char *detail)
{
    ev->kind = CRM_EVENT_IGNORED;
    free(ev->ignored_type);
    if (detail)
        ev->ignored_type = xasprintf("%s:%s", type, detail);
    else
        ev->ignored_type = xstrdup(type);
}

static fs_result hs_parse_merge(const json_t *event, struct crm_event *ev)
{
    const json_t *merged = json_object_get(event, "mergedObjectIds");
    size_t i;
    const json_t *id;

    ev->kind = CRM_EVENT_MERGE;
    ev->new_id = provider_json_id(json_object_get(event, "newObjectId"));
    if (!ev->new_id)
        ev->new_id =
            provider_json_id(json_object_get(event, "primaryObjectId"));
    if (!ev->new_id || !json_is_array(merged))
        return FS_ERR_INVALID;

    ev->merged_ids = xcalloc(json_array_size(merged) + 1, sizeof(char *));
    json_array_foreach(merged, i, id)
    {
        char *text = provider_json_id(id);
        if (!text)
            return FS_ERR_INVALID;
        ev->merged_ids[ev->merged_count++] = text;
    }
    return FS_OK;
}

static fs_result hs_parse_change(const json_t *event, const char *type,
                                 struct crm_event *ev)
{
    const char *prop = provider_json_str(event, "propertyName");
    const json_t *raw = json_object_get(event, "propertyValue");
    char *text = NULL;
    int field;

    if (!prop)
        return FS_ERR_INVALID;
    field = hs_field_by_property(prop);
    if (field < 0) {
        set_ignored(ev, type, prop);
        return FS_OK;
    }

    text = provider_json_text(raw);
    if (!text && json_is_real(raw))
        text = xasprintf("%.17g", json_real_value(raw));
    ev->kind = CRM_EVENT_CHANGE;
    ev->present[field] = true;
    if (hubspot_value_in(field, text, &ev->values[field]) != FS_OK) {
        ev->present[field] = false;
        char *detail = xasprintf("%s:invalid_value", prop);
        set_ignored(ev, type, detail);
        free(detail);
    }
    free(text);
    return FS_OK;
}

/* The deal action of a legacy "deal.x" or generic "object.x" type, or
 * NULL when the event is not about deals. */
static const char *hs_deal_action(const json_t *event, const char *type)
{
    if (strncmp(type, "deal.", 5) == 0)
        return type + 5;
    if (strncmp(type, "object.", 7) == 0) {
        const char *type_id = provider_json_str(event, "objectTypeId");
        if (type_id && strcmp(type_id, HS_DEAL_TYPE_ID) == 0)
            return type + 7;
    }
    return NULL;
}

/* Who HubSpot says made a change: an integration write with our app id as
 * its source is our own. */
static enum change_actor hs_actor(const struct connection *conn,
                                  const char *source, const char *source_id)
{
    if (!source)
        return ACTOR_UNKNOWN;
    bool ours = strcmp(source, "INTEGRATION") == 0 && source_id &&
                conn->app_id && *conn->app_id &&
                strcmp(source_id, conn->app_id) == 0;
    return ours ? ACTOR_US : ACTOR_OTHER;
}

static fs_result hs_parse_deal_event(const struct connection *conn,
                                     const json_t *event, const char *type,
                                     const char *action, struct crm_event *ev)
{
    const json_t *occurred = json_object_get(event, "occurredAt");
    const char *source = provider_json_str(event, "changeSource");
    char *source_id = provider_json_text(json_object_get(event, "sourceId"));
    fs_result result = FS_ERR_INVALID;

    ev->crm_id = provider_json_text(json_object_get(event, "objectId"));
    if (!ev->crm_id || !*ev->crm_id)
        goto out;
    ev->time = hs_time(occurred);
    if (!occurred || ev->time <= 0)
        goto out;
    ev->actor = hs_actor(conn, source ? source : "", source_id);

    result = FS_OK;
    if (strcmp(action, "creation") == 0)
        ev->kind = CRM_EVENT_CREATE;
    else if (strcmp(action, "deletion") == 0)
        ev->kind = CRM_EVENT_DELETE;
    else if (strcmp(action, "restore") == 0)
        ev->kind = CRM_EVENT_RESTORE;
    else if (strcmp(action, "merge") == 0)
        result = hs_parse_merge(event, ev);
    else if (strcmp(action, "propertyChange") == 0)
        result = hs_parse_change(event, type, ev);
    else
        set_ignored(ev, type, NULL);
out:
    free(source_id);
    return result;
}

static fs_result hs_parse_event(const struct connection *conn, const char *json,
                                struct crm_event *out)
{
    json_t *event = json_loads(json, 0, NULL);
    const char *type;
    const char *action;
    fs_result result = FS_ERR_INVALID;

    memset(out, 0, sizeof(*out));
    if (!json_is_object(event))
        goto out;
    type = hs_event_type(event);
    if (!type)
        goto out;

    action = hs_deal_action(event, type);
    if (!action) {
        set_ignored(out, type, NULL);
        out->crm_id = provider_json_text(json_object_get(event, "objectId"));
        out->time = hs_time(json_object_get(event, "occurredAt"));
        result = FS_OK;
        goto out;
    }
    result = hs_parse_deal_event(conn, event, type, action, out);
out:
    if (result != FS_OK)
        crm_event_clear(out);
    json_decref(event);
    return result;
}

/* ---- REST calls ---- */

struct hs_reply {
    long status;
    json_t *json; /* the parsed body, or NULL */
};

static void hs_reply_clear(struct hs_reply *r)
{
    json_decref(r->json);
    r->json = NULL;
    r->status = 0;
}

/* The result for a status the call itself did not turn into one: 414
 * too large, 423 busy, 477 unavailable, the rest as for any CRM. */
static fs_result hs_status_result(long status)
{
    switch (status) {
    case 414:
        return FS_ERR_TOO_LARGE;
    case 423:
        return FS_ERR_BUSY;
    case 477:
        return FS_ERR_UNAVAILABLE;
    default:
        return provider_status_result(status);
    }
}

enum hs_limit {
    HS_LIMIT_WINDOW,   /* TEN_SECONDLY_ROLLING, or unnamed */
    HS_LIMIT_DAILY,    /* DAILY: stop until the day resets */
    HS_LIMIT_SECONDLY, /* the search endpoint's own 5 per second */
};

static enum hs_limit hs_limit_of(const struct http_client_response *resp)
{
    json_t *body = json_loadb(resp->body.data, resp->body.len, 0, NULL);
    const char *policy = provider_json_str(body, "policyName");
    const char *message = provider_json_str(body, "message");
    enum hs_limit limit = HS_LIMIT_WINDOW;

    if (policy && strcmp(policy, "DAILY") == 0)
        limit = HS_LIMIT_DAILY;
    else if (policy && strcmp(policy, "SECONDLY") == 0)
        limit = HS_LIMIT_SECONDLY;
    else if (!policy && message && strstr(message, "secondly limit") &&
             !strstr(message, "ten_secondly"))
        limit = HS_LIMIT_SECONDLY;
    json_decref(body);
    return limit;
}

/* After a 429: pause the connection for the rest of the window (HubSpot
 * sends no Retry-After for its API; a full window is the safe bound), or
 * until the day resets. */
static void hs_pause_for(struct provider_session *s,
                         const struct http_client_response *resp,
                         enum hs_limit limit)
{
    int64_t now = clock_now_ms();
    int window = provider_header_int(
        resp, "X-HubSpot-RateLimit-Interval-Milliseconds", HS_WINDOW_MS);
    int retry_after = provider_header_int(resp, "Retry-After", -1);

    if (!s->governor)
        return;
    if (limit == HS_LIMIT_DAILY) {
        rate_governor_pause_daily(s->governor, now);
        log_warn("provider=hubspot connection=%" PRId64
                 " rate_limit=daily paused_until=midnight_utc",
                 s->conn->id);
        return;
    }
    if (window <= 0 || window > HS_WINDOW_MS * 6)
        window = HS_WINDOW_MS;
    if (retry_after > 0 && retry_after <= 3600)
        window = retry_after * 1000;
    rate_governor_pause(s->governor, now + window);
    log_warn("provider=hubspot connection=%" PRId64
             " rate_limit=window pause_ms=%d",
             s->conn->id, window);
}

static void hs_observe(struct provider_session *s,
                       const struct http_client_response *resp)
{
    int window = provider_header_int(resp, "X-HubSpot-RateLimit-Remaining", -1);
    int daily =
        provider_header_int(resp, "X-HubSpot-RateLimit-Daily-Remaining", -1);

    if (s->governor && (window >= 0 || daily >= 0))
        rate_governor_observe(s->governor, window, daily, clock_now_ms());
}

/* One call to the HubSpot API with the connection's token. A search call
 * refused by the search endpoint's own per-second limit is retried a few
 * times after a second. Any answer but 429, 5xx and timeouts comes back
 * as FS_OK with its status; the body is parsed when it is JSON. */
static const struct call_cost search_cost = {CALL_SEARCH, 1};

static fs_result hs_call(struct provider_session *s, const char *method,
                         const char *path, const json_t *body, bool search,
                         struct hs_reply *reply)
{
    char *token = NULL;
    struct http_client_response resp = {0};

    memset(reply, 0, sizeof(*reply));
    fs_result result = provider_access_token(s, &token);
    if (result != FS_OK)
        return result;

    char *url = provider_url(s->conn, path);
    char *auth = xasprintf("Authorization: Bearer %s", token);
    const char *headers[] = {auth, "Content-Type: application/json",
                             "Accept: application/json", NULL};
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;

    for (int attempt = 0;; attempt++) {
        result =
            provider_call_send(s, search ? &search_cost : NULL, method, url,
                               headers, text, text ? strlen(text) : 0, &resp);
        hs_observe(s, &resp);
        if (result != FS_ERR_RATE_LIMITED || resp.status != 429)
            break;

        enum hs_limit limit = hs_limit_of(&resp);
        if (limit == HS_LIMIT_SECONDLY && search &&
            attempt < HS_SEARCH_RETRIES) {
            http_client_response_free(&resp);
            clock_sleep_ms(HS_SEARCH_RETRY_MS);
            continue;
        }
        if (limit != HS_LIMIT_SECONDLY)
            hs_pause_for(s, &resp, limit);
        break;
    }
    if (result != FS_OK)
        goto out;

    reply->status = resp.status;
    if (resp.status == 401)
        provider_token_rejected(s, token);
    if (resp.body.len > 0)
        reply->json = json_loadb(resp.body.data, resp.body.len, 0, NULL);
    if (!reply->json && resp.body.len > 0 && reply->status < 300)
        result = FS_ERR_REMOTE;
out:
    http_client_response_free(&resp);
    free(text);
    free(auth);
    free(token);
    free(url);
    return result;
}

/* HubSpot's token endpoint takes the app's client id and secret (the one
 * that signs webhooks) in the form; access tokens live 30 minutes and the
 * refresh token is kept (HubSpot does not rotate it). */
static fs_result hs_oauth_token(struct provider_session *s,
                                const struct oauth_grant *grant,
                                struct oauth_tokens *out, char **error)
{
    char *url = provider_url(s->conn, HUBSPOT_TOKEN_PATH);
    fs_result r = oauth_token_request(
        s, url, OAUTH_CLIENT_IN_BODY, s->conn->oauth_client_id,
        s->conn->client_secret, grant, out, error);
    free(url);
    return r;
}

/* The CRM's error message, or a generic one. */
static char *hs_error_message(const json_t *body, long status)
{
    const char *message = provider_json_str(body, "message");

    if (message)
        return xstrdup(message);
    return xasprintf("HubSpot answered %ld", status);
}

/* ---- deals as HubSpot returns them ---- */

static void hs_append_properties(struct buf *b)
{
    for (int f = 0; f < DEAL_FIELD_COUNT; f++) {
        buf_append_str(b, hs_props[f]);
        buf_append(b, ",", 1);
    }
    buf_append_str(b, HS_OUR_ID_PROP "," HS_MODIFIED_PROP);
}

static json_t *hs_properties_array(bool mapped_only)
{
    json_t *a = json_array();

    for (int f = 0; f < DEAL_FIELD_COUNT; f++)
        json_array_append_new(a, json_string(hs_props[f]));
    if (!mapped_only) {
        json_array_append_new(a, json_string(HS_OUR_ID_PROP));
        json_array_append_new(a, json_string(HS_MODIFIED_PROP));
    }
    return a;
}

/* What a property's history says: its newest entry, and the newest one
 * written by someone other than us (NULL when none). */
struct hs_history {
    const json_t *newest;
    int64_t newest_time;
    const json_t *other;
    int64_t other_time;
};

static enum change_actor hs_entry_actor(const struct connection *conn,
                                        const json_t *entry)
{
    char *source_id = provider_json_text(json_object_get(entry, "sourceId"));
    enum change_actor actor =
        hs_actor(conn, provider_json_str(entry, "sourceType"), source_id);
    free(source_id);
    return actor;
}

static void hs_scan_history(const struct connection *conn,
                            const json_t *history, struct hs_history *h)
{
    size_t i;
    const json_t *entry;

    memset(h, 0, sizeof(*h));
    json_array_foreach(history, i, entry)
    {
        int64_t t = hs_time(json_object_get(entry, "timestamp"));
        if (t > h->newest_time) {
            h->newest_time = t;
            h->newest = entry;
        }
        if (t > h->other_time && hs_entry_actor(conn, entry) == ACTOR_OTHER) {
            h->other_time = t;
            h->other = entry;
        }
    }
}

/* Fills a deal from a SimplePublicObject. A value the canonical form
 * rejects is left empty with time 0, so it never wins a merge. */
static fs_result hs_deal_from_json(const struct connection *conn,
                                   const json_t *obj, struct crm_deal *d)
{
    const json_t *props = json_object_get(obj, "properties");
    const json_t *history = json_object_get(obj, "propertiesWithHistory");
    const char *our_id;

    memset(d, 0, sizeof(*d));
    d->crm_id = provider_json_id(json_object_get(obj, "id"));
    if (!d->crm_id)
        return FS_ERR_INVALID;
    our_id = provider_json_str(props, HS_OUR_ID_PROP);
    if (our_id && *our_id)
        d->our_id = xstrdup(our_id);
    d->modified = hs_time(json_object_get(props, HS_MODIFIED_PROP));
    if (d->modified == 0)
        d->modified = hs_time(json_object_get(obj, "updatedAt"));
    d->archived = json_is_true(json_object_get(obj, "archived"));
    int64_t created = hs_time(json_object_get(obj, "createdAt"));

    for (int f = 0; f < DEAL_FIELD_COUNT; f++) {
        const char *raw = provider_json_str(props, hs_props[f]);
        struct hs_history h;
        hs_scan_history(conn, json_object_get(history, hs_props[f]), &h);

        d->times[f] = h.newest_time > 0 ? h.newest_time : d->modified;
        /* Read with history and none for an empty property: it was never
         * written, so it is as old as the deal. The deal's modification
         * time would make the empty value newer than a local edit not
         * pushed yet, and undo it. */
        if (history && h.newest_time == 0 && (!raw || !*raw))
            d->times[f] = created > 0 ? created : 1;
        d->actors[f] =
            h.newest ? hs_entry_actor(conn, h.newest) : ACTOR_UNKNOWN;
        if (hubspot_value_in(f, raw, &d->values[f]) != FS_OK) {
            log_info("provider=hubspot deal=%s property=%s value_rejected=1",
                     d->crm_id, hs_props[f]);
            d->values[f] = NULL;
            d->times[f] = 0;
        }
        /* A CRM edit our push may have overwritten since. */
        if (h.other && h.other != h.newest &&
            hubspot_value_in(f, provider_json_str(h.other, "value"),
                             &d->others[f].value) == FS_OK) {
            d->others[f].time = h.other_time;
            d->others[f].present = true;
        }
    }
    return FS_OK;
}

/* Adds every well-formed object of results[] to the list. */
static void hs_parse_results(const struct connection *conn, const json_t *body,
                             struct crm_deal_list *l)
{
    size_t i;
    const json_t *obj;

    json_array_foreach(json_object_get(body, "results"), i, obj)
    {
        if (hs_deal_from_json(conn, obj, crm_deal_list_add(l)) != FS_OK)
            crm_deal_list_drop_last(l);
    }
}

static char *hs_next_after(const json_t *body)
{
    const json_t *next =
        json_object_get(json_object_get(body, "paging"), "next");

    return provider_json_id(json_object_get(next, "after"));
}

/* ---- list, search, read ---- */

static fs_result hs_list_deals(struct provider_session *s,
                               struct crm_cursor *cursor, struct crm_deal **out,
                               size_t *count)
{
    struct buf path = {0};
    struct hs_reply reply = {0};
    struct crm_deal_list list = {0};
    fs_result result = FS_OK;

    *out = NULL;
    *count = 0;
    if (cursor->done)
        return FS_OK;

    buf_appendf(&path,
                "/crm/v3/objects/deals?limit=%d&properties=", HS_LIST_LIMIT);
    hs_append_properties(&path);
    if (cursor->after) {
        char *after = provider_url_escape(cursor->after);
        buf_appendf(&path, "&after=%s", after);
        free(after);
    }
    result = hs_call(s, "GET", path.data, NULL, false, &reply);
    if (result != FS_OK)
        goto out;
    result = hs_status_result(reply.status);
    if (result != FS_OK)
        goto out;

    hs_parse_results(s->conn, reply.json, &list);
    free(cursor->after);
    cursor->after = hs_next_after(reply.json);
    cursor->done = cursor->after == NULL;
    crm_deal_list_give(&list, out, count);
out:
    crm_deals_free(list.items, list.count);
    hs_reply_clear(&reply);
    buf_free(&path);
    return result;
}

static json_t *hs_search_body(int64_t mark, const char *after)
{
    char value[32];
    json_t *body;

    snprintf(value, sizeof(value), "%" PRId64, mark);
    body =
        json_pack("{s:[{s:[{s:s, s:s, s:s}]}], s:[{s:s, s:s}], s:o, s:i}",
                  "filterGroups", "filters", "propertyName", HS_MODIFIED_PROP,
                  "operator", "GTE", "value", value, "sorts", "propertyName",
                  HS_MODIFIED_PROP, "direction", "ASCENDING", "properties",
                  hs_properties_array(false), "limit", HS_SEARCH_LIMIT);
    if (!body)
        abort();
    if (after)
        json_object_set_new(body, "after", json_string(after));
    return body;
}

static bool cursor_seen(const struct crm_cursor *c, const char *id)
{
    for (size_t i = 0; i < c->seen_count; i++) {
        if (strcmp(c->seen_at_mark[i], id) == 0)
            return true;
    }
    return false;
}

static void cursor_forget_seen(struct crm_cursor *c)
{
    for (size_t i = 0; i < c->seen_count; i++)
        free(c->seen_at_mark[i]);
    free(c->seen_at_mark);
    c->seen_at_mark = NULL;
    c->seen_count = 0;
}

/* Moves the watermark over one deal read by a search. Returns false when
 * the deal was already read at exactly the watermark (a restarted query
 * sees those again). */
static bool cursor_advance(struct crm_cursor *c, const struct crm_deal *d)
{
    if (d->modified <= 0 || d->modified < c->watermark)
        return true;
    if (d->modified > c->watermark) {
        cursor_forget_seen(c);
        c->watermark = d->modified;
    } else if (cursor_seen(c, d->crm_id)) {
        return false;
    }
    c->seen_at_mark =
        xrealloc(c->seen_at_mark, (c->seen_count + 1) * sizeof(char *));
    c->seen_at_mark[c->seen_count++] = xstrdup(d->crm_id);
    return true;
}

/* The search paging token is "<query watermark>/<HubSpot after>": one
 * query keeps its filter while the cursor's watermark moves on. */
static void cursor_query(const struct crm_cursor *c, int64_t *mark,
                         const char **after)
{
    const char *slash = c->after ? strchr(c->after, '/') : NULL;
    char *head = NULL;

    *mark = c->watermark;
    *after = NULL;
    if (!slash)
        return;
    head = xstrndup(c->after, (size_t)(slash - c->after));
    if (provider_parse_int64(head, mark) == 0)
        *after = slash + 1;
    else
        *mark = c->watermark;
    free(head);
}

/* Where the next page goes: nowhere when this page was short; a fresh
 * query from the watermark when the page moved it (a deal changed while
 * we page jumps to the end of the order and shifts every offset after
 * it, so paging on by offset would skip a deal) or before the result
 * cap; else on by offset through deals sharing the query's time. */
static void cursor_next(struct crm_cursor *c, int64_t mark, size_t got,
                        char *next_after)
{
    int64_t offset = -1;

    free(c->after);
    c->after = NULL;
    if (got < HS_SEARCH_LIMIT || !next_after) {
        c->done = true;
    } else if (c->watermark > mark) {
        /* Restart from the watermark; seen_at_mark skips repeats. */
    } else if (provider_parse_int64(next_after, &offset) == 0 &&
               offset + HS_SEARCH_LIMIT > HS_SEARCH_CAP) {
        /* Restart from the watermark; seen_at_mark skips repeats. */
    } else {
        c->after = xasprintf("%" PRId64 "/%s", mark, next_after);
    }
    free(next_after);
}

static fs_result hs_changed_since(struct provider_session *s,
                                  struct crm_cursor *cursor,
                                  struct crm_deal **out, size_t *count)
{
    struct hs_reply reply = {0};
    struct crm_deal_list list = {0};
    json_t *body = NULL;
    int64_t mark;
    const char *after;
    fs_result result = FS_OK;

    *out = NULL;
    *count = 0;
    if (cursor->done)
        return FS_OK;

    cursor_query(cursor, &mark, &after);
    body = hs_search_body(mark, after);
    result =
        hs_call(s, "POST", "/crm/v3/objects/deals/search", body, true, &reply);
    if (result != FS_OK)
        goto out;
    if (reply.status == 400 && after) {
        /* Paged past what the search allows: go on from the watermark. */
        free(cursor->after);
        cursor->after = NULL;
        goto out;
    }
    result = hs_status_result(reply.status);
    if (result != FS_OK)
        goto out;

    hs_parse_results(s->conn, reply.json, &list);
    size_t kept = 0;
    for (size_t i = 0; i < list.count; i++) {
        if (cursor_advance(cursor, &list.items[i])) {
            list.items[kept++] = list.items[i];
            continue;
        }
        crm_deal_clear(&list.items[i]);
    }
    size_t got = json_array_size(json_object_get(reply.json, "results"));
    list.count = kept;
    cursor_next(cursor, mark, got, hs_next_after(reply.json));
    crm_deal_list_give(&list, out, count);
out:
    crm_deals_free(list.items, list.count);
    json_decref(body);
    hs_reply_clear(&reply);
    return result;
}

/* Ids the CRM reported as not found in a batch answer. */
static void hs_add_missing(const json_t *body, struct crm_deal_list *l)
{
    size_t i, j;
    const json_t *err;
    const json_t *id;

    json_array_foreach(json_object_get(body, "errors"), i, err)
    {
        const char *category = provider_json_str(err, "category");
        const json_t *ids =
            json_object_get(json_object_get(err, "context"), "ids");
        if (!category || strcmp(category, "OBJECT_NOT_FOUND") != 0)
            continue;
        json_array_foreach(ids, j, id)
        {
            char *text = provider_json_id(id);
            if (!text)
                continue;
            struct crm_deal *d = crm_deal_list_add(l);
            d->crm_id = text;
            d->archived = true;
        }
    }
}

static fs_result hs_read_chunk(struct provider_session *s,
                               const char *const *ids, size_t n,
                               struct crm_deal_list *l)
{
    json_t *inputs = json_array();
    json_t *body = NULL;
    struct hs_reply reply = {0};
    fs_result result;

    for (size_t i = 0; i < n; i++)
        json_array_append_new(inputs, json_pack("{s:s}", "id", ids[i]));
    body = json_pack("{s:o, s:o, s:o}", "inputs", inputs, "properties",
                     hs_properties_array(false), "propertiesWithHistory",
                     hs_properties_array(true));
    if (!body)
        abort();
    result = hs_call(s, "POST", "/crm/v3/objects/deals/batch/read", body, false,
                     &reply);
    if (result != FS_OK)
        goto out;

    if (reply.status == 404) {
        for (size_t i = 0; i < n; i++) {
            struct crm_deal *d = crm_deal_list_add(l);
            d->crm_id = xstrdup(ids[i]);
            d->archived = true;
        }
        goto out;
    }
    result = hs_status_result(reply.status);
    if (result != FS_OK)
        goto out;
    hs_parse_results(s->conn, reply.json, l);
    hs_add_missing(reply.json, l);
out:
    json_decref(body);
    hs_reply_clear(&reply);
    return result;
}

static fs_result hs_read_deals(struct provider_session *s,
                               const char *const *crm_ids, size_t n,
                               struct crm_deal **out, size_t *count)
{
    struct crm_deal_list list = {0};
    fs_result result = FS_OK;

    *out = NULL;
    *count = 0;
    for (size_t i = 0; i < n && result == FS_OK; i += HS_READ_BATCH) {
        size_t chunk = n - i < HS_READ_BATCH ? n - i : HS_READ_BATCH;
        result = hs_read_chunk(s, crm_ids + i, chunk, &list);
    }
    if (result == FS_OK)
        crm_deal_list_give(&list, out, count);
    crm_deals_free(list.items, list.count);
    return result;
}

/* ---- writes ---- */

/* The properties object of one write; FS_ERR_INVALID for a value HubSpot
 * could not take (a malformed date). */
static fs_result hs_write_properties(const struct crm_write *w, bool create,
                                     json_t **out)
{
    json_t *props = json_object();

    *out = NULL;
    for (int f = 0; f < DEAL_FIELD_COUNT; f++) {
        char *value = NULL;
        if (!w->present[f])
            continue;
        if (hubspot_value_out(f, w->values[f], &value) != FS_OK) {
            json_decref(props);
            return FS_ERR_INVALID;
        }
        json_object_set_new(props, hs_props[f], json_string(value));
        free(value);
    }
    if (create && w->our_id)
        json_object_set_new(props, HS_OUR_ID_PROP, json_string(w->our_id));
    *out = props;
    return FS_OK;
}

static int64_t hs_object_time(const json_t *obj)
{
    int64_t t = hs_time(
        json_object_get(json_object_get(obj, "properties"), HS_MODIFIED_PROP));
    return t ? t : hs_time(json_object_get(obj, "updatedAt"));
}

static fs_result hs_category_result(const json_t *err)
{
    const char *category = provider_json_str(err, "category");

    if (!category)
        return FS_ERR_REMOTE;
    if (strcmp(category, "OBJECT_NOT_FOUND") == 0)
        return FS_ERR_NOT_FOUND;
    if (strcmp(category, "VALIDATION_ERROR") == 0)
        return FS_ERR_INVALID;
    if (strcmp(category, "CONFLICT") == 0)
        return FS_ERR_CONFLICT;
    if (strcmp(category, "RATE_LIMITS") == 0)
        return FS_ERR_RATE_LIMITED;
    return FS_ERR_REMOTE;
}

/* Marks flags[k] for every write of the batch an error's context names,
 * by trace id (our id) or CRM id. Returns how many it named. */
static size_t hs_error_targets(const json_t *err,
                               const struct crm_write *writes,
                               const size_t *idx, size_t n, bool *flags)
{
    const json_t *context = json_object_get(err, "context");
    static const char *const keys[] = {"objectWriteTraceId", "ids", "id"};
    size_t named = 0;

    for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
        const json_t *list = json_object_get(context, keys[k]);
        size_t i;
        const json_t *v;

        json_array_foreach(list, i, v)
        {
            char *text = provider_json_text(v);
            for (size_t j = 0; text && j < n; j++) {
                const struct crm_write *w = &writes[idx[j]];
                const char *mine = k == 0 ? w->our_id : w->crm_id;
                if (mine && strcmp(mine, text) == 0 && !flags[j]) {
                    flags[j] = true;
                    named++;
                }
            }
            free(text);
        }
    }
    return named;
}

/* Applies a 200/207 batch answer: results[] succeeded, errors[] name
 * the writes that failed; a write named nowhere is taken as written. */
static void hs_apply_batch_answer(const json_t *body,
                                  const struct crm_write *writes,
                                  const size_t *idx, size_t n,
                                  struct crm_write_result *results)
{
    bool *failed = xcalloc(n ? n : 1, sizeof(bool));
    size_t i;
    const json_t *item;

    for (size_t j = 0; j < n; j++)
        provider_result_ok(&results[idx[j]], writes[idx[j]].crm_id, 0);

    json_array_foreach(json_object_get(body, "results"), i, item)
    {
        char *id = provider_json_id(json_object_get(item, "id"));
        const char *trace = provider_json_str(item, "objectWriteTraceId");
        for (size_t j = 0; id && j < n; j++) {
            const struct crm_write *w = &writes[idx[j]];
            if (strcmp(w->crm_id, id) == 0 ||
                (trace && w->our_id && strcmp(w->our_id, trace) == 0))
                provider_result_ok(&results[idx[j]], id, hs_object_time(item));
        }
        free(id);
    }

    json_array_foreach(json_object_get(body, "errors"), i, item)
    {
        bool *named = xcalloc(n ? n : 1, sizeof(bool));
        hs_error_targets(item, writes, idx, n, named);
        for (size_t j = 0; j < n; j++) {
            if (named[j] && !failed[j]) {
                failed[j] = true;
                provider_result_fail(&results[idx[j]], hs_category_result(item),
                                     provider_json_str(item, "message"));
            }
        }
        free(named);
    }
    free(failed);
}

static json_t *hs_update_body(const struct crm_write *writes, const size_t *idx,
                              size_t n, struct crm_write_result *results,
                              size_t *sent)
{
    json_t *inputs = json_array();

    *sent = 0;
    for (size_t j = 0; j < n; j++) {
        const struct crm_write *w = &writes[idx[j]];
        json_t *props = NULL;
        if (hs_write_properties(w, false, &props) != FS_OK) {
            provider_result_fail(&results[idx[j]], FS_ERR_INVALID,
                                 "a value is not in a form HubSpot takes");
            continue;
        }
        json_t *input =
            json_pack("{s:s, s:o}", "id", w->crm_id, "properties", props);
        if (w->our_id)
            json_object_set_new(input, "objectWriteTraceId",
                                json_string(w->our_id));
        json_array_append_new(inputs, input);
        (*sent)++;
    }
    return json_pack("{s:o}", "inputs", inputs);
}

/* Sends the updates idx[0..n). A 400 that names some writes fails those
 * and sends the rest once more; one that names none fails them all. */
static fs_result hs_update_batch(struct provider_session *s,
                                 const struct crm_write *writes,
                                 const size_t *idx, size_t n,
                                 struct crm_write_result *results,
                                 bool may_resend)
{
    struct hs_reply reply = {0};
    size_t sent = 0;
    json_t *body = hs_update_body(writes, idx, n, results, &sent);
    size_t *ok_idx = xcalloc(n ? n : 1, sizeof(size_t));
    size_t ok_n = 0;
    bool *named = NULL;
    fs_result result = FS_OK;

    for (size_t j = 0; j < n; j++) {
        if (results[idx[j]].error == NULL)
            ok_idx[ok_n++] = idx[j];
    }
    if (sent == 0)
        goto out;

    result = hs_call(s, "POST", "/crm/v3/objects/deals/batch/update", body,
                     false, &reply);
    if (result != FS_OK)
        goto out;

    if (reply.status == 200 || reply.status == 207) {
        hs_apply_batch_answer(reply.json, writes, ok_idx, ok_n, results);
        goto out;
    }

    fs_result code = hs_status_result(reply.status);
    if (code == FS_ERR_AUTH || code == FS_ERR_FORBIDDEN ||
        code == FS_ERR_BUSY || code == FS_ERR_REMOTE) {
        result = code;
        goto out;
    }
    char *message = hs_error_message(reply.json, reply.status);
    size_t named_n = 0;
    size_t i;
    const json_t *err;
    named = xcalloc(ok_n ? ok_n : 1, sizeof(bool));
    named_n += hs_error_targets(reply.json, writes, ok_idx, ok_n, named);
    json_array_foreach(json_object_get(reply.json, "errors"), i, err) named_n +=
        hs_error_targets(err, writes, ok_idx, ok_n, named);

    if (named_n == 0 || named_n == ok_n || !may_resend) {
        for (size_t j = 0; j < ok_n; j++)
            provider_result_fail(&results[ok_idx[j]], code, message);
    } else {
        size_t rest_n = 0;
        for (size_t j = 0; j < ok_n; j++) {
            if (named[j])
                provider_result_fail(&results[ok_idx[j]], code, message);
            else
                ok_idx[rest_n++] = ok_idx[j];
        }
        result = hs_update_batch(s, writes, ok_idx, rest_n, results, false);
    }
    free(message);
out:
    free(named);
    free(ok_idx);
    json_decref(body);
    hs_reply_clear(&reply);
    return result;
}

static fs_result hs_find_by_our_id(struct provider_session *s,
                                   const char *our_id, char **crm_id)
{
    char *esc = provider_url_escape(our_id);
    char *path = xasprintf("/crm/v3/objects/deals/%s?idProperty=" HS_OUR_ID_PROP
                           "&properties=" HS_OUR_ID_PROP,
                           esc);
    struct hs_reply reply = {0};
    fs_result result;

    *crm_id = NULL;
    result = hs_call(s, "GET", path, NULL, false, &reply);
    if (result != FS_OK)
        goto out;
    result = hs_status_result(reply.status);
    if (result != FS_OK)
        goto out;
    *crm_id = provider_json_id(json_object_get(reply.json, "id"));
    if (!*crm_id)
        result = FS_ERR_REMOTE;
out:
    hs_reply_clear(&reply);
    free(path);
    free(esc);
    return result;
}

/* A create answered 409: the deal exists from an earlier try. Find it by
 * our id and bring its values up to this write. */
static fs_result hs_adopt_existing(struct provider_session *s,
                                   const struct crm_write *w,
                                   struct crm_write_result *r)
{
    char *crm_id = NULL;
    char *path = NULL;
    json_t *props = NULL;
    json_t *body = NULL;
    struct hs_reply reply = {0};
    fs_result result = hs_find_by_our_id(s, w->our_id, &crm_id);

    if (result == FS_ERR_NOT_FOUND) {
        provider_result_fail(r, FS_ERR_CONFLICT,
                             "HubSpot refused the create as a conflict");
        result = FS_OK;
        goto out;
    }
    if (result != FS_OK)
        goto out;

    hs_write_properties(w, false, &props);
    body = json_pack("{s:o}", "properties", props);
    path = xasprintf("/crm/v3/objects/deals/%s", crm_id);
    result = hs_call(s, "PATCH", path, body, false, &reply);
    if (result != FS_OK)
        goto out;
    if (reply.status >= 200 && reply.status < 300) {
        provider_result_ok(r, crm_id, hs_object_time(reply.json));
    } else {
        char *message = hs_error_message(reply.json, reply.status);
        provider_result_fail(r, hs_status_result(reply.status), message);
        free(message);
    }
out:
    json_decref(body);
    hs_reply_clear(&reply);
    free(path);
    free(crm_id);
    return result;
}

static fs_result hs_create_one(struct provider_session *s,
                               const struct crm_write *w,
                               struct crm_write_result *r)
{
    json_t *props = NULL;
    json_t *body = NULL;
    struct hs_reply reply = {0};
    fs_result result = FS_OK;

    if (!w->our_id) {
        provider_result_fail(r, FS_ERR_INVALID, "a create needs our record id");
        return FS_OK;
    }
    if (hs_write_properties(w, true, &props) != FS_OK) {
        provider_result_fail(r, FS_ERR_INVALID,
                             "a value is not in a form HubSpot takes");
        return FS_OK;
    }
    body = json_pack("{s:o}", "properties", props);
    result = hs_call(s, "POST", "/crm/v3/objects/deals", body, false, &reply);
    if (result != FS_OK)
        goto out;

    if (reply.status == 200 || reply.status == 201) {
        char *id = provider_json_id(json_object_get(reply.json, "id"));
        if (id)
            provider_result_ok(r, id, hs_object_time(reply.json));
        else
            provider_result_fail(r, FS_ERR_REMOTE,
                                 "HubSpot returned no deal id");
        free(id);
    } else if (reply.status == 409) {
        result = hs_adopt_existing(s, w, r);
    } else {
        fs_result code = hs_status_result(reply.status);
        char *message = hs_error_message(reply.json, reply.status);
        if (code == FS_ERR_AUTH || code == FS_ERR_FORBIDDEN ||
            code == FS_ERR_BUSY)
            result = code;
        provider_result_fail(r, code, message);
        free(message);
    }
out:
    json_decref(body);
    hs_reply_clear(&reply);
    return result;
}

static fs_result hs_write_deals(struct provider_session *s,
                                const struct crm_write *writes, size_t n,
                                struct crm_write_result *results)
{
    size_t *updates = NULL;
    size_t update_n = 0;
    fs_result result = FS_OK;

    if (n > hubspot_provider.max_write_batch)
        return FS_ERR_TOO_LARGE;
    memset(results, 0, n * sizeof(*results));
    updates = xcalloc(n ? n : 1, sizeof(size_t));
    for (size_t i = 0; i < n; i++) {
        if (writes[i].crm_id)
            updates[update_n++] = i;
    }

    if (update_n > 0) {
        result = hs_update_batch(s, writes, updates, update_n, results, true);
        if (result != FS_OK)
            goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (writes[i].crm_id)
            continue;
        result = hs_create_one(s, &writes[i], &results[i]);
        if (result != FS_OK)
            goto out;
    }
out:
    free(updates);
    return result;
}

/* ---- owners and stages ---- */

static char *hs_owner_name(const json_t *owner)
{
    const char *first = provider_json_str(owner, "firstName");
    const char *last = provider_json_str(owner, "lastName");
    bool has_first = first && *first;
    bool has_last = last && *last;

    if (has_first && has_last)
        return xasprintf("%s %s", first, last);
    if (has_first || has_last)
        return xstrdup(has_first ? first : last);
    return NULL;
}

/* Appends the owners of an owners page's results[] (those with an id). */
static void hs_owners_of(const json_t *body, struct crm_owner **owners,
                         size_t *n)
{
    size_t i;
    const json_t *o;

    json_array_foreach(json_object_get(body, "results"), i, o)
    {
        char *id = provider_json_id(json_object_get(o, "id"));
        if (!id)
            continue;
        *owners = xrealloc(*owners, (*n + 1) * sizeof(**owners));
        (*owners)[*n].id = id;
        (*owners)[*n].email = provider_json_text(json_object_get(o, "email"));
        (*owners)[*n].name = hs_owner_name(o);
        (*n)++;
    }
}

/* Appends the stages of every pipeline in results[] (those with ids). */
static void hs_stages_of(const json_t *body, struct crm_stage **stages,
                         size_t *n)
{
    size_t i, j;
    const json_t *pipeline;
    const json_t *stage;

    json_array_foreach(json_object_get(body, "results"), i, pipeline)
    {
        char *pipeline_id = provider_json_id(json_object_get(pipeline, "id"));
        if (!pipeline_id)
            continue;
        json_array_foreach(json_object_get(pipeline, "stages"), j, stage)
        {
            char *id = provider_json_id(json_object_get(stage, "id"));
            if (!id)
                continue;
            *stages = xrealloc(*stages, (*n + 1) * sizeof(**stages));
            (*stages)[*n].pipeline_id = xstrdup(pipeline_id);
            (*stages)[*n].id = id;
            (*stages)[*n].label =
                provider_json_text(json_object_get(stage, "label"));
            (*n)++;
        }
        free(pipeline_id);
    }
}

static fs_result hs_list_owners(struct provider_session *s,
                                struct crm_owner **out, size_t *count)
{
    struct crm_owner *owners = NULL;
    size_t n = 0;
    char *after = NULL;
    fs_result result = FS_OK;

    *out = NULL;
    *count = 0;
    for (int page = 0; page < HS_MAX_PAGES; page++) {
        struct hs_reply reply = {0};
        char *esc = after ? provider_url_escape(after) : NULL;
        char *path = xasprintf("/crm/v3/owners?limit=%d%s%s", HS_LIST_LIMIT,
                               esc ? "&after=" : "", esc ? esc : "");

        free(esc);
        result = hs_call(s, "GET", path, NULL, false, &reply);
        free(path);
        if (result == FS_OK)
            result = hs_status_result(reply.status);
        if (result != FS_OK) {
            hs_reply_clear(&reply);
            goto out;
        }
        hs_owners_of(reply.json, &owners, &n);
        free(after);
        after = hs_next_after(reply.json);
        hs_reply_clear(&reply);
        if (!after)
            break;
    }
    *out = owners;
    *count = n;
    owners = NULL;
    n = 0;
out:
    crm_owners_free(owners, n);
    free(after);
    return result;
}

static fs_result hs_list_stages(struct provider_session *s,
                                struct crm_stage **out, size_t *count)
{
    struct hs_reply reply = {0};
    struct crm_stage *stages = NULL;
    size_t n = 0;
    fs_result result;

    *out = NULL;
    *count = 0;
    result = hs_call(s, "GET", "/crm/v3/pipelines/deals", NULL, false, &reply);
    if (result == FS_OK)
        result = hs_status_result(reply.status);
    if (result != FS_OK)
        goto out;

    hs_stages_of(reply.json, &stages, &n);
    *out = stages;
    *count = n;
    stages = NULL;
    n = 0;
out:
    crm_stages_free(stages, n);
    hs_reply_clear(&reply);
    return result;
}

/* ---- answers without the network ---- */

fs_result hubspot_read_answer(const struct connection *conn, const char *body,
                              size_t len, struct hubspot_answer *out)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    struct crm_deal_list list = {0};

    memset(out, 0, sizeof(*out));
    if (!root)
        return FS_ERR_REMOTE;
    hs_parse_results(conn, root, &list);
    hs_add_missing(root, &list);
    crm_deal_list_give(&list, &out->deals, &out->deal_count);
    hs_owners_of(root, &out->owners, &out->owner_count);
    hs_stages_of(root, &out->stages, &out->stage_count);
    out->next_after = hs_next_after(root);
    json_decref(root);
    return FS_OK;
}

void hubspot_answer_clear(struct hubspot_answer *a)
{
    if (!a)
        return;
    crm_deals_free(a->deals, a->deal_count);
    crm_owners_free(a->owners, a->owner_count);
    crm_stages_free(a->stages, a->stage_count);
    free(a->next_after);
    memset(a, 0, sizeof(*a));
}

fs_result hubspot_read_update_answer(const char *body, size_t len,
                                     const struct crm_write *writes, size_t n,
                                     struct crm_write_result *results)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    size_t *idx = xcalloc(n ? n : 1, sizeof(size_t));

    memset(results, 0, n * sizeof(*results));
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    if (root)
        hs_apply_batch_answer(root, writes, idx, n, results);
    free(idx);
    json_decref(root);
    return root ? FS_OK : FS_ERR_REMOTE;
}

/* Checks the credentials with one cheap read the sync needs anyway (the
 * deal pipelines: crm.objects.deals.read); HubSpot's mappings are fixed,
 * so there is nothing to learn. A refusal names HubSpot's reason. */
static fs_result hs_prepare(struct provider_session *s, char **settings,
                            char **error)
{
    struct hs_reply reply = {0};

    *settings = NULL;
    *error = NULL;
    fs_result r =
        hs_call(s, "GET", "/crm/v3/pipelines/deals", NULL, false, &reply);
    if (r == FS_OK)
        r = hs_status_result(reply.status);
    if (r != FS_OK) {
        char *why = reply.status
                        ? hs_error_message(reply.json, reply.status)
                        : xasprintf("no answer (%s; is the base URL right?)",
                                    fs_result_name(r));
        *error = xasprintf("GET %s/crm/v3/pipelines/deals failed: %s%s",
                           s->conn->base_url, why,
                           r == FS_ERR_AUTH ? " (check the access token)"
                           : r == FS_ERR_FORBIDDEN
                               ? " (the app lacks a scope; README lists "
                                 "them)"
                               : "");
        free(why);
    }
    hs_reply_clear(&reply);
    return r;
}

/* Private apps on Free and Starter: 100 calls per rolling 10 s, 250,000 a
 * day, the same for reads and writes. Search has its own 5 a second and
 * is outside the ten-second window. */
static void hs_rate_budget(const struct connection *conn, enum call_class cls,
                           struct rate_budget *out)
{
    if (cls == CALL_SEARCH) {
        out->window_calls = HS_SEARCH_PER_S;
        out->window_ms = 1000 + HS_WINDOW_MARGIN_MS;
        out->daily_units = 0;
        return;
    }
    out->window_calls = conn->rate_window > 0 ? conn->rate_window : 100;
    out->window_ms = HS_WINDOW_MS + HS_WINDOW_MARGIN_MS;
    out->daily_units = conn->rate_daily > 0 ? conn->rate_daily : 250000;
}

static unsigned hs_synced_fields(const struct connection *conn)
{
    return (1u << DEAL_FIELD_COUNT) - 1;
}

const struct provider hubspot_provider = {
    .name = "hubspot",
    .max_write_batch = 100,
    .separate_search_budget = true,
    .rate_budget = hs_rate_budget,
    .synced_fields = hs_synced_fields,
    .prepare = hs_prepare,
    .split_webhook = hs_split_webhook,
    .verify_webhook = hs_verify_webhook,
    .parse_event = hs_parse_event,
    .list_deals = hs_list_deals,
    .changed_since = hs_changed_since,
    .read_deals = hs_read_deals,
    .write_deals = hs_write_deals,
    .find_by_our_id = hs_find_by_our_id,
    .list_owners = hs_list_owners,
    .list_stages = hs_list_stages,
    .oauth_token = hs_oauth_token,
};
