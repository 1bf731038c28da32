/* Integration test of the crmsim HubSpot simulator: starts the real binary
 * on a free port, receives its webhooks in-process, and checks the REST
 * shapes, signatures, change sources, rate limits, search and faults. */
#include "http_test.h"
#include "proc.h"
#include "test_env.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "base/crypto.h"
#include "model/postcode.h"
#include "net/http_server.h"

#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define SECRET "test-client-secret"
#define TOKEN "pat-test-token"
#define APP_ID "424242"
#define PORTAL_ID "9001"
#define START_TIMEOUT_MS 30000
#define WAIT_MS 10000
/* The seed deals are placed on this postcode table. */
#define POSTCODES "data/geo_uk/uk_postcode_units_area_M.csv"

/* One webhook POST as received. */
struct delivery {
    char *body;
    char *sig_v3;
    char *timestamp;
    char *sig_v1;
    char *version;
};

struct receiver {
    pthread_mutex_t mu;
    struct delivery *items;
    size_t count;
    struct http_server *server;
    char *url;
};

struct fixture {
    struct receiver rx;
    char *dir;
    pid_t sim;       /* generous rate limit */
    pid_t sim_tight; /* --rate-10s 5 */
    char *base;
    char *base_tight;
};

static struct fixture fx;

static char *dup_header(const struct http_request *req, const char *name)
{
    const char *v = http_request_header(req, name);
    return v ? xstrdup(v) : NULL;
}

static void on_webhook(void *ctx, const struct http_request *req,
                       struct http_response *resp)
{
    struct receiver *rx = ctx;
    struct delivery d = {
        .body = xstrndup(req->body, req->body_len),
        .sig_v3 = dup_header(req, "X-HubSpot-Signature-v3"),
        .timestamp = dup_header(req, "X-HubSpot-Request-Timestamp"),
        .sig_v1 = dup_header(req, "X-HubSpot-Signature"),
        .version = dup_header(req, "X-HubSpot-Signature-Version"),
    };

    pthread_mutex_lock(&rx->mu);
    rx->items = xrealloc(rx->items, (rx->count + 1) * sizeof(*rx->items));
    rx->items[rx->count++] = d;
    pthread_mutex_unlock(&rx->mu);
    http_response_set_body(resp, 200, xstrdup("{}"));
}

static void delivery_free(struct delivery *d)
{
    free(d->body);
    free(d->sig_v3);
    free(d->timestamp);
    free(d->sig_v1);
    free(d->version);
}

/* What a search over received events looks for. */
struct event_query {
    const char *object_id;
    const char *property; /* NULL: match on type only */
    const char *value;
    const char *type;      /* subscriptionType, or NULL for any */
    struct delivery found; /* copies, filled on a match */
    json_t *event;         /* the matching event, owned */
};

static bool event_matches(json_t *ev, const struct event_query *q)
{
    char id[32];
    snprintf(id, sizeof(id), "%" JSON_INTEGER_FORMAT,
             json_integer_value(json_object_get(ev, "objectId")));
    const char *prop = json_string_value(json_object_get(ev, "propertyName"));
    const char *value = json_string_value(json_object_get(ev, "propertyValue"));
    const char *type =
        json_string_value(json_object_get(ev, "subscriptionType"));
    if (strcmp(id, q->object_id) != 0)
        return false;
    if (q->type && (!type || strcmp(type, q->type) != 0))
        return false;
    if (!q->property)
        return true;
    return prop && strcmp(prop, q->property) == 0 && value &&
           strcmp(value, q->value) == 0;
}

static bool find_event(void *ctx)
{
    struct event_query *q = ctx;
    bool hit = false;

    pthread_mutex_lock(&fx.rx.mu);
    for (size_t i = 0; i < fx.rx.count && !hit; i++) {
        json_t *batch = json_loads(fx.rx.items[i].body, 0, NULL);
        size_t k;
        json_t *ev;
        json_array_foreach(batch, k, ev)
        {
            if (!event_matches(ev, q))
                continue;
            struct delivery *d = &fx.rx.items[i];
            q->found.body = xstrdup(d->body);
            q->found.sig_v3 = d->sig_v3 ? xstrdup(d->sig_v3) : NULL;
            q->found.timestamp = d->timestamp ? xstrdup(d->timestamp) : NULL;
            q->found.sig_v1 = d->sig_v1 ? xstrdup(d->sig_v1) : NULL;
            q->event = json_incref(ev);
            hit = true;
            break;
        }
        json_decref(batch);
    }
    pthread_mutex_unlock(&fx.rx.mu);
    return hit;
}

static void query_clear(struct event_query *q)
{
    delivery_free(&q->found);
    json_decref(q->event);
    memset(&q->found, 0, sizeof(q->found));
    q->event = NULL;
}

static char *url(const char *base, const char *path)
{
    return xasprintf("%s%s", base, path);
}

static const char *const auth[] = {"Authorization: Bearer " TOKEN, NULL};

