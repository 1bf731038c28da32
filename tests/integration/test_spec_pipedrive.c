/* fieldsync and crmsim pipedrive checked against Pipedrive's own OpenAPI
 * documents (shared/specs/pipedrive): every API call of a working day
 * (connect, import, pushes, creates, backstop reads with the changelog,
 * merges, deletes) goes through Stoplight's prism validating proxy, one
 * for the v1 document and one for v2, and the day fails on the first
 * request or response that does not match. A small router in the test
 * sends /api/v2/... to the v2 proxy and /v1/... to the v1 one, as both
 * documents name their paths from their own server roots. prism comes
 * from npm through scripts/install-prism.sh (test_prism_bin). */
#include "http_test.h"
#include "proc.h"
#include "stack.h"
#include "stack_pipedrive.h"

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "net/http_client.h"
#include "net/http_server.h"
#include "test_env.h"

#include <jansson.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* prism reads a 1-2 MB document before it listens. */
#define PRISM_START_MS 180000
#define FORWARD_TIMEOUT_MS 30000
#define VIOLATIONS_SHOWN 20
/* Backstop passes through two validating proxies are slow. */
#define PASSES_WAIT_MS 120000
#define SLOW_TRIES 4

enum { SPEC_V1, SPEC_V2, SPEC_COUNT };

static const char *const spec_files[SPEC_COUNT] = {
    "specs/pipedrive/openapi-v1.yaml",
    "specs/pipedrive/openapi-v2.yaml",
};
static const char *const spec_roots[SPEC_COUNT] = {"/v1", "/api/v2"};

struct router {
    pthread_mutex_t mu;
    char *prism_base[SPEC_COUNT]; /* http://127.0.0.1:PORT */
    pid_t prism[SPEC_COUNT];
    struct http_server *server;
    json_t *violations; /* [{method, path, validation}] */
    json_t *seen;       /* {"GET /v2/deals": count} by path without ids */
    int64_t calls;
};

static struct router rt;
static struct stack st;

