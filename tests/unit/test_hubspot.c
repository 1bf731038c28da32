/* Unit tests for the HubSpot provider: the SDKs' signature vectors, v3
 * timestamp and URI rules, cutting deliveries, parsing each event kind,
 * and write_deals against a loopback server answering as HubSpot does. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/crypto.h"
#include "net/http_client.h"
#include "net/http_server.h"
#include "net/rate_governor.h"
#include "providers/hubspot.h"
#include "providers/provider.h"
#include "test_env.h"

#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SECRET "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
#define HOOK_URL "https://hooks.example.com/webhooks/hubspot"
#define NOW INT64_C(1796292000000)

/* ---- a webhook request with headers from a small table ---- */

struct fake_headers {
    const char *names[6];
    const char *values[6];
    int count;
};

static const char *on_header(const void *ctx, const char *name)
{
    const struct fake_headers *h = ctx;

    for (int i = 0; i < h->count; i++) {
        if (strcasecmp(h->names[i], name) == 0)
            return h->values[i];
    }
    return NULL;
}

static void add_header(struct fake_headers *h, const char *name,
                       const char *value)
{
    h->names[h->count] = name;
    h->values[h->count] = value;
    h->count++;
}

static struct webhook_request make_request(const char *method, const char *url,
                                           const char *body, size_t len,
                                           struct fake_headers *h)
{
    struct webhook_request req = {
        .method = method,
        .url = url,
        .body = body,
        .body_len = len,
        .header = on_header,
        .header_ctx = h,
    };
    return req;
}

static struct connection make_conn(const char *secret, const char *app_id)
{
    struct connection c = {0};

    c.provider = "hubspot";
    c.client_secret = (char *)(uintptr_t)secret;
    c.app_id = (char *)(uintptr_t)app_id;
    return c;
}

static fs_result verify(const struct connection *conn,
                        const struct webhook_request *req, int64_t now)
{
    return hubspot_provider.verify_webhook(conn, req, now);
}

/* ---- signature vectors from the SDKs ---- */

static json_t *load_shared_json(const char *relative)
{
    char *path = test_shared_path(relative);
    json_error_t err;
    json_t *root = json_load_file(path, 0, &err);

    if (!root)
        fprintf(stderr, "cannot read %s: %s\n", path, err.text);
    free(path);
    assert_non_null(root);
    return root;
}

static const char *str_or(const json_t *obj, const char *key,
                          const char *fallback)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : fallback;
}

/* Checks one vector through the public function and through
 * verify_webhook, and that a one-byte change to the body is refused. */
static void check_vector(const json_t *v)
{
    const char *version = str_or(v, "signature_version", "");
    const char *secret = str_or(v, "client_secret", "");
    const char *method = str_or(v, "http_method", "POST");
    const char *uri = str_or(v, "uri", HOOK_URL);
    const char *body = str_or(v, "request_body", "");
    const char *expected = str_or(v, "expected_signature", "");
    size_t len = strlen(body);
    struct connection conn = make_conn(secret, "1");
    struct fake_headers h = {0};
    char ts[32] = "";
    int64_t now = NOW;
    char *sig = NULL;

    if (strcmp(version, "v1") == 0) {
        sig = hubspot_signature_v1(secret, body, len);
        add_header(&h, "X-HubSpot-Signature", expected);
        add_header(&h, "X-HubSpot-Signature-Version", "v1");
    } else if (strcmp(version, "v2") == 0) {
        sig = hubspot_signature_v2(secret, method, uri, body, len);
        add_header(&h, "X-HubSpot-Signature", expected);
        add_header(&h, "X-HubSpot-Signature-Version", "v2");
    } else {
        assert_string_equal(version, "v3");
        json_int_t t = json_integer_value(json_object_get(v, "timestamp"));
        snprintf(ts, sizeof(ts), "%" JSON_INTEGER_FORMAT, t);
        sig = hubspot_signature_v3(secret, method, uri, body, len, ts);
        add_header(&h, "X-HubSpot-Signature-v3", expected);
        add_header(&h, "X-HubSpot-Request-Timestamp", ts);
        now = t + 1000;
    }
    assert_string_equal(sig, expected);
    free(sig);

    struct webhook_request req = make_request(method, uri, body, len, &h);
    assert_int_equal(verify(&conn, &req, now), FS_OK);

    char *changed = xstrdup(body);
    if (len > 0) {
        changed[0] ^= 1;
        req.body = changed;
        assert_int_equal(verify(&conn, &req, now), FS_ERR_AUTH);
    }
    struct connection wrong = make_conn("zzzzzzzz-wrong-secret", "1");
    req.body = body;
    assert_int_equal(verify(&wrong, &req, now), FS_ERR_AUTH);
    free(changed);
}

static void test_sdk_signature_vectors(void **state)
{
    json_t *root = load_shared_json(
        "data/crm_api_payloads/hubspot/hubspot_webhook_signature_vectors.json");
    const json_t *vectors = json_object_get(root, "vectors");
    int seen[3] = {0};
    size_t i;
    const json_t *v;

    assert_true(json_array_size(vectors) >= 6);
    json_array_foreach(vectors, i, v)
    {
        const char *version = str_or(v, "signature_version", "");
        check_vector(v);
        seen[version[1] - '1']++;
    }
    assert_true(seen[0] >= 1 && seen[1] >= 1 && seen[2] >= 1);
    json_decref(root);
}

/* ---- v3 rules ---- */

struct signed_request {
    char ts[32];
    char *sig;
    struct fake_headers h;
};

static void sign_v3(struct signed_request *s, const char *url, const char *body,
                    int64_t ts)
{
    char *uri = hubspot_uri_for_signature(url);

    snprintf(s->ts, sizeof(s->ts), "%" PRId64, ts);
    s->sig =
        hubspot_signature_v3(SECRET, "POST", uri, body, strlen(body), s->ts);
    s->h = (struct fake_headers){0};
    add_header(&s->h, "X-HubSpot-Signature-v3", s->sig);
    add_header(&s->h, "X-HubSpot-Request-Timestamp", s->ts);
    free(uri);
}

static fs_result verify_signed(const char *url, const char *body, int64_t ts,
                               int64_t now)
{
    struct connection conn = make_conn(SECRET, "1");
    struct signed_request s;
    fs_result result;

    sign_v3(&s, url, body, ts);
    struct webhook_request req =
        make_request("POST", url, body, strlen(body), &s.h);
    result = verify(&conn, &req, now);
    free(s.sig);
    return result;
}

static void test_v3_timestamp_window(void **state)
{
    const char *body = "[{\"eventId\":1}]";

    assert_int_equal(verify_signed(HOOK_URL, body, NOW, NOW), FS_OK);
    assert_int_equal(verify_signed(HOOK_URL, body, NOW - 299000, NOW), FS_OK);
    assert_int_equal(verify_signed(HOOK_URL, body, NOW - 300000, NOW), FS_OK);
    assert_int_equal(verify_signed(HOOK_URL, body, NOW - 300001, NOW),
                     FS_ERR_AUTH);
    assert_int_equal(verify_signed(HOOK_URL, body, NOW - 3600000, NOW),
                     FS_ERR_AUTH);
    assert_int_equal(verify_signed(HOOK_URL, body, NOW + 299000, NOW), FS_OK);
    assert_int_equal(verify_signed(HOOK_URL, body, NOW + 300001, NOW),
                     FS_ERR_AUTH);
}