/* Calls the simulator's API with the token; returns the JSON answer. */
static json_t *api(const char *base, const char *method, const char *path,
                   const char *body_text, long *status)
{
    json_t *body = body_text ? json_loads(body_text, 0, NULL) : NULL;
    char *u = url(base, path);
    json_t *out = http_test_json(method, u, auth, body, status);
    free(u);
    json_decref(body);
    return out;
}

static json_t *control(const char *method, const char *path,
                       const char *body_text, long *status)
{
    json_t *body = body_text ? json_loads(body_text, 0, NULL) : NULL;
    char *u = url(fx.base, path);
    json_t *out = http_test_json(method, u, NULL, body, status);
    free(u);
    json_decref(body);
    return out;
}

static bool sim_idle(void *ctx)
{
    long status;
    json_t *r = control("GET", "/_sim/idle", NULL, &status);
    bool idle = status == 200 && json_is_true(json_object_get(r, "idle"));
    json_decref(r);
    return idle;
}

static pid_t start_sim(const char *name, const char *rate, char **base)
{
    const char *bin = getenv("FS_SIM_BIN");
    char *data = test_shared_path("data/crm_deals");
    char *postcodes = test_shared_path(POSTCODES);
    char *port_file = xasprintf("%s/%s.port", fx.dir, name);
    const char *argv[] = {bin,
                          "hubspot",
                          "--listen",
                          "127.0.0.1:0",
                          "--data",
                          data,
                          "--webhook-url",
                          fx.rx.url,
                          "--client-secret",
                          SECRET,
                          "--app-id",
                          APP_ID,
                          "--portal-id",
                          PORTAL_ID,
                          "--token",
                          TOKEN,
                          "--rate-10s",
                          rate,
                          "--seed",
                          "7",
                          "--postcodes",
                          postcodes,
                          "--port-file",
                          port_file,
                          NULL};
    pid_t pid = -1;

    if (!bin || !*bin) {
        fprintf(stderr, "FS_SIM_BIN is not set\n");
        goto out;
    }
    pid = proc_spawn(argv, NULL, NULL);
    int port =
        pid > 0 ? proc_wait_port_file(port_file, pid, START_TIMEOUT_MS) : 0;
    if (port == 0) {
        if (pid > 0)
            proc_kill(pid);
        pid = -1;
        goto out;
    }
    *base = xasprintf("http://127.0.0.1:%d", port);
out:
    free(port_file);
    free(postcodes);
    free(data);
    return pid;
}

static int setup(void **state)
{
    struct http_server_config cfg = {
        .listen = "127.0.0.1:0",
        .max_body = 4 << 20,
        .on_request = on_webhook,
        .ctx = &fx.rx,
    };

    pthread_mutex_init(&fx.rx.mu, NULL);
    if (http_server_start(&cfg, &fx.rx.server) != FS_OK)
        return -1;
    fx.rx.url = xasprintf("http://127.0.0.1:%u/hooks/hubspot",
                          (unsigned)http_server_port(fx.rx.server));
    fx.dir = test_temp_dir();
    fx.sim = start_sim("sim", "100000", &fx.base);
    fx.sim_tight = start_sim("tight", "5", &fx.base_tight);
    return fx.sim > 0 && fx.sim_tight > 0 ? 0 : -1;
}

static int teardown(void **state)
{
    int rc = 0;

    /* Exit status 0 also means the sanitizers found no leak at exit. */
    if (fx.sim > 0 && proc_stop(fx.sim, 10000) != 0)
        rc = -1;
    if (fx.sim_tight > 0 && proc_stop(fx.sim_tight, 10000) != 0)
        rc = -1;
    http_server_stop(fx.rx.server);
    for (size_t i = 0; i < fx.rx.count; i++)
        delivery_free(&fx.rx.items[i]);
    free(fx.rx.items);
    free(fx.rx.url);
    free(fx.base);
    free(fx.base_tight);
    char *cmd = xasprintf("rm -rf '%s'", fx.dir);
    if (system(cmd) != 0)
        rc = -1;
    free(cmd);
    free(fx.dir);
    return rc;
}

static void test_lists_every_deal_by_paging(void **state)
{
    char *after = NULL;
    size_t total = 0, pages = 0;
    long status;

    do {
        char *path = after ? xasprintf("/crm/v3/objects/deals?limit=100&"
                                       "after=%s&properties=dealname",
                                       after)
                           : xstrdup("/crm/v3/objects/deals?limit=100&"
                                     "properties=dealname");
        json_t *page = api(fx.base, "GET", path, NULL, &status);
        free(path);
        assert_int_equal(status, 200);
        json_t *results = json_object_get(page, "results");
        assert_true(json_array_size(results) > 0);
        json_t *first = json_array_get(results, 0);
        if (pages == 0)
            assert_string_equal(json_string_value(json_object_get(first, "id")),
                                "20000000001");
        assert_non_null(json_string_value(
            json_object_get(json_object_get(first, "properties"), "dealname")));
        total += json_array_size(results);
        pages++;
        free(after);
        after = NULL;
        const char *next = json_string_value(json_object_get(
            json_object_get(json_object_get(page, "paging"), "next"), "after"));
        if (next)
            after = xstrdup(next);
        json_decref(page);
    } while (after && pages < 200);

    assert_int_equal(total, 8800);
    assert_int_equal(pages, 88);
}