/* "/api/v2/deals/12/x" -> "GET /api/v2/deals/{id}/x", for the tally. */
static char *route_name(const char *method, const char *path)
{
    struct buf b = {0};

    buf_appendf(&b, "%s ", method);
    for (const char *p = path; *p;) {
        const char *slash = strchr(p + 1, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        bool digits = len > 1 && strspn(p + 1, "0123456789") == len - 1;
        if (digits)
            buf_append_str(&b, "/{id}");
        else
            buf_append(&b, p, len);
        p += len;
    }
    return buf_steal(&b);
}

static void note_call(const char *method, const char *path, const json_t *body)
{
    char *name = route_name(method, path);
    json_t *problems = json_object_get(body, "validation");
    const char *type = json_string_value(json_object_get(body, "type"));

    pthread_mutex_lock(&rt.mu);
    rt.calls++;
    json_object_set_new(
        rt.seen, name,
        json_integer(json_integer_value(json_object_get(rt.seen, name)) + 1));
    if (type && strstr(type, "stoplight.io/prism/errors"))
        json_array_append_new(rt.violations,
                              json_pack("{s:s, s:s, s:s, s:O?}", "method",
                                        method, "path", path, "type", type,
                                        "validation", problems));
    pthread_mutex_unlock(&rt.mu);
    free(name);
}

static void copy_header(const struct http_client_response *from,
                        struct http_response *to, const char *name)
{
    char *value = http_client_response_header(from, name);

    if (value)
        http_response_add_header(to, name, value);
    free(value);
}

/* Forwards one call to the proxy of its document, without the root. */
static void on_route(void *ctx, const struct http_request *req,
                     struct http_response *resp)
{
    int spec = -1;

    for (int i = 0; i < SPEC_COUNT; i++) {
        size_t n = strlen(spec_roots[i]);
        if (strncmp(req->raw_url, spec_roots[i], n) == 0 &&
            (req->raw_url[n] == '/' || req->raw_url[n] == '?'))
            spec = i;
    }
    if (spec < 0) {
        note_call(req->method, req->path,
                  json_pack("{s:s}", "type",
                            "stoplight.io/prism/errors#NO_DOCUMENT"));
        http_response_error(resp, 404, "not_found", NULL,
                            "no Pipedrive document has this root");
        return;
    }
    const char *rest = req->raw_url + strlen(spec_roots[spec]);
    char *url = xasprintf("%s%s", rt.prism_base[spec], rest);
    const char *token = http_request_header(req, "x-api-token");
    const char *type = http_request_header(req, "Content-Type");
    char *h_token = token ? xasprintf("x-api-token: %s", token) : NULL;
    char *h_type = type ? xasprintf("Content-Type: %s", type) : NULL;
    const char *headers[4] = {"Accept: application/json"};
    size_t nh = 1;
    if (h_token)
        headers[nh++] = h_token;
    if (h_type)
        headers[nh++] = h_type;
    headers[nh] = NULL;
    struct http_client *client = http_client_new();
    struct http_client_response out = {0};

    fs_result r =
        http_client_request(client, req->method, url, headers, req->body,
                            req->body_len, FORWARD_TIMEOUT_MS, &out);
    if (r != FS_OK) {
        http_response_error(resp, 502, "unavailable", NULL, "prism is gone");
    } else {
        json_t *body = json_loadb(out.body.data, out.body.len, 0, NULL);
        note_call(req->method, req->path, body);
        json_decref(body);
        http_response_set_body(resp, (int)out.status,
                               xstrndup(out.body.data, out.body.len));
        copy_header(&out, resp, "x-ratelimit-limit");
        copy_header(&out, resp, "x-ratelimit-remaining");
        copy_header(&out, resp, "x-ratelimit-reset");
    }
    http_client_response_free(&out);
    http_client_free(client);
    free(h_type);
    free(h_token);
    free(url);
}

static int free_port(void)
{
    struct http_server *probe = NULL;
    struct http_server_config cfg = {
        .listen = "127.0.0.1:0", .max_body = 1024, .on_request = on_route};
    if (http_server_start(&cfg, &probe) != FS_OK)
        return 0;
    int port = http_server_port(probe);
    http_server_stop(probe);
    return port;
}

struct up_wait {
    const char *base;
};

/* prism answers anything (a 404 of its own for /) once it listens. */
static bool listening(void *ctx)
{
    struct up_wait *w = ctx;
    struct http_test_response resp;
    bool up =
        http_test_request("GET", w->base, NULL, NULL, &resp) && resp.status > 0;
    http_test_response_free(&resp);
    return up;
}

/* The stack's crm_front: both proxies in front of the simulator, and the
 * router in front of them. */
static char *start_front(void *ctx, const char *sim_base)
{
    char *install_log = xasprintf("%s/install-prism.out", st.dir);
    char *prism = test_prism_bin(install_log);

    free(install_log);
    if (!prism)
        return NULL;
    for (int i = 0; i < SPEC_COUNT; i++) {
        char *spec = test_shared_path(spec_files[i]);
        char *upstream = xasprintf("%s%s", sim_base, spec_roots[i]);
        char *port = xasprintf("%d", free_port());
        char *log = xasprintf("%s/prism-%s.log", st.dir ? st.dir : "/tmp",
                              i == SPEC_V1 ? "v1" : "v2");
        const char *argv[] = {prism, "proxy", "--errors", "-h",     "127.0.0.1",
                              "-p",  port,    spec,       upstream, NULL};
        rt.prism[i] = proc_spawn(argv, NULL, log);
        rt.prism_base[i] = xasprintf("http://127.0.0.1:%s", port);
        free(log);
        free(port);
        free(upstream);
        free(spec);
    }
    free(prism);
    for (int i = 0; i < SPEC_COUNT; i++) {
        struct up_wait w = {rt.prism_base[i]};
        if (rt.prism[i] <= 0 ||
            !http_test_poll(listening, &w, PRISM_START_MS)) {
            fprintf(stderr, "test_spec_pipedrive: prism (%s) did not start\n",
                    spec_files[i]);
            return NULL;
        }
    }
    struct http_server_config cfg = {.listen = "127.0.0.1:0",
                                     .max_body = 1 << 20,
                                     .max_connections = 64,
                                     .timeout_s = 60,
                                     .on_request = on_route};
    if (http_server_start(&cfg, &rt.server) != FS_OK)
        return NULL;
    return xasprintf("http://127.0.0.1:%u",
                     (unsigned)http_server_port(rt.server));
}

static int setup(void **state)
{
    pthread_mutex_init(&rt.mu, NULL);
    rt.violations = json_array();
    rt.seen = json_object();
    struct stack_options o = {.crm = "pipedrive",
                              .deals = 20,
                              .owners = 3,
                              .backstop_ms = 700,
                              .crm_front = start_front};
    return stack_start(&st, &o) ? 0 : -1;
}

static int teardown(void **state)
{
    bool clean = stack_stop(&st);

    http_server_stop(rt.server);
    for (int i = 0; i < SPEC_COUNT; i++) {
        if (rt.prism[i] > 0)
            proc_stop(rt.prism[i], 5000);
        free(rt.prism_base[i]);
    }
    json_decref(rt.violations);
    json_decref(rt.seen);
    pthread_mutex_destroy(&rt.mu);
    return clean ? 0 : -1;
}

static char *record_id(size_t seed)
{
    char *id = stack_record_id(&st, stack_seed_id(&st, seed));
    assert_non_null(id);
    return id;
}

/* Through two validating proxies, under sanitizers and a loaded
 * machine, a crossing may take several of the stack's usual waits: this
 * test is about what crosses, not how fast. */
#define SLOW(wait)                                                             \
    do {                                                                       \
        bool ok_ = false;                                                      \
        for (int try_ = 0; try_ < SLOW_TRIES && !ok_; try_++)                  \
            ok_ = (wait);                                                      \
        assert_true(ok_);                                                      \
    } while (0)

struct passes_wait {
    int64_t want;
};

static bool passes_done(void *ctx)
{
    struct passes_wait *w = ctx;
    return stack_metric(&st, "fieldsync_backstop_passes_total") >= w->want;
}

/* A working day's worth of every kind of call fieldsync makes. */
static void run_the_day(void)
{
    long status;
    char *a = record_id(0), *b = record_id(1);

    /* Pushes: several fields, won as a status, a cleared amount. */
    json_decref(stack_patch(&st, st.admin, a,
                            "{\"fields\":{\"name\":\"Spec A\",\"amount\":"
                            "\"99.5\",\"close_date\":\"2027-02-01\","
                            "\"account\":\"Spec account\"}}",
                            &status));
    assert_int_equal(status, 200);
    json_decref(stack_patch(&st, st.admin, b,
                            "{\"fields\":{\"stage\":\"won\",\"amount\":null}}",
                            &status));
    assert_int_equal(status, 200);
    SLOW(stack_wait_sim(&st, stack_seed_id(&st, 0), "name", "Spec A"));
    SLOW(stack_wait_state(&st, b, "synced"));

    /* A create in the field. */
    json_t *r = stack_api(&st, st.admin, "POST", "/api/v1/deals",
                          "{\"fields\":{\"name\":\"Spec lead\",\"amount\":"
                          "\"10\",\"stage\":\"new\"}}",
                          &status);
    assert_int_equal(status, 201);
    json_decref(r);

    /* A CRM edit whose webhook is lost: the backstop's lists and a read
     * with the changelog heal it. */
    assert_true(stack_faults(&st, "{\"drop\":1.0}"));
    assert_true(stack_sim_edit(&st, stack_seed_id(&st, 2),
                               "{\"product\":\"Spec healed\"}") > 0);
    char *c = record_id(2);
    SLOW(stack_wait_field(&st, c, "product", "Spec healed"));
    assert_true(stack_faults(&st, "{\"drop\":0}"));

    /* A delete and a merge in the CRM (the survivor is read again). */
    char *path = xasprintf("/_sim/deals/%s", stack_seed_id(&st, 3));
    json_decref(stack_sim(&st, "DELETE", path, NULL, &status));
    assert_int_equal(status, 200);
    free(path);
    char *body = xasprintf("{\"primary\":\"%s\",\"merged\":[\"%s\"]}",
                           stack_seed_id(&st, 4), stack_seed_id(&st, 5));
    json_decref(stack_sim(&st, "POST", "/_sim/merge", body, &status));
    assert_int_equal(status, 200);
    free(body);
    char *loser = record_id(5);
    SLOW(stack_wait_deleted(&st, loser, true, "merged"));

    SLOW(stack_settled(&st, STACK_WAIT_MS));
    /* Two whole backstop passes (lists, deleted, archived, the check of
     * recent pushes) after the day, through the proxies. */
    struct passes_wait w = {
        stack_metric(&st, "fieldsync_backstop_passes_total") + 2};
    assert_true(http_test_poll(passes_done, &w, PASSES_WAIT_MS));
    free(loser);
    free(c);
    free(a);
    free(b);
}

static void test_every_call_matches_the_documents(void **state)
{
    run_the_day();

    pthread_mutex_lock(&rt.mu);
    char *seen = json_dumps(rt.seen, JSON_INDENT(2) | JSON_SORT_KEYS);
    fprintf(stderr, "test_spec_pipedrive: %lld calls checked:\n%s\n",
            (long long)rt.calls, seen);
    free(seen);
    size_t n = json_array_size(rt.violations);
    for (size_t i = 0; i < n && i < VIOLATIONS_SHOWN; i++) {
        char *v = json_dumps(json_array_get(rt.violations, i), JSON_COMPACT);
        fprintf(stderr, "violation: %s\n", v);
        free(v);
    }
    /* The day made every kind of call it is about. */
    static const char *const kinds[] = {
        "GET /v1/users/me",
        "GET /v1/users",
        "GET /v1/webhooks",
        "POST /v1/webhooks",
        "GET /api/v2/dealFields",
        "GET /api/v2/stages",
        "GET /api/v2/deals",
        "GET /api/v2/deals/archived",
        "PATCH /api/v2/deals/{id}",
        "POST /api/v2/deals",
        "GET /v1/deals/{id}/changelog",
    };
    const char *missing = NULL;
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        if (!json_object_get(rt.seen, kinds[k]))
            missing = kinds[k];
    }
    pthread_mutex_unlock(&rt.mu);
    if (missing)
        fail_msg("no %s went through the proxies", missing);
    assert_int_equal(n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_call_matches_the_documents),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