static void test_v3_timestamp_header_required(void **state)
{
    struct connection conn = make_conn(SECRET, "1");
    const char *body = "[]";
    struct signed_request s;

    sign_v3(&s, HOOK_URL, body, NOW);
    struct fake_headers only_sig = {0};
    add_header(&only_sig, "X-HubSpot-Signature-v3", s.sig);
    struct webhook_request req =
        make_request("POST", HOOK_URL, body, 2, &only_sig);
    assert_int_equal(verify(&conn, &req, NOW), FS_ERR_AUTH);

    struct fake_headers junk = {0};
    add_header(&junk, "X-HubSpot-Signature-v3", s.sig);
    add_header(&junk, "X-HubSpot-Request-Timestamp", "17962920OO000");
    req.header_ctx = &junk;
    assert_int_equal(verify(&conn, &req, NOW), FS_ERR_AUTH);

    req.header_ctx = &s.h;
    assert_int_equal(verify(&conn, &req, NOW), FS_OK);
    free(s.sig);
}

static void test_reserialised_body_refused(void **state)
{
    json_t *root = load_shared_json(
        "data/crm_api_payloads/hubspot/hubspot_webhook_event_batch.json");
    const char *raw =
        json_string_value(json_object_get(root, "request_body_raw"));
    struct connection conn = make_conn(SECRET, "1");
    struct signed_request s;

    assert_non_null(raw);
    sign_v3(&s, HOOK_URL, raw, NOW);
    struct webhook_request req =
        make_request("POST", HOOK_URL, raw, strlen(raw), &s.h);
    assert_int_equal(verify(&conn, &req, NOW), FS_OK);

    /* The same events, serialised again: not the bytes that were signed. */
    char *again =
        json_dumps(json_object_get(root, "request_body"), JSON_INDENT(1));
    req.body = again;
    req.body_len = strlen(again);
    assert_int_equal(verify(&conn, &req, NOW), FS_ERR_AUTH);

    /* The right bytes under another secret. */
    struct connection other = make_conn("another-secret", "1");
    req.body = raw;
    req.body_len = strlen(raw);
    assert_int_equal(verify(&other, &req, NOW), FS_ERR_AUTH);

    /* The signature for another method or URL. */
    req.method = "PUT";
    assert_int_equal(verify(&conn, &req, NOW), FS_ERR_AUTH);
    req.method = "POST";
    req.url = HOOK_URL "/other";
    assert_int_equal(verify(&conn, &req, NOW), FS_ERR_AUTH);

    free(again);
    free(s.sig);
    json_decref(root);
}

static void test_missing_signature_refused(void **state)
{
    struct connection conn = make_conn(SECRET, "1");
    struct fake_headers none = {0};
    struct webhook_request req = make_request("POST", HOOK_URL, "[]", 2, &none);

    assert_int_equal(verify(&conn, &req, NOW), FS_ERR_AUTH);

    /* A version we do not know is refused, not guessed. */
    char *v1 = hubspot_signature_v1(SECRET, "[]", 2);
    struct fake_headers odd = {0};
    add_header(&odd, "X-HubSpot-Signature", v1);
    add_header(&odd, "X-HubSpot-Signature-Version", "v9");
    req.header_ctx = &odd;
    assert_int_equal(verify(&conn, &req, NOW), FS_ERR_AUTH);

    /* No version header means v1. */
    struct fake_headers plain = {0};
    add_header(&plain, "X-HubSpot-Signature", v1);
    req.header_ctx = &plain;
    assert_int_equal(verify(&conn, &req, NOW), FS_OK);

    /* A connection without a secret accepts nothing. */
    struct connection bare = make_conn("", "1");
    assert_int_equal(verify(&bare, &req, NOW), FS_ERR_AUTH);
    free(v1);
}