static void test_api_patch_sends_signed_integration_webhook(void **state)
{
    long status;
    json_t *r = api(fx.base, "PATCH", "/crm/v3/objects/deals/20000000005",
                    "{\"properties\":{\"amount\":\"777.5\"}}", &status);
    assert_int_equal(status, 200);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(r, "properties"), "amount")),
                        "777.5");
    json_decref(r);

    struct event_query q = {
        .object_id = "20000000005", .property = "amount", .value = "777.5"};
    assert_true(http_test_poll(find_event, &q, WAIT_MS));
    assert_string_equal(
        json_string_value(json_object_get(q.event, "changeSource")),
        "INTEGRATION");
    assert_string_equal(json_string_value(json_object_get(q.event, "sourceId")),
                        APP_ID);
    assert_int_equal(json_integer_value(json_object_get(q.event, "portalId")),
                     atoi(PORTAL_ID));
    assert_int_equal(json_integer_value(json_object_get(q.event, "appId")),
                     atoi(APP_ID));

    /* v3: base64(HMAC-SHA256(secret, "POST" + url + body + timestamp)). */
    assert_non_null(q.found.sig_v3);
    assert_non_null(q.found.timestamp);
    char *msg =
        xasprintf("POST%s%s%s", fx.rx.url, q.found.body, q.found.timestamp);
    uint8_t mac[CRYPTO_SHA256_LEN];
    crypto_hmac_sha256(SECRET, strlen(SECRET), msg, strlen(msg), mac);
    char *expected = crypto_base64(mac, sizeof(mac));
    assert_true(crypto_equal(expected, strlen(expected), q.found.sig_v3,
                             strlen(q.found.sig_v3)));
    int64_t ts = strtoll(q.found.timestamp, NULL, 10);
    assert_true(llabs(clock_now_ms() - ts) < 300000);

    /* v1: hex(SHA-256(secret + body)). */
    char *v1_input = xasprintf("%s%s", SECRET, q.found.body);
    uint8_t digest[CRYPTO_SHA256_LEN];
    crypto_sha256(v1_input, strlen(v1_input), digest);
    char *v1 = crypto_hex(digest, sizeof(digest));
    assert_string_equal(v1, q.found.sig_v1);

    free(v1);
    free(v1_input);
    free(expected);
    free(msg);
    query_clear(&q);
}

static void test_control_change_is_crm_ui(void **state)
{
    long status;
    json_t *r = control("PATCH", "/_sim/deals/20000000006",
                        "{\"fields\":{\"name\":\"Renamed by rep\"},"
                        "\"user_id\":\"5100007\"}",
                        &status);
    assert_int_equal(status, 200);
    json_decref(r);

    struct event_query q = {.object_id = "20000000006",
                            .property = "dealname",
                            .value = "Renamed by rep"};
    assert_true(http_test_poll(find_event, &q, WAIT_MS));
    assert_string_equal(
        json_string_value(json_object_get(q.event, "changeSource")), "CRM_UI");
    assert_string_equal(json_string_value(json_object_get(q.event, "sourceId")),
                        "userId:5100007");
    assert_string_equal(
        json_string_value(json_object_get(q.event, "subscriptionType")),
        "deal.propertyChange");
    query_clear(&q);
}

static void test_batch_update_partial_207(void **state)
{
    long status;
    json_t *r = api(fx.base, "POST", "/crm/v3/objects/deals/batch/update",
                    "{\"inputs\":[{\"id\":\"20000000010\",\"properties\":"
                    "{\"amount\":\"5\"}},{\"id\":\"99999999999\","
                    "\"properties\":{\"amount\":\"1\"}}]}",
                    &status);
    assert_int_equal(status, 207);
    assert_int_equal(json_array_size(json_object_get(r, "results")), 1);
    json_t *err = json_array_get(json_object_get(r, "errors"), 0);
    assert_string_equal(json_string_value(json_object_get(err, "category")),
                        "OBJECT_NOT_FOUND");
    json_t *ids = json_object_get(json_object_get(err, "context"), "ids");
    assert_string_equal(json_string_value(json_array_get(ids, 0)),
                        "99999999999");
    assert_int_equal(json_integer_value(json_object_get(r, "numErrors")), 1);
    json_decref(r);

    r = api(fx.base, "POST", "/crm/v3/objects/deals/batch/update",
            "{\"inputs\":[{\"id\":\"20000000010\",\"properties\":"
            "{\"amount\":\"6\"}}]}",
            &status);
    assert_int_equal(status, 200);
    assert_string_equal(json_string_value(json_object_get(r, "status")),
                        "COMPLETE");
    json_decref(r);
}

static void test_rate_limit_answers_429_with_policy(void **state)
{
    struct http_test_response resp;
    char *u = url(fx.base_tight, "/crm/v3/owners?limit=1");
    int ok = 0;
    bool limited = false;

    for (int i = 0; i < 6 && !limited; i++) {
        assert_true(http_test_request("GET", u, auth, NULL, &resp));
        if (resp.status == 200) {
            char *remaining =
                http_test_header(&resp, "X-HubSpot-RateLimit-Remaining");
            assert_non_null(remaining);
            assert_int_equal(atoi(remaining), 4 - ok);
            free(remaining);
            ok++;
        } else {
            assert_int_equal(resp.status, 429);
            assert_string_equal(
                json_string_value(json_object_get(resp.json, "policyName")),
                "TEN_SECONDLY_ROLLING");
            assert_string_equal(
                json_string_value(json_object_get(resp.json, "errorType")),
                "RATE_LIMIT");
            limited = true;
        }
        http_test_response_free(&resp);
    }
    free(u);
    assert_int_equal(ok, 5);
    assert_true(limited);

    long status;
    char *su = url(fx.base_tight, "/_sim/stats");
    json_t *stats = http_test_json("GET", su, NULL, NULL, &status);
    free(su);
    assert_int_equal(json_integer_value(json_object_get(stats, "api_calls")),
                     6);
    assert_int_equal(json_integer_value(json_object_get(stats, "rate_limited")),
                     1);
    json_decref(stats);
}

static void test_search_gte_last_modified_finds_change(void **state)
{
    long status;
    int64_t since = 0;
    json_t *r = api(fx.base, "PATCH", "/crm/v3/objects/deals/20000000020",
                    "{\"properties\":{\"dealstage\":\"engaging\","
                    "\"closedate\":\"2018-05-01\"}}",
                    &status);
    assert_int_equal(status, 200);
    const char *modified = json_string_value(json_object_get(
        json_object_get(r, "properties"), "hs_lastmodifieddate"));
    assert_int_equal(clock_parse_iso(modified, &since), 0);
    json_decref(r);

    char *body = xasprintf(
        "{\"filterGroups\":[{\"filters\":[{\"propertyName\":"
        "\"hs_lastmodifieddate\",\"operator\":\"GTE\",\"value\":\"%" PRId64
        "\"}]}],\"sorts\":[{\"propertyName\":\"hs_lastmodifieddate\","
        "\"direction\":\"ASCENDING\"}],\"properties\":[\"dealstage\","
        "\"closedate\"],\"limit\":100}",
        since);
    r = api(fx.base, "POST", "/crm/v3/objects/deals/search", body, &status);
    free(body);
    assert_int_equal(status, 200);
    assert_true(json_integer_value(json_object_get(r, "total")) >= 1);

    bool found = false;
    size_t i;
    json_t *obj;
    json_array_foreach(json_object_get(r, "results"), i, obj)
    {
        json_t *props = json_object_get(obj, "properties");
        int64_t t = 0;
        assert_int_equal(clock_parse_iso(json_string_value(json_object_get(
                                             props, "hs_lastmodifieddate")),
                                         &t),
                         0);
        assert_true(t >= since);
        if (strcmp(json_string_value(json_object_get(obj, "id")),
                   "20000000020") == 0) {
            found = true;
            assert_string_equal(
                json_string_value(json_object_get(props, "closedate")),
                "2018-05-01T00:00:00.000Z");
        }
    }
    assert_true(found);
    json_decref(r);

    r = api(fx.base, "POST", "/crm/v3/objects/deals/search",
            "{\"limit\":100,\"after\":\"9950\"}", &status);
    assert_int_equal(status, 400);
    assert_non_null(
        strstr(json_string_value(json_object_get(r, "message")), "10000"));
    json_decref(r);
}

static void test_drop_fault_drops_webhooks(void **state)
{
    long status;
    assert_true(http_test_poll(sim_idle, NULL, WAIT_MS));
    json_t *r = control("POST", "/_sim/faults", "{\"drop\":1.0}", &status);
    assert_int_equal(status, 200);
    json_decref(r);
    r = control("GET", "/_sim/stats", NULL, &status);
    json_int_t dropped_before =
        json_integer_value(json_object_get(r, "events_dropped"));
    json_decref(r);

    r = control("PATCH", "/_sim/deals/20000000030",
                "{\"fields\":{\"name\":\"dropped name\"}}", &status);
    assert_int_equal(status, 200);
    json_decref(r);
    assert_true(http_test_poll(sim_idle, NULL, WAIT_MS));

    r = control("GET", "/_sim/stats", NULL, &status);
    assert_true(json_integer_value(json_object_get(r, "events_dropped")) >
                dropped_before);
    json_decref(r);
    struct event_query q = {.object_id = "20000000030",
                            .property = "dealname",
                            .value = "dropped name"};
    assert_false(find_event(&q));

    /* Healing: with the fault off the next change arrives again. */
    r = control("POST", "/_sim/faults", "{\"drop\":0}", &status);
    json_decref(r);
    r = control("PATCH", "/_sim/deals/20000000030",
                "{\"fields\":{\"name\":\"kept name\"}}", &status);
    assert_int_equal(status, 200);
    json_decref(r);
    struct event_query q2 = {.object_id = "20000000030",
                             .property = "dealname",
                             .value = "kept name"};
    assert_true(http_test_poll(find_event, &q2, WAIT_MS));
    query_clear(&q2);
}