static void test_v2_hex_case_insensitive(void **state)
{
    struct connection conn = make_conn(SECRET, "1");
    const char *body = "[{\"a\":1}]";
    char *sig =
        hubspot_signature_v2(SECRET, "POST", HOOK_URL, body, strlen(body));
    struct fake_headers h = {0};

    for (char *p = sig; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    add_header(&h, "X-HubSpot-Signature", sig);
    add_header(&h, "X-HubSpot-Signature-Version", "v2");
    struct webhook_request req =
        make_request("POST", HOOK_URL, body, strlen(body), &h);
    assert_int_equal(verify(&conn, &req, NOW), FS_OK);
    free(sig);
}

static void test_uri_decoding_rule(void **state)
{
    char *uri = hubspot_uri_for_signature(
        "https://h.example/a%3Ab%2fc%3F%40%21%24%27%28%29%2A%2c%3b"
        "%20%41%2%?q=x%3Ay%25&r=%3d");

    /* Only the fixed set is decoded; %20 %41 %25 %3d and a broken escape
     * stay as they came. */
    assert_string_equal(uri, "https://h.example/a:b/c?@!$'()*,;"
                             "%20%41%2%?q=x:y%25&r=%3d");
    free(uri);

    /* A delivery to a URL with escapes verifies against the decoded
     * form, as HubSpot signs it. */
    const char *url = "https://h.example/hook%3Aone?tenant=a%2Cb";
    assert_int_equal(verify_signed(url, "[]", NOW, NOW), FS_OK);

    struct connection conn = make_conn(SECRET, "1");
    char ts[32];
    snprintf(ts, sizeof(ts), "%" PRId64, NOW);
    char *raw_sig = hubspot_signature_v3(SECRET, "POST", url, "[]", 2, ts);
    struct fake_headers h = {0};
    add_header(&h, "X-HubSpot-Signature-v3", raw_sig);
    add_header(&h, "X-HubSpot-Request-Timestamp", ts);
    struct webhook_request req = make_request("POST", url, "[]", 2, &h);
    assert_int_equal(verify(&conn, &req, NOW), FS_ERR_AUTH);
    free(raw_sig);
}

/* ---- cutting deliveries ---- */

static fs_result split(const char *body, struct webhook_item **items, size_t *n)
{
    struct webhook_request req = {
        .method = "POST", .body = body, .body_len = strlen(body)};
    return hubspot_provider.split_webhook(&req, items, n);
}

static void test_split_real_batch(void **state)
{
    json_t *root = load_shared_json(
        "data/crm_api_payloads/hubspot/hubspot_webhook_event_batch.json");
    const char *raw =
        json_string_value(json_object_get(root, "request_body_raw"));
    struct webhook_item *items = NULL;
    size_t n = 0;

    assert_int_equal(split(raw, &items, &n), FS_OK);
    assert_int_equal(n, 1);
    assert_string_equal(items[0].account_id, "62515");
    assert_string_equal(items[0].app_id, "54321");
    assert_string_equal(items[0].dedup_key,
                        "1564113600000:62515:contact.creation:123::1");
    assert_string_equal(
        items[0].body,
        "{\"appId\":54321,\"attemptNumber\":0,\"changeFlag\":\"NEW\","
        "\"changeSource\":\"CRM\",\"eventId\":1,\"objectId\":123,"
        "\"occurredAt\":1564113600000,\"portalId\":62515,"
        "\"subscriptionId\":12345,\"subscriptionType\":"
        "\"contact.creation\"}");
    webhook_items_free(items, n);
    json_decref(root);
}

static char *event_array(size_t count)
{
    struct buf b = {0};

    buf_append_str(&b, "[");
    for (size_t i = 0; i < count; i++)
        buf_appendf(&b,
                    "%s{\"eventId\":%zu,\"portalId\":7,\"appId\":9,"
                    "\"occurredAt\":1000,\"subscriptionType\":"
                    "\"deal.creation\",\"objectId\":%zu}",
                    i ? "," : "", i, i + 100);
    buf_append_str(&b, "]");
    return buf_steal(&b);
}

static void test_split_limits(void **state)
{
    struct webhook_item *items = NULL;
    size_t n = 0;
    char *full = event_array(100);
    char *over = event_array(101);

    assert_int_equal(split(full, &items, &n), FS_OK);
    assert_int_equal(n, 100);
    assert_string_equal(items[99].dedup_key, "1000:7:deal.creation:199::99");
    webhook_items_free(items, n);

    assert_int_equal(split(over, &items, &n), FS_ERR_TOO_LARGE);
    assert_null(items);
    assert_int_equal(n, 0);

    assert_int_equal(split("{\"eventId\":1,\"portalId\":7}", &items, &n),
                     FS_ERR_INVALID);
    assert_int_equal(split("[]", &items, &n), FS_ERR_INVALID);
    assert_int_equal(split("[1,2]", &items, &n), FS_ERR_INVALID);
    assert_int_equal(split("[{\"portalId\":7},\"x\"]", &items, &n),
                     FS_ERR_INVALID);
    assert_int_equal(split("[{\"portalId\":7}", &items, &n), FS_ERR_INVALID);
    assert_int_equal(split("[{\"eventId\":1}]", &items, &n), FS_ERR_INVALID);
    assert_null(items);
    free(full);
    free(over);
}

static char *dedup_key_of(const char *body)
{
    struct webhook_item *items = NULL;
    size_t n = 0;
    char *key;

    assert_int_equal(split(body, &items, &n), FS_OK);
    assert_int_equal(n, 1);
    key = xstrdup(items[0].dedup_key);
    webhook_items_free(items, n);
    return key;
}

static void test_dedup_key_ignores_attempt(void **state)
{
    char *first = dedup_key_of(
        "[{\"eventId\":5,\"portalId\":44,\"occurredAt\":1764771600123,"
        "\"subscriptionType\":\"deal.propertyChange\",\"attemptNumber\":0,"
        "\"objectId\":31877004512,\"propertyName\":\"dealstage\","
        "\"propertyValue\":\"closedwon\"}]");
    char *retry = dedup_key_of(
        "[{\"attemptNumber\":3,\"eventId\":5,\"portalId\":44,"
        "\"occurredAt\":1764771600123,\"subscriptionType\":"
        "\"deal.propertyChange\",\"objectId\":31877004512,"
        "\"propertyName\":\"dealstage\",\"propertyValue\":\"closedwon\"}]");
    char *other_prop = dedup_key_of(
        "[{\"eventId\":5,\"portalId\":44,\"occurredAt\":1764771600123,"
        "\"subscriptionType\":\"deal.propertyChange\",\"attemptNumber\":0,"
        "\"objectId\":31877004512,\"propertyName\":\"amount\","
        "\"propertyValue\":\"5\"}]");
    char *later = dedup_key_of(
        "[{\"eventId\":5,\"portalId\":44,\"occurredAt\":1764771600124,"
        "\"subscriptionType\":\"deal.propertyChange\",\"attemptNumber\":0,"
        "\"objectId\":31877004512,\"propertyName\":\"dealstage\","
        "\"propertyValue\":\"closedwon\"}]");
    char *alias = dedup_key_of(
        "[{\"eventId\":5,\"portalId\":44,\"occurredAt\":1764771600123,"
        "\"eventType\":\"deal.propertyChange\",\"attemptNumber\":1,"
        "\"objectId\":31877004512,\"propertyName\":\"dealstage\","
        "\"propertyValue\":\"closedwon\"}]");

    assert_string_equal(first, "1764771600123:44:deal.propertyChange:"
                               "31877004512:dealstage:5");
    assert_string_equal(first, retry);
    assert_string_equal(first, alias);
    assert_string_not_equal(first, other_prop);
    assert_string_not_equal(first, later);
    free(first);
    free(retry);
    free(other_prop);
    free(later);
    free(alias);
}

/* ---- parsing events ---- */

#define APP_ID "1988123"

static fs_result parse(const char *json, struct crm_event *ev)
{
    struct connection conn = make_conn(SECRET, APP_ID);
    return hubspot_provider.parse_event(&conn, json, ev);
}

/* The event sets exactly that field (-1: none), to value (NULL: cleared). */
static void assert_sets_only(const struct crm_event *ev, int field,
                             const char *value)
{
    for (int f = 0; f < DEAL_FIELD_COUNT; f++)
        assert_int_equal(ev->present[f], f == field);
    if (field < 0)
        return;
    if (value)
        assert_string_equal(ev->values[field], value);
    else
        assert_null(ev->values[field]);
}

static void test_parse_property_change(void **state)
{
    struct crm_event ev;

    assert_int_equal(
        parse("{\"eventId\":1,\"portalId\":44,\"appId\":1988123,"
              "\"occurredAt\":1764771600123,\"subscriptionType\":"
              "\"deal.propertyChange\",\"objectId\":31877004512,"
              "\"propertyName\":\"dealstage\",\"propertyValue\":"
              "\"closedwon\",\"changeSource\":\"CRM_UI\",\"sourceId\":"
              "\"userId:5120033\"}",
              &ev),
        FS_OK);
    assert_int_equal(ev.kind, CRM_EVENT_CHANGE);
    assert_string_equal(ev.crm_id, "31877004512");
    assert_int_equal(ev.time, INT64_C(1764771600123));
    assert_sets_only(&ev, DEAL_STAGE, "closedwon");
    assert_int_equal(ev.actor, ACTOR_OTHER);
    crm_event_clear(&ev);

    /* closedate arrives as the epoch ms of midnight UTC. */
    assert_int_equal(
        parse("{\"occurredAt\":1764771600123,\"subscriptionType\":"
              "\"deal.propertyChange\",\"objectId\":7,\"propertyName\":"
              "\"closedate\",\"propertyValue\":\"1764720000000\"}",
              &ev),
        FS_OK);
    assert_int_equal(ev.kind, CRM_EVENT_CHANGE);
    assert_sets_only(&ev, DEAL_CLOSE_DATE, "2025-12-03");
    crm_event_clear(&ev);

    /* Amounts take the canonical form; an empty value clears. */
    assert_int_equal(
        parse("{\"occurredAt\":5,\"eventType\":\"deal.propertyChange\","
              "\"objectId\":7,\"propertyName\":\"amount\","
              "\"propertyValue\":\"1054.50\"}",
              &ev),
        FS_OK);
    assert_sets_only(&ev, DEAL_AMOUNT, "1054.5");
    crm_event_clear(&ev);

    assert_int_equal(
        parse("{\"occurredAt\":5,\"subscriptionType\":"
              "\"deal.propertyChange\",\"objectId\":7,\"propertyName\":"
              "\"hubspot_owner_id\",\"propertyValue\":\"\"}",
              &ev),
        FS_OK);
    assert_int_equal(ev.kind, CRM_EVENT_CHANGE);
    assert_sets_only(&ev, DEAL_OWNER, NULL);
    crm_event_clear(&ev);
}

static void expect_ignored(const char *json, const char *type)
{
    struct crm_event ev;

    assert_int_equal(parse(json, &ev), FS_OK);
    assert_int_equal(ev.kind, CRM_EVENT_IGNORED);
    assert_sets_only(&ev, -1, NULL);
    assert_string_equal(ev.ignored_type, type);
    crm_event_clear(&ev);
}

static void test_parse_ignored(void **state)
{
    expect_ignored("{\"occurredAt\":5,\"subscriptionType\":"
                   "\"deal.propertyChange\",\"objectId\":7,"
                   "\"propertyName\":\"hs_foo\",\"propertyValue\":\"1\"}",
                   "deal.propertyChange:hs_foo");
    expect_ignored("{\"occurredAt\":5,\"subscriptionType\":"
                   "\"deal.propertyChange\",\"objectId\":7,"
                   "\"propertyName\":\"fieldsync_id\",\"propertyValue\":"
                   "\"r1\"}",
                   "deal.propertyChange:fieldsync_id");
    expect_ignored("{\"occurredAt\":5,\"subscriptionType\":"
                   "\"deal.propertyChange\",\"objectId\":7,"
                   "\"propertyName\":\"pipeline\",\"propertyValue\":"
                   "\"default\"}",
                   "deal.propertyChange:pipeline");
    expect_ignored("{\"occurredAt\":5,\"subscriptionType\":"
                   "\"deal.propertyChange\",\"objectId\":7,"
                   "\"propertyName\":\"amount\",\"propertyValue\":\"abc\"}",
                   "deal.propertyChange:amount:invalid_value");
    expect_ignored("{\"occurredAt\":5,\"subscriptionType\":"
                   "\"deal.associationChange\",\"objectId\":7,"
                   "\"associationType\":\"DEAL_TO_COMPANY\"}",
                   "deal.associationChange");
    expect_ignored("{\"eventId\":1,\"portalId\":62515,\"occurredAt\":"
                   "1564113600000,\"subscriptionType\":\"contact.creation\","
                   "\"objectId\":123,\"changeSource\":\"CRM\"}",
                   "contact.creation");
    expect_ignored("{\"occurredAt\":5,\"subscriptionType\":"
                   "\"object.propertyChange\",\"objectTypeId\":\"0-1\","
                   "\"objectId\":7,\"propertyName\":\"amount\","
                   "\"propertyValue\":\"3\"}",
                   "object.propertyChange");
}

static void test_parse_generic_deal_form(void **state)
{
    struct crm_event ev;

    assert_int_equal(parse("{\"occurredAt\":5,\"subscriptionType\":"
                           "\"object.propertyChange\",\"objectTypeId\":\"0-3\","
                           "\"objectId\":7,\"propertyName\":\"engage_date\","
                           "\"propertyValue\":\"1796256000000\"}",
                           &ev),
                     FS_OK);
    assert_int_equal(ev.kind, CRM_EVENT_CHANGE);
    assert_sets_only(&ev, DEAL_ENGAGE_DATE, "2026-12-03");
    crm_event_clear(&ev);

    assert_int_equal(parse("{\"occurredAt\":5,\"subscriptionType\":"
                           "\"object.deletion\",\"objectTypeId\":\"0-3\","
                           "\"objectId\":7}",
                           &ev),
                     FS_OK);
    assert_int_equal(ev.kind, CRM_EVENT_DELETE);
    crm_event_clear(&ev);
}

static void test_parse_lifecycle_and_echo(void **state)
{
    struct crm_event ev;

    /* Our own create coming back: INTEGRATION with our app id. */
    assert_int_equal(
        parse("{\"occurredAt\":1764771655400,\"subscriptionType\":"
              "\"deal.creation\",\"objectId\":31877009930,\"changeSource\":"
              "\"INTEGRATION\",\"sourceId\":\"1988123\"}",
              &ev),
        FS_OK);
    assert_int_equal(ev.kind, CRM_EVENT_CREATE);
    assert_string_equal(ev.crm_id, "31877009930");
    assert_int_equal(ev.actor, ACTOR_US);
    crm_event_clear(&ev);

    /* Another integration, or a user, is not us. */
    assert_int_equal(parse("{\"occurredAt\":5,\"subscriptionType\":"
                           "\"deal.propertyChange\",\"objectId\":7,"
                           "\"propertyName\":\"dealname\",\"propertyValue\":"
                           "\"X\",\"changeSource\":\"INTEGRATION\","
                           "\"sourceId\":\"555\"}",
                           &ev),
                     FS_OK);
    assert_int_equal(ev.actor, ACTOR_OTHER);
    crm_event_clear(&ev);
    assert_int_equal(parse("{\"occurredAt\":5,\"subscriptionType\":"
                           "\"deal.propertyChange\",\"objectId\":7,"
                           "\"propertyName\":\"dealname\",\"propertyValue\":"
                           "\"X\",\"changeSource\":\"CRM_UI\","
                           "\"sourceId\":\"1988123\"}",
                           &ev),
                     FS_OK);
    assert_int_equal(ev.actor, ACTOR_OTHER);
    crm_event_clear(&ev);

    assert_int_equal(parse("{\"occurredAt\":1764771801999,"
                           "\"subscriptionType\":\"deal.deletion\","
                           "\"objectId\":31877001111}",
                           &ev),
                     FS_OK);
    assert_int_equal(ev.kind, CRM_EVENT_DELETE);
    assert_int_equal(ev.time, INT64_C(1764771801999));
    crm_event_clear(&ev);

    assert_int_equal(parse("{\"occurredAt\":9,\"subscriptionType\":"
                           "\"deal.restore\",\"objectId\":31877001111}",
                           &ev),
                     FS_OK);
    assert_int_equal(ev.kind, CRM_EVENT_RESTORE);
    crm_event_clear(&ev);
}

static void test_parse_merge(void **state)
{
    struct crm_event ev;

    assert_int_equal(
        parse("{\"occurredAt\":1764771702000,\"subscriptionType\":"
              "\"deal.merge\",\"objectId\":31877004512,\"primaryObjectId\":"
              "31877004512,\"mergedObjectIds\":[31877001111,31877002222],"
              "\"newObjectId\":31877009999}",
              &ev),
        FS_OK);
    assert_int_equal(ev.kind, CRM_EVENT_MERGE);
    assert_int_equal(ev.merged_count, 2);
    assert_string_equal(ev.merged_ids[0], "31877001111");
    assert_string_equal(ev.merged_ids[1], "31877002222");
    assert_string_equal(ev.new_id, "31877009999");
    crm_event_clear(&ev);

    assert_int_equal(parse("{\"occurredAt\":1,\"subscriptionType\":"
                           "\"deal.merge\",\"objectId\":4,\"primaryObjectId\":"
                           "4,\"mergedObjectIds\":[\"3\"]}",
                           &ev),
                     FS_OK);
    assert_string_equal(ev.new_id, "4");
    assert_string_equal(ev.merged_ids[0], "3");
    crm_event_clear(&ev);

    /* An empty id names no deal: a merge into "" or of "" is refused. */
    assert_int_equal(parse("{\"occurredAt\":1,\"subscriptionType\":"
                           "\"deal.merge\",\"objectId\":4,\"primaryObjectId\":"
                           "4,\"newObjectId\":\"\",\"mergedObjectIds\":[\"\"]}",
                           &ev),
                     FS_ERR_INVALID);
    crm_event_clear(&ev);
}

/* Answers naming deals, owners or stages by an empty id: none is taken
 * (a read would link a deal to CRM id ""), nor an empty page token. */
static void test_answer_empty_ids(void **state)
{
    struct connection conn = make_conn("s", "1");
    struct hubspot_answer a;
    const char *body =
        "{\"results\":[{\"id\":\"\",\"email\":\"no-id@example.com\","
        "\"stages\":[{\"id\":\"won\"}]},{\"id\":\"101\",\"properties\":{},"
        "\"stages\":[{\"id\":\"\"},{\"id\":\"won\"}]}],"
        "\"errors\":[{\"category\":\"OBJECT_NOT_FOUND\",\"context\":"
        "{\"ids\":[\"\"]}}],\"paging\":{\"next\":{\"after\":\"\"}}}";

    assert_int_equal(hubspot_read_answer(&conn, body, strlen(body), &a), FS_OK);
    assert_int_equal(a.deal_count, 1);
    assert_string_equal(a.deals[0].crm_id, "101");
    assert_int_equal(a.owner_count, 1);
    assert_string_equal(a.owners[0].id, "101");
    assert_int_equal(a.stage_count, 1);
    assert_string_equal(a.stages[0].pipeline_id, "101");
    assert_string_equal(a.stages[0].id, "won");
    assert_null(a.next_after);
    hubspot_answer_clear(&a);
}

static void test_parse_invalid(void **state)
{
    struct crm_event ev;

    assert_int_equal(parse("{\"occurredAt\":5,\"subscriptionType\":"
                           "\"deal.creation\"}",
                           &ev),
                     FS_ERR_INVALID);
    assert_null(ev.crm_id);
    assert_int_equal(parse("{\"subscriptionType\":\"deal.creation\","
                           "\"objectId\":7}",
                           &ev),
                     FS_ERR_INVALID);
    assert_int_equal(parse("{\"occurredAt\":5,\"objectId\":7}", &ev),
                     FS_ERR_INVALID);
    assert_int_equal(parse("not json", &ev), FS_ERR_INVALID);
    assert_int_equal(parse("[]", &ev), FS_ERR_INVALID);
}

/* A date before the year 1000 (a typo such as 0620 for 2020 passes as a
 * date) goes to HubSpot as epoch ms and comes back as the same day, so its
 * webhook echo is recognised rather than dropped as an invalid value. */
static void test_early_dates_round_trip(void **state)
{
    static const char *const days[] = {"0620-01-29", "0001-01-01", "1969-12-31",
                                       "2017-03-01"};

    for (size_t i = 0; i < sizeof(days) / sizeof(days[0]); i++) {
        char *out = NULL;
        char *back = NULL;
        assert_int_equal(hubspot_value_out(DEAL_CLOSE_DATE, days[i], &out),
                         FS_OK);
        assert_int_equal(hubspot_value_in(DEAL_CLOSE_DATE, out, &back), FS_OK);
        assert_string_equal(back, days[i]);
        free(back);
        free(out);
    }
}

static void test_provider_by_name(void **state)
{
    assert_ptr_equal(provider_by_name("hubspot"), &hubspot_provider);
    assert_null(provider_by_name("nope"));
    assert_null(provider_by_name(NULL));
    assert_int_equal(hubspot_provider.max_write_batch, 100);
    assert_string_equal(hubspot_provider.name, "hubspot");
}

/* ---- write_deals against canned HubSpot answers ---- */

struct canned {
    pthread_mutex_t lock;
    int mode;       /* which answers to give, per test */
    struct buf log; /* "METHOD path\n" per request */
    char *update_body;
    char *create_bodies[4];
    int creates;
    char *auth;
};

/* A search over SEARCH_DEALS deals, as HubSpot pages it: sorted by
 * modification time, 10,000 results at most per query. Deals 9,700 to
 * 10,099 share one millisecond, across the cap. */
#define SEARCH_DEALS 10300
#define SEARCH_CAP 10000

static int64_t search_modified(int i)
{
    if (i >= 9700 && i < 10100)
        return 1000 + 9700;
    return 1000 + i;
}

static void on_search(struct canned *c, const struct http_request *req,
                      struct http_response *resp)
{
    json_t *body = json_loadb(req->body, req->body_len, 0, NULL);
    json_t *filter = json_array_get(
        json_object_get(
            json_array_get(json_object_get(body, "filterGroups"), 0),
            "filters"),
        0);
    const char *value = json_string_value(json_object_get(filter, "value"));
    const char *after = json_string_value(json_object_get(body, "after"));
    int limit = (int)json_integer_value(json_object_get(body, "limit"));
    int64_t mark = value ? strtoll(value, NULL, 10) : -1;
    int offset = after ? (int)strtol(after, NULL, 10) : 0;
    int first = 0;

    buf_appendf(&c->log, "search mark=%" PRId64 " after=%d\n", mark, offset);
    if (!value || limit <= 0 || limit > 200 || offset + limit > SEARCH_CAP) {
        http_response_error(resp, 400, "VALIDATION_ERROR", NULL, "bad search");
        json_decref(body);
        return;
    }
    while (first < SEARCH_DEALS && search_modified(first) < mark)
        first++;

    json_t *results = json_array();
    int i = first + offset;
    for (; i < SEARCH_DEALS && i < first + offset + limit; i++) {
        char id[16], ms[32], name[16];
        snprintf(id, sizeof(id), "%d", i);
        snprintf(ms, sizeof(ms), "%" PRId64, search_modified(i));
        snprintf(name, sizeof(name), "D%d", i);
        json_array_append_new(
            results, json_pack("{s:s, s:{s:s, s:s}}", "id", id, "properties",
                               "hs_lastmodifieddate", ms, "dealname", name));
    }
    json_t *answer = json_pack("{s:i, s:o}", "total", SEARCH_DEALS - first,
                               "results", results);
    if (i < SEARCH_DEALS) {
        char next[16];
        snprintf(next, sizeof(next), "%d", offset + limit);
        json_object_set_new(answer, "paging",
                            json_pack("{s:{s:s}}", "next", "after", next));
    }
    http_response_set_body(resp, 200, json_dumps(answer, JSON_COMPACT));
    json_decref(answer);
    json_decref(body);
}

static void on_canned(void *ctx, const struct http_request *req,
                      struct http_response *resp)
{
    struct canned *c = ctx;

    pthread_mutex_lock(&c->lock);
    if (strcmp(req->path, "/crm/v3/objects/deals/search") == 0) {
        on_search(c, req, resp);
        pthread_mutex_unlock(&c->lock);
        return;
    }
    buf_appendf(&c->log, "%s %s\n", req->method, req->raw_url);
    free(c->auth);
    const char *auth = http_request_header(req, "Authorization");
    c->auth = auth ? xstrdup(auth) : NULL;

    if (c->mode == 1 &&
        strcmp(req->path, "/crm/v3/objects/deals/batch/update") == 0) {
        http_response_add_header(resp, "X-HubSpot-RateLimit-Remaining", "3");
        http_response_set_body(
            resp, 429,
            xstrdup("{\"status\":\"error\",\"message\":\"You have reached "
                    "your ten_secondly_rolling limit.\",\"errorType\":"
                    "\"RATE_LIMIT\",\"policyName\":"
                    "\"TEN_SECONDLY_ROLLING\"}"));
    } else if (c->mode == 2) {
        http_response_set_body(
            resp, 429,
            xstrdup("{\"status\":\"error\",\"message\":\"You have reached "
                    "your daily limit.\",\"errorType\":\"RATE_LIMIT\","
                    "\"policyName\":\"DAILY\"}"));
    } else if (strcmp(req->path, "/crm/v3/objects/deals/batch/read") == 0) {
        free(c->update_body);
        c->update_body = xstrndup(req->body, req->body_len);
        http_response_set_body(
            resp, 207,
            xstrdup("{\"status\":\"COMPLETE\",\"results\":[{\"id\":\"301\","
                    "\"properties\":{\"dealname\":\"A\",\"amount\":"
                    "\"1000.00\",\"closedate\":\"2026-12-24T00:00:00.000Z\","
                    "\"dealstage\":\"closedwon\",\"fieldsync_id\":"
                    "\"our-9\",\"hs_lastmodifieddate\":"
                    "\"2026-12-03T10:00:00.000Z\"},\"propertiesWithHistory\":"
                    "{\"dealname\":[{\"value\":\"A\",\"timestamp\":"
                    "\"2026-12-01T00:00:00.000Z\"},{\"value\":\"Old\","
                    "\"timestamp\":\"2026-11-01T00:00:00.000Z\"}]},"
                    "\"createdAt\":\"2026-10-01T00:00:00.000Z\","
                    "\"archived\":false}],\"errors\":[{\"status\":\"error\","
                    "\"category\":\"OBJECT_NOT_FOUND\",\"message\":"
                    "\"Could not get some DEAL objects\",\"context\":"
                    "{\"ids\":[\"302\"]}}]}"));
    } else if (strcmp(req->path, "/crm/v3/owners") == 0) {
        const char *after = http_request_query(req, "after");
        if (!after)
            http_response_set_body(
                resp, 200,
                xstrdup("{\"results\":[{\"id\":\"64\",\"email\":"
                        "\"holly@example.com\",\"firstName\":\"Holly\","
                        "\"lastName\":\"Flax\"}],\"paging\":{\"next\":"
                        "{\"after\":\"p2\"}}}"));
        else
            http_response_set_body(
                resp, 200,
                xstrdup("{\"results\":[{\"id\":\"65\",\"email\":"
                        "\"m@example.com\",\"firstName\":\"Michael\"}]}"));
    } else if (strcmp(req->path, "/crm/v3/pipelines/deals") == 0) {
        http_response_set_body(
            resp, 200,
            xstrdup("{\"results\":[{\"id\":\"default\",\"label\":\"Sales\","
                    "\"stages\":[{\"id\":\"appointmentscheduled\","
                    "\"label\":\"Appointment\"},{\"id\":\"closedwon\","
                    "\"label\":\"Won\"}]},{\"id\":\"812\",\"label\":"
                    "\"Field\",\"stages\":[{\"id\":\"1234912\",\"label\":"
                    "\"Visit\"}]}]}"));
    } else if (strcmp(req->path, "/crm/v3/objects/deals/batch/update") == 0) {
        free(c->update_body);
        c->update_body = xstrndup(req->body, req->body_len);
        http_response_add_header(resp, "X-HubSpot-RateLimit-Remaining", "40");
        http_response_set_body(
            resp, 207,
            xstrdup("{\"status\":\"COMPLETE\",\"results\":[{\"id\":\"101\","
                    "\"properties\":{\"hs_lastmodifieddate\":"
                    "\"2026-12-03T10:00:00.000Z\"},\"updatedAt\":"
                    "\"2026-12-03T10:00:00.000Z\",\"archived\":false}],"
                    "\"numErrors\":2,\"errors\":[{\"status\":\"error\","
                    "\"category\":\"OBJECT_NOT_FOUND\",\"message\":"
                    "\"Could not get some DEAL objects\",\"context\":"
                    "{\"ids\":[\"102\"]}},{\"status\":\"error\",\"category\":"
                    "\"VALIDATION_ERROR\",\"message\":\"Property values "
                    "were not valid\",\"context\":{\"objectWriteTraceId\":"
                    "[\"our-3\"]}}]}"));
    } else if (strcmp(req->method, "POST") == 0 &&
               strcmp(req->path, "/crm/v3/objects/deals") == 0) {
        if (c->creates < 4)
            c->create_bodies[c->creates] = xstrndup(req->body, req->body_len);
        c->creates++;
        if (strstr(req->body, "\"our-5\""))
            http_response_set_body(
                resp, 409,
                xstrdup("{\"status\":\"error\",\"category\":\"CONFLICT\","
                        "\"message\":\"A deal with fieldsync_id our-5 "
                        "already exists\"}"));
        else
            http_response_set_body(
                resp, 201,
                xstrdup("{\"id\":\"201\",\"properties\":{"
                        "\"hs_lastmodifieddate\":\"1796292000001\"}}"));
    } else if (strcmp(req->method, "GET") == 0 &&
               strcmp(req->path, "/crm/v3/objects/deals/our-5") == 0) {
        http_response_set_body(resp, 200,
                               xstrdup("{\"id\":\"205\",\"properties\":{"
                                       "\"fieldsync_id\":\"our-5\"}}"));
    } else if (strcmp(req->method, "PATCH") == 0 &&
               strcmp(req->path, "/crm/v3/objects/deals/205") == 0) {
        http_response_set_body(resp, 200,
                               xstrdup("{\"id\":\"205\",\"updatedAt\":"
                                       "\"2026-12-03T10:00:00.002Z\"}"));
    } else {
        http_response_error(resp, 404, "not_found", NULL, "no such route");
    }
    pthread_mutex_unlock(&c->lock);
}

struct rig {
    struct canned canned;
    struct http_server *server;
    struct connection conn;
    struct rate_governor *gov;
    struct provider_session session;
};

static void rig_start(struct rig *r, int mode)
{
    struct http_server_config config = {
        .listen = "127.0.0.1:0",
        .max_body = 1 << 20,
        .max_connections = 8,
        .timeout_s = 5,
        .on_request = on_canned,
        .ctx = &r->canned,
    };
    struct rate_budget budget = {
        .window_calls = 100, .window_ms = 10000, .daily_units = 1000};

    memset(r, 0, sizeof(*r));
    pthread_mutex_init(&r->canned.lock, NULL);
    r->canned.mode = mode;
    assert_int_equal(http_server_start(&config, &r->server), FS_OK);
    r->conn.id = 1;
    r->conn.provider = xstrdup("hubspot");
    r->conn.base_url =
        xasprintf("http://127.0.0.1:%u", http_server_port(r->server));
    r->conn.token = xstrdup("pat-test-token");
    r->gov = rate_governor_new(&budget);
    r->session = (struct provider_session){
        .conn = &r->conn,
        .http = http_client_new(),
        .governor = r->gov,
        .timeout_ms = 5000,
    };
}

static void rig_stop(struct rig *r)
{
    http_server_stop(r->server);
    http_client_free(r->session.http);
    rate_governor_free(r->gov);
    connection_clear(&r->conn);
    buf_free(&r->canned.log);
    free(r->canned.update_body);
    for (int i = 0; i < 4; i++)
        free(r->canned.create_bodies[i]);
    free(r->canned.auth);
    pthread_mutex_destroy(&r->canned.lock);
}

static void test_write_deals_207_and_creates(void **state)
{
    struct rig r;
    struct crm_write w[5] = {0};
    struct crm_write_result res[5];

    rig_start(&r, 0);
    w[0] = (struct crm_write){.our_id = "our-1", .crm_id = "101"};
    w[0].values[DEAL_CLOSE_DATE] = "2026-12-03";
    w[0].present[DEAL_CLOSE_DATE] = true;
    w[0].values[DEAL_OWNER] = NULL;
    w[0].present[DEAL_OWNER] = true;
    w[1] = (struct crm_write){.our_id = "our-2", .crm_id = "102"};
    w[1].values[DEAL_NAME] = "Gone";
    w[1].present[DEAL_NAME] = true;
    w[2] = (struct crm_write){.our_id = "our-3", .crm_id = "103"};
    w[2].values[DEAL_AMOUNT] = "12.5";
    w[2].present[DEAL_AMOUNT] = true;
    w[3] = (struct crm_write){.our_id = "our-4"};
    w[3].values[DEAL_NAME] = "New one";
    w[3].present[DEAL_NAME] = true;
    w[4] = (struct crm_write){.our_id = "our-5"};
    w[4].values[DEAL_STAGE] = "closedwon";
    w[4].present[DEAL_STAGE] = true;

    assert_int_equal(hubspot_provider.write_deals(&r.session, w, 5, res),
                     FS_OK);

    assert_int_equal(res[0].result, FS_OK);
    assert_string_equal(res[0].crm_id, "101");
    assert_int_equal(res[0].time, INT64_C(1796292000000));
    assert_int_equal(res[1].result, FS_ERR_NOT_FOUND);
    assert_string_equal(res[1].error, "Could not get some DEAL objects");
    assert_int_equal(res[2].result, FS_ERR_INVALID);
    assert_string_equal(res[2].error, "Property values were not valid");
    assert_int_equal(res[3].result, FS_OK);
    assert_string_equal(res[3].crm_id, "201");
    assert_int_equal(res[3].time, INT64_C(1796292000001));
    /* The create answered 409: the deal from an earlier try is adopted. */
    assert_int_equal(res[4].result, FS_OK);
    assert_string_equal(res[4].crm_id, "205");

    /* What went over the wire. */
    json_t *sent = json_loads(r.canned.update_body, 0, NULL);
    json_t *in0 = json_array_get(json_object_get(sent, "inputs"), 0);
    json_t *p0 = json_object_get(in0, "properties");
    assert_string_equal(json_string_value(json_object_get(in0, "id")), "101");
    assert_string_equal(
        json_string_value(json_object_get(in0, "objectWriteTraceId")), "our-1");
    assert_string_equal(json_string_value(json_object_get(p0, "closedate")),
                        "1796256000000");
    assert_string_equal(
        json_string_value(json_object_get(p0, "hubspot_owner_id")), "");
    assert_null(json_object_get(p0, "dealname"));
    assert_int_equal(json_array_size(json_object_get(sent, "inputs")), 3);
    json_decref(sent);

    json_t *created = json_loads(r.canned.create_bodies[0], 0, NULL);
    json_t *cp = json_object_get(created, "properties");
    assert_string_equal(json_string_value(json_object_get(cp, "dealname")),
                        "New one");
    assert_string_equal(json_string_value(json_object_get(cp, "fieldsync_id")),
                        "our-4");
    json_decref(created);

    assert_non_null(strstr(r.canned.log.data,
                           "GET /crm/v3/objects/deals/our-5?idProperty="
                           "fieldsync_id"));
    assert_non_null(
        strstr(r.canned.log.data, "PATCH /crm/v3/objects/deals/205"));
    assert_string_equal(r.canned.auth, "Bearer pat-test-token");
    /* Five calls; the window figure the CRM reported was seen. */
    assert_int_equal(rate_governor_calls_made(r.gov), 5);
    assert_true(rate_governor_window_left(r.gov, clock_now_ms()) <= 40);

    crm_write_results_clear(res, 5);
    rig_stop(&r);
}

static void test_write_deals_rate_limited(void **state)
{
    struct rig r;
    struct crm_write w = {.our_id = "our-1", .crm_id = "101"};
    struct crm_write_result res;

    w.values[DEAL_NAME] = "A";
    w.present[DEAL_NAME] = true;

    rig_start(&r, 1);
    assert_int_equal(hubspot_provider.write_deals(&r.session, &w, 1, &res),
                     FS_ERR_RATE_LIMITED);
    /* The connection is paused for the window. */
    int64_t now = clock_now_ms();
    assert_int_equal(rate_governor_window_left(r.gov, now), 0);
    int64_t wait = rate_governor_try_acquire(r.gov, 1, now);
    assert_true(wait > 8000 && wait <= 10000);
    crm_write_results_clear(&res, 1);
    rig_stop(&r);

    rig_start(&r, 2);
    assert_int_equal(hubspot_provider.write_deals(&r.session, &w, 1, &res),
                     FS_ERR_RATE_LIMITED);
    assert_int_equal(rate_governor_daily_left(r.gov, clock_now_ms()), 0);
    crm_write_results_clear(&res, 1);

    /* A batch over the limit is refused before any call. */
    struct crm_write many[101] = {0};
    struct crm_write_result many_res[101];
    assert_int_equal(
        hubspot_provider.write_deals(&r.session, many, 101, many_res),
        FS_ERR_TOO_LARGE);
    rig_stop(&r);
}

static int64_t iso_ms(const char *iso)
{
    int64_t ms = 0;
    assert_int_equal(clock_parse_iso(iso, &ms), 0);
    return ms;
}

static void test_read_deals_owners_stages(void **state)
{
    struct rig r;
    const char *ids[] = {"301", "302"};
    struct crm_deal *deals = NULL;
    size_t n = 0;

    rig_start(&r, 0);
    assert_int_equal(
        hubspot_provider.read_deals(&r.session, ids, 2, &deals, &n), FS_OK);
    assert_int_equal(n, 2);
    assert_string_equal(deals[0].crm_id, "301");
    assert_string_equal(deals[0].our_id, "our-9");
    assert_false(deals[0].archived);
    assert_string_equal(deals[0].values[DEAL_NAME], "A");
    assert_string_equal(deals[0].values[DEAL_AMOUNT], "1000");
    assert_string_equal(deals[0].values[DEAL_CLOSE_DATE], "2026-12-24");
    assert_null(deals[0].values[DEAL_OWNER]);
    assert_int_equal(deals[0].modified, iso_ms("2026-12-03T10:00:00Z"));
    /* A field's own history time, else the deal's modification time. */
    assert_int_equal(deals[0].times[DEAL_NAME], iso_ms("2026-12-01"));
    assert_int_equal(deals[0].times[DEAL_STAGE], deals[0].modified);
    /* An empty property with no history was never written: as old as the
     * deal, so it never undoes a local edit not pushed yet (it took the
     * modification time, and a re-read after any CRM edit cleared such
     * edits on both sides). */
    assert_int_equal(deals[0].times[DEAL_OWNER], iso_ms("2026-10-01"));
    assert_string_equal(deals[1].crm_id, "302");
    assert_true(deals[1].archived);
    crm_deals_free(deals, n);

    json_t *sent = json_loads(r.canned.update_body, 0, NULL);
    assert_int_equal(json_array_size(json_object_get(sent, "inputs")), 2);
    assert_int_equal(
        json_array_size(json_object_get(sent, "propertiesWithHistory")),
        DEAL_FIELD_COUNT);
    json_decref(sent);

    struct crm_owner *owners = NULL;
    assert_int_equal(hubspot_provider.list_owners(&r.session, &owners, &n),
                     FS_OK);
    assert_int_equal(n, 2);
    assert_string_equal(owners[0].id, "64");
    assert_string_equal(owners[0].name, "Holly Flax");
    assert_string_equal(owners[0].email, "holly@example.com");
    assert_string_equal(owners[1].name, "Michael");
    crm_owners_free(owners, n);
    assert_non_null(strstr(r.canned.log.data, "after=p2"));

    struct crm_stage *stages = NULL;
    assert_int_equal(hubspot_provider.list_stages(&r.session, &stages, &n),
                     FS_OK);
    assert_int_equal(n, 3);
    assert_string_equal(stages[1].pipeline_id, "default");
    assert_string_equal(stages[1].id, "closedwon");
    assert_string_equal(stages[1].label, "Won");
    assert_string_equal(stages[2].pipeline_id, "812");
    crm_stages_free(stages, n);

    /* Not found by our id. */
    char *crm_id = NULL;
    assert_int_equal(
        hubspot_provider.find_by_our_id(&r.session, "nobody", &crm_id),
        FS_ERR_NOT_FOUND);
    assert_null(crm_id);
    rig_stop(&r);
}

static void test_changed_since_past_the_cap(void **state)
{
    struct rig r;
    struct crm_cursor cursor = {.watermark = 0};
    int *seen = xcalloc(SEARCH_DEALS, sizeof(int));
    int pages = 0;

    rig_start(&r, 0);
    while (!cursor.done && pages < 200) {
        struct crm_deal *deals = NULL;
        size_t n = 0;
        assert_int_equal(
            hubspot_provider.changed_since(&r.session, &cursor, &deals, &n),
            FS_OK);
        for (size_t i = 0; i < n; i++) {
            int idx = (int)strtol(deals[i].crm_id, NULL, 10);
            assert_true(idx >= 0 && idx < SEARCH_DEALS);
            seen[idx]++;
            assert_int_equal(deals[i].modified, search_modified(idx));
            assert_int_equal(deals[i].times[DEAL_NAME], search_modified(idx));
            char name[16];
            snprintf(name, sizeof(name), "D%d", idx);
            assert_string_equal(deals[i].values[DEAL_NAME], name);
        }
        crm_deals_free(deals, n);
        pages++;
    }

    assert_true(cursor.done);
    for (int i = 0; i < SEARCH_DEALS; i++) {
        if (seen[i] != 1)
            fail_msg("deal %d read %d times", i, seen[i]);
    }
    assert_int_equal(cursor.watermark, search_modified(SEARCH_DEALS - 1));
    /* The query restarted from the shared millisecond before the cap. */
    assert_non_null(strstr(r.canned.log.data, "search mark=10700 after=0\n"));
    assert_null(strstr(r.canned.log.data, "after=10000"));

    crm_cursor_clear(&cursor);
    free(seen);
    rig_stop(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sdk_signature_vectors),
        cmocka_unit_test(test_v3_timestamp_window),
        cmocka_unit_test(test_v3_timestamp_header_required),
        cmocka_unit_test(test_reserialised_body_refused),
        cmocka_unit_test(test_missing_signature_refused),
        cmocka_unit_test(test_v2_hex_case_insensitive),
        cmocka_unit_test(test_uri_decoding_rule),
        cmocka_unit_test(test_split_real_batch),
        cmocka_unit_test(test_split_limits),
        cmocka_unit_test(test_dedup_key_ignores_attempt),
        cmocka_unit_test(test_parse_property_change),
        cmocka_unit_test(test_parse_ignored),
        cmocka_unit_test(test_parse_generic_deal_form),
        cmocka_unit_test(test_parse_lifecycle_and_echo),
        cmocka_unit_test(test_parse_merge),
        cmocka_unit_test(test_answer_empty_ids),
        cmocka_unit_test(test_parse_invalid),
        cmocka_unit_test(test_early_dates_round_trip),
        cmocka_unit_test(test_provider_by_name),
        cmocka_unit_test(test_write_deals_207_and_creates),
        cmocka_unit_test(test_write_deals_rate_limited),
        cmocka_unit_test(test_read_deals_owners_stages),
        cmocka_unit_test(test_changed_since_past_the_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