static void test_errors_and_unique_fieldsync_id(void **state)
{
    long status;
    struct http_test_response resp;
    char *u = url(fx.base, "/crm/v3/objects/deals/20000000001");

    assert_true(http_test_request("GET", u, NULL, NULL, &resp));
    assert_int_equal(resp.status, 401);
    assert_string_equal(
        json_string_value(json_object_get(resp.json, "category")),
        "INVALID_AUTHENTICATION");
    http_test_response_free(&resp);
    free(u);

    json_t *r = api(fx.base, "PATCH", "/crm/v3/objects/deals/20000000001",
                    "{\"properties\":{\"nope\":\"x\"}}", &status);
    assert_int_equal(status, 400);
    json_t *e = json_array_get(json_object_get(r, "errors"), 0);
    assert_string_equal(json_string_value(json_object_get(e, "code")),
                        "PROPERTY_DOESNT_EXIST");
    json_decref(r);

    r = api(fx.base, "POST", "/crm/v3/objects/deals",
            "{\"properties\":{\"dealname\":\"field deal\",\"fieldsync_id\":"
            "\"fs-rec-1\",\"dealstage\":\"prospecting\"}}",
            &status);
    assert_int_equal(status, 201);
    char *new_id = xstrdup(json_string_value(json_object_get(r, "id")));
    json_decref(r);
    r = api(fx.base, "POST", "/crm/v3/objects/deals",
            "{\"properties\":{\"dealname\":\"again\",\"fieldsync_id\":"
            "\"fs-rec-1\"}}",
            &status);
    assert_int_equal(status, 409);
    assert_string_equal(json_string_value(json_object_get(r, "category")),
                        "CONFLICT");
    assert_non_null(
        strstr(json_string_value(json_object_get(r, "message")), new_id));
    json_decref(r);

    r = api(fx.base, "GET",
            "/crm/v3/objects/deals/fs-rec-1?idProperty=fieldsync_id", NULL,
            &status);
    assert_int_equal(status, 200);
    assert_string_equal(json_string_value(json_object_get(r, "id")), new_id);
    json_decref(r);
    free(new_id);

    r = api(fx.base, "GET", "/crm/v3/objects/nothing", NULL, &status);
    assert_int_equal(status, 404);
    json_decref(r);
}

static void test_merge_makes_alias(void **state)
{
    long status;
    json_t *r = api(fx.base, "POST", "/crm/v3/objects/deals/merge",
                    "{\"primaryObjectId\":\"20000000040\","
                    "\"objectIdToMerge\":\"20000000041\"}",
                    &status);
    assert_int_equal(status, 200);
    assert_string_equal(json_string_value(json_object_get(r, "id")),
                        "20000000040");
    json_decref(r);

    r = api(fx.base, "GET", "/crm/v3/objects/deals/20000000041", NULL, &status);
    assert_int_equal(status, 200);
    assert_string_equal(json_string_value(json_object_get(r, "id")),
                        "20000000040");
    json_decref(r);

    struct event_query q = {.object_id = "20000000040", .type = "deal.merge"};
    assert_true(http_test_poll(find_event, &q, WAIT_MS));
    json_t *merged = json_object_get(q.event, "mergedObjectIds");
    assert_int_equal(json_integer_value(json_array_get(merged, 0)),
                     20000000041LL);
    assert_int_equal(
        json_integer_value(json_object_get(q.event, "newObjectId")),
        20000000040LL);
    query_clear(&q);
}

/* ---- the neutral control API ---- */

static json_t *control_at(const char *base, const char *method,
                          const char *path, const char *body_text, long *status)
{
    json_t *body = body_text ? json_loads(body_text, 0, NULL) : NULL;
    char *u = url(base, path);
    json_t *out = http_test_json(method, u, NULL, body, status);
    free(u);
    json_decref(body);
    return out;
}

static const char *field_of(const json_t *deal, const char *field)
{
    return json_string_value(
        json_object_get(json_object_get(deal, "fields"), field));
}

static void assert_control_error(const char *method, const char *path,
                                 const char *body, long want_status,
                                 const char *code, const char *field)
{
    long status;
    json_t *r = control(method, path, body, &status);
    assert_int_equal(status, want_status);
    assert_string_equal(json_string_value(json_object_get(r, "error")), code);
    if (field)
        assert_string_equal(json_string_value(json_object_get(r, "field")),
                            field);
    json_decref(r);
}

static void test_control_api_speaks_field_names(void **state)
{
    long status;
    json_t *r = control("GET", "/_sim/deals/20000000001", NULL, &status);
    assert_int_equal(status, 200);
    assert_string_equal(json_string_value(json_object_get(r, "id")),
                        "20000000001");
    assert_true(json_is_null(json_object_get(r, "our_id")));
    assert_true(json_is_false(json_object_get(r, "archived")));
    assert_true(json_is_null(json_object_get(r, "merged_into")));
    assert_string_equal(json_string_value(json_object_get(r, "pipeline")),
                        "default");
    assert_string_equal(field_of(r, "name"), "1C1I7A6R");
    assert_string_equal(field_of(r, "stage"), "closedwon");
    assert_string_equal(field_of(r, "close_date"), "2017-03-01");
    assert_string_equal(field_of(r, "engage_date"), "2016-10-20");
    assert_string_equal(field_of(r, "amount"), "1054");
    assert_int_equal(json_object_size(json_object_get(r, "fields")), 10);
    assert_true(json_integer_value(
                    json_object_get(json_object_get(r, "times"), "name")) > 0);
    json_decref(r);

    /* A CRM user's edit in canonical values: HubSpot shows and reports it
     * in its own formats. */
    r = control("PATCH", "/_sim/deals/20000000050",
                "{\"fields\":{\"close_date\":\"2018-06-30\",\"amount\":"
                "\"12.50\",\"stage\":\"engaging\"}}",
                &status);
    assert_int_equal(status, 200);
    assert_string_equal(field_of(r, "close_date"), "2018-06-30");
    assert_string_equal(field_of(r, "amount"), "12.5");
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(r, "times"), "close_date")),
                     json_integer_value(json_object_get(r, "modified")));
    json_decref(r);
    r = api(fx.base, "GET",
            "/crm/v3/objects/deals/20000000050?properties=closedate,amount,"
            "dealstage",
            NULL, &status);
    json_t *props = json_object_get(r, "properties");
    assert_string_equal(json_string_value(json_object_get(props, "closedate")),
                        "2018-06-30T00:00:00.000Z");
    assert_string_equal(json_string_value(json_object_get(props, "amount")),
                        "12.5");
    assert_string_equal(json_string_value(json_object_get(props, "dealstage")),
                        "engaging");
    json_decref(r);
    struct event_query q = {.object_id = "20000000050",
                            .property = "closedate",
                            .value = "1530316800000"};
    assert_true(http_test_poll(find_event, &q, WAIT_MS));
    assert_string_equal(
        json_string_value(json_object_get(q.event, "changeSource")), "CRM_UI");
    assert_string_equal(json_string_value(json_object_get(q.event, "sourceId")),
                        "userId:5100001");
    query_clear(&q);

    assert_control_error("PATCH", "/_sim/deals/20000000050",
                         "{\"fields\":{\"dealname\":\"x\"}}", 400,
                         "unknown_field", "dealname");
    assert_control_error("PATCH", "/_sim/deals/20000000050",
                         "{\"fields\":{\"stage\":\"nope\"}}", 400,
                         "invalid_value", "stage");
    assert_control_error("PATCH", "/_sim/deals/20000000050",
                         "{\"fields\":{\"close_date\":\"30/06/2018\"}}", 400,
                         "invalid_value", "close_date");
    assert_control_error("PATCH", "/_sim/deals/20000000050",
                         "{\"properties\":{}}", 400, "unknown_key",
                         "properties");
    assert_control_error("PATCH", "/_sim/deals/20000000050", "[1]", 400,
                         "invalid_json", NULL);
    assert_control_error("PATCH", "/_sim/deals/1", "{\"fields\":{}}", 404,
                         "not_found", NULL);
    assert_control_error("GET", "/_sim/deals?limit=0", NULL, 400,
                         "invalid_param", "limit");
    assert_control_error("PUT", "/_sim/deals", NULL, 405, "method_not_allowed",
                         NULL);
    /* The refused edits changed nothing. */
    r = control("GET", "/_sim/deals/20000000050", NULL, &status);
    assert_string_equal(field_of(r, "stage"), "engaging");
    assert_string_equal(field_of(r, "close_date"), "2018-06-30");
    json_decref(r);

    r = control("GET", "/_sim/deals?offset=8790&limit=5", NULL, &status);
    assert_int_equal(status, 200);
    json_t *deals = json_object_get(r, "deals");
    assert_int_equal(json_array_size(deals), 5);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(deals, 0), "id")),
        "20000008791");
    assert_int_equal(json_integer_value(json_object_get(r, "next_offset")),
                     8795);
    assert_true(json_integer_value(json_object_get(r, "total")) >= 8800);
    json_decref(r);
}

static void test_control_delete_restore_merge_create(void **state)
{
    long status;
    json_t *r = control("DELETE", "/_sim/deals/20000000060", NULL, &status);
    assert_int_equal(status, 200);
    assert_true(json_is_true(json_object_get(r, "archived")));
    json_decref(r);
    r = api(fx.base, "GET", "/crm/v3/objects/deals/20000000060", NULL, &status);
    assert_int_equal(status, 404);
    json_decref(r);
    struct event_query q = {.object_id = "20000000060",
                            .type = "deal.deletion"};
    assert_true(http_test_poll(find_event, &q, WAIT_MS));
    query_clear(&q);

    r = control("POST", "/_sim/deals/20000000060/restore", NULL, &status);
    assert_int_equal(status, 200);
    assert_true(json_is_false(json_object_get(r, "archived")));
    json_decref(r);
    assert_control_error("POST", "/_sim/deals/20000000060/restore", NULL, 400,
                         "not_deleted", NULL);
    struct event_query back = {.object_id = "20000000060",
                               .type = "deal.restore"};
    assert_true(http_test_poll(find_event, &back, WAIT_MS));
    query_clear(&back);

    r = control("POST", "/_sim/merge",
                "{\"primary\":\"20000000061\",\"merged\":[\"20000000062\","
                "\"20000000063\"]}",
                &status);
    assert_int_equal(status, 200);
    assert_string_equal(json_string_value(json_object_get(r, "id")),
                        "20000000061");
    json_decref(r);
    r = control("GET", "/_sim/deals/20000000062", NULL, &status);
    assert_int_equal(status, 200);
    assert_true(json_is_true(json_object_get(r, "archived")));
    assert_string_equal(json_string_value(json_object_get(r, "merged_into")),
                        "20000000061");
    json_decref(r);
    assert_control_error("PATCH", "/_sim/deals/20000000062",
                         "{\"fields\":{\"name\":\"x\"}}", 409, "merged", NULL);
    assert_control_error("POST", "/_sim/merge",
                         "{\"primary\":\"20000000061\",\"merged\":["
                         "\"20000000061\"]}",
                         400, "invalid_value", "merged");
    struct event_query m = {.object_id = "20000000061", .type = "deal.merge"};
    assert_true(http_test_poll(find_event, &m, WAIT_MS));
    json_t *ids = json_object_get(m.event, "mergedObjectIds");
    assert_int_equal(json_array_size(ids), 2);
    assert_int_equal(json_integer_value(json_array_get(ids, 1)), 20000000063LL);
    query_clear(&m);

    r = control("POST", "/_sim/deals",
                "{\"fields\":{\"name\":\"Made in the CRM\",\"amount\":250},"
                "\"user_id\":5100002}",
                &status);
    assert_int_equal(status, 201);
    assert_string_equal(field_of(r, "name"), "Made in the CRM");
    assert_string_equal(field_of(r, "amount"), "250");
    assert_true(
        json_is_null(json_object_get(json_object_get(r, "fields"), "stage")));
    assert_string_equal(json_string_value(json_object_get(r, "pipeline")),
                        "default");
    char *id = xstrdup(json_string_value(json_object_get(r, "id")));
    json_decref(r);
    struct event_query c = {.object_id = id, .type = "deal.creation"};
    assert_true(http_test_poll(find_event, &c, WAIT_MS));
    assert_string_equal(json_string_value(json_object_get(c.event, "sourceId")),
                        "userId:5100002");
    query_clear(&c);
    free(id);
}

/* The postcode table as postcode -> "lat,lng" in canonical form. */
static json_t *load_postcodes(void)
{
    char *path = test_shared_path(POSTCODES);
    FILE *in = fopen(path, "r");
    json_t *map = json_object();
    char line[512];
    int pc = -1, lat = -1, lng = -1;
    bool header = true;

    free(path);
    assert_non_null(in);
    while (fgets(line, sizeof(line), in)) {
        const char *cols[16];
        int n = 0;
        line[strcspn(line, "\r\n")] = '\0';
        for (char *p = line; n < 16;) {
            cols[n++] = p;
            char *comma = strchr(p, ',');
            if (!comma)
                break;
            *comma = '\0';
            p = comma + 1;
        }
        for (int i = 0; header && i < n; i++) {
            pc = strcmp(cols[i], "postcode") == 0 ? i : pc;
            lat = strcmp(cols[i], "latitude") == 0 ? i : lat;
            lng = strcmp(cols[i], "longitude") == 0 ? i : lng;
        }
        if (!header && n > lng && n > lat && n > pc) {
            char *where = location_format(strtod(cols[lat], NULL),
                                          strtod(cols[lng], NULL));
            json_object_set_new(map, cols[pc], json_string(where));
            free(where);
        }
        header = false;
    }
    fclose(in);
    return map;
}

static json_t *all_control_deals(const char *base)
{
    json_t *all = json_array();
    long status;

    for (int offset = 0;; offset += 5000) {
        char *path = xasprintf("/_sim/deals?limit=5000&offset=%d", offset);
        json_t *page = control_at(base, "GET", path, NULL, &status);
        free(path);
        assert_int_equal(status, 200);
        json_array_extend(all, json_object_get(page, "deals"));
        bool more = json_is_integer(json_object_get(page, "next_offset"));
        json_decref(page);
        if (!more)
            return all;
    }
}

static void test_seed_deals_are_placed_on_postcodes(void **state)
{
    json_t *table = load_postcodes();
    json_t *deals = all_control_deals(fx.base);
    json_t *same_seed = all_control_deals(fx.base_tight);
    size_t located = 0, postcode_only = 0, neither = 0, seeds = 0;
    size_t i;
    json_t *d;

    json_array_foreach(deals, i, d)
    {
        const char *name = field_of(d, "name");
        const char *postcode = field_of(d, "postcode");
        const char *location = field_of(d, "location");
        if (!name || strlen(name) != 8)
            continue; /* created by a test, not seeded */
        seeds++;
        /* The other simulator, loaded from the same files, placed the
         * deal the same way. */
        json_t *twin = json_array_get(same_seed, i);
        assert_string_equal(field_of(twin, "name"), name);
        assert_true(json_equal(
            json_object_get(json_object_get(twin, "fields"), "postcode"),
            json_object_get(json_object_get(d, "fields"), "postcode")));
        assert_true(json_equal(
            json_object_get(json_object_get(twin, "fields"), "location"),
            json_object_get(json_object_get(d, "fields"), "location")));
        if (postcode && location) {
            located++;
            assert_string_equal(
                json_string_value(json_object_get(table, postcode)), location);
        } else if (postcode) {
            postcode_only++;
            assert_non_null(json_object_get(table, postcode));
        } else {
            assert_null(location);
            neither++;
        }
    }
    assert_true(seeds >= 8700);
    assert_true(located > seeds * 85 / 100);
    assert_true(postcode_only > seeds / 50 && postcode_only < seeds / 10);
    assert_true(neither > seeds / 50 && neither < seeds / 10);
    json_decref(same_seed);
    json_decref(deals);
    json_decref(table);

    /* HubSpot shows them as the postcode and location properties. */
    long status;
    json_t *c = control("GET", "/_sim/deals/20000000001", NULL, &status);
    json_t *r = api(fx.base, "GET",
                    "/crm/v3/objects/deals/20000000001?properties=postcode,"
                    "location",
                    NULL, &status);
    json_t *props = json_object_get(r, "properties");
    assert_true(
        json_equal(json_object_get(props, "postcode"),
                   json_object_get(json_object_get(c, "fields"), "postcode")));
    assert_true(
        json_equal(json_object_get(props, "location"),
                   json_object_get(json_object_get(c, "fields"), "location")));
    json_decref(r);
    json_decref(c);
}

/* Last of all: the generous simulator refuses deal calls for 10 s after. */
static void test_exhaust_spends_the_ten_secondly_window(void **state)
{
    long status;
    json_t *r =
        control("POST", "/_sim/limits/exhaust", "{\"now\":true}", &status);

    assert_int_equal(status, 400);
    assert_string_equal(json_string_value(json_object_get(r, "error")),
                        "unknown_key");
    json_decref(r);
    json_t *stats = control("GET", "/_sim/stats", NULL, &status);
    json_int_t limited =
        json_integer_value(json_object_get(stats, "rate_limited"));
    json_decref(stats);

    r = control("POST", "/_sim/limits/exhaust", NULL, &status);
    assert_int_equal(status, 200);
    assert_true(json_is_true(json_object_get(r, "exhausted")));
    json_decref(r);

    /* The next deal call gets HubSpot's own 429, with nothing left. */
    struct http_test_response resp;
    char *u = url(fx.base, "/crm/v3/objects/deals/20000000001");
    assert_true(http_test_request("GET", u, auth, NULL, &resp));
    assert_int_equal(resp.status, 429);
    assert_string_equal(
        json_string_value(json_object_get(resp.json, "policyName")),
        "TEN_SECONDLY_ROLLING");
    char *remaining = http_test_header(&resp, "X-HubSpot-RateLimit-Remaining");
    assert_string_equal(remaining, "0");
    free(remaining);
    http_test_response_free(&resp);
    free(u);

    /* Control calls are outside the CRM's budget; the refusal counted. */
    stats = control("GET", "/_sim/stats", NULL, &status);
    assert_int_equal(status, 200);
    assert_int_equal(json_integer_value(json_object_get(stats, "rate_limited")),
                     limited + 1);
    json_decref(stats);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lists_every_deal_by_paging),
        cmocka_unit_test(test_api_patch_sends_signed_integration_webhook),
        cmocka_unit_test(test_control_change_is_crm_ui),
        cmocka_unit_test(test_batch_update_partial_207),
        cmocka_unit_test(test_rate_limit_answers_429_with_policy),
        cmocka_unit_test(test_search_gte_last_modified_finds_change),
        cmocka_unit_test(test_drop_fault_drops_webhooks),
        cmocka_unit_test(test_errors_and_unique_fieldsync_id),
        cmocka_unit_test(test_merge_makes_alias),
        cmocka_unit_test(test_control_api_speaks_field_names),
        cmocka_unit_test(test_control_delete_restore_merge_create),
        cmocka_unit_test(test_seed_deals_are_placed_on_postcodes),
        cmocka_unit_test(test_exhaust_spends_the_ten_secondly_window),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
