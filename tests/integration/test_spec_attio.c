/* fieldsync and crmsim attio checked against Attio's own OpenAPI document
 * (shared/specs/attio/openapi-api.yaml): Stoplight's Prism proxy, run
 * with --errors, stands between fieldsync and the simulator and refuses
 * any request or answer that does not match the document. A day's worth
 * of sync goes through it (connect, import, stages and members, edits
 * both ways, an emptied value, a create by assert, history reads, the
 * backstop's scans, a webhook registration), and the test fails on the
 * first violation Prism reports. Prism comes from npm through
 * scripts/install-prism.sh into the build tree. */
#include "http_test.h"
#include "proc.h"
#include "stack.h"
#include "test_env.h"

#include "base/alloc.h"
#include "base/clock.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <jansson.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#define TOKEN "attio-spec-token"
#define SECRET "attio-spec-secret"
#define ORG "acme"
#define START_MS 60000
#define WAIT_MS 20000
#define STATUS(n) "57a70000-0000-4000-8000-00000000000" #n

struct rig {
    char *dir;
    char *db;
    pid_t serve, sim, prism;
    char *serve_base, *sim_base, *prism_base;
    char *admin;
};

static struct rig rig;

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "r");
    char *text = NULL;
    size_t len = 0;

    if (f) {
        FILE *mem = open_memstream(&text, &len);
        char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
            fwrite(buf, 1, n, mem);
        fclose(mem);
        fclose(f);
    }
    return text ? text : xstrdup("");
}

/* Runs a command to its end; its output goes to dir/name.out. */
static int run(const char *name, const char *const *argv, int64_t timeout_ms)
{
    char *out = xasprintf("%s/%s.out", rig.dir, name);
    pid_t pid = proc_spawn(argv, NULL, out);
    int code = pid > 0 ? proc_wait(pid, timeout_ms) : -1;

    if (code != 0) {
        char *text = read_text(out);
        fprintf(stderr, "spec: %s exited %d:\n%s\n", name, code, text);
        free(text);
    }
    free(out);
    return code;
}

static int cli(const char *const *args)
{
    const char *argv[24] = {getenv("FS_BIN"), "--db", rig.db};
    size_t n = 3;
    for (size_t i = 0; args[i] && n < 23; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    return run(args[0], argv, 60000);
}

/* A loopback port free now (Prism takes a port, not a port file). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int port = 0;

    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static pid_t start_with_port_file(const char *name, const char **argv,
                                  const char *port_file, char **base)
{
    char *log = xasprintf("%s/%s.log", rig.dir, name);
    pid_t pid = proc_spawn(argv, NULL, log);
    int port = pid > 0 ? proc_wait_port_file(port_file, pid, START_MS) : 0;

    free(log);
    if (port == 0)
        return -1;
    *base = xasprintf("http://127.0.0.1:%d", port);
    return pid;
}

static bool prism_up(void *ctx)
{
    char *url = xasprintf("%s/v2/self", rig.prism_base);
    const char *headers[] = {"Authorization: Bearer " TOKEN, NULL};
    struct http_test_response resp;
    bool up = http_test_request("GET", url, headers, NULL, &resp) &&
              resp.status == 200;

    http_test_response_free(&resp);
    free(url);
    return up;
}

static int setup(void **state)
{
    memset(&rig, 0, sizeof(rig));
    rig.serve = rig.sim = rig.prism = -1;
    rig.dir = test_temp_dir();
    rig.db = xasprintf("%s/fieldsync.db", rig.dir);
    char *install_log = xasprintf("%s/install-prism.out", rig.dir);
    char *prism = test_prism_bin(install_log);
    char *seed = xasprintf("%s/seed", rig.dir);
    char *spec = test_shared_path("specs/attio/openapi-api.yaml");
    int ok = -1;

    if (!prism || mkdir(seed, 0700) != 0 || !stack_write_seed(seed, 12, 3))
        goto out;
    const char *org[] = {"org", "add", ORG, NULL};
    if (cli(org) != 0)
        goto out;

    char *serve_port = xasprintf("%s/serve.port", rig.dir);
    const char *serve[] = {getenv("FS_BIN"), "--db",     rig.db,
                           "serve",          "--listen", "127.0.0.1:0",
                           "--port-file",    serve_port, "--backstop-ms",
                           "1000",           NULL};
    rig.serve =
        start_with_port_file("serve", serve, serve_port, &rig.serve_base);
    free(serve_port);
    if (rig.serve < 0)
        goto out;

    /* The first connection of a fresh database is number 1. */
    char *hook = xasprintf("%s/webhooks/attio/1", rig.serve_base);
    char *sim_port = xasprintf("%s/sim.port", rig.dir);
    const char *sim[] = {getenv("FS_SIM_BIN"),
                         "attio",
                         "--listen",
                         "127.0.0.1:0",
                         "--data",
                         seed,
                         "--webhook-url",
                         hook,
                         "--webhook-secret",
                         SECRET,
                         "--token",
                         TOKEN,
                         "--port-file",
                         sim_port,
                         NULL};
    rig.sim = start_with_port_file("sim", sim, sim_port, &rig.sim_base);
    free(sim_port);
    free(hook);
    if (rig.sim < 0)
        goto out;

    int port = free_port();
    char *port_text = xasprintf("%d", port);
    char *prism_log = xasprintf("%s/prism.log", rig.dir);
    const char *proxy[] = {prism,       "proxy", spec,      rig.sim_base, "-h",
                           "127.0.0.1", "-p",    port_text, "--errors",   NULL};
    rig.prism = proc_spawn(proxy, NULL, prism_log);
    rig.prism_base = xasprintf("http://127.0.0.1:%d", port);
    free(prism_log);
    free(port_text);
    if (rig.prism < 0 || !http_test_poll(prism_up, NULL, START_MS))
        goto out;

    const char *connect[] = {"connect",
                             "attio",
                             "--org",
                             ORG,
                             "--token",
                             TOKEN,
                             "--webhook-secret",
                             SECRET,
                             "--base-url",
                             rig.prism_base,
                             NULL};
    const char *import[] = {"import", "--org", ORG, NULL};
    const char *map[] = {"stages",
                         "map",
                         "--org",
                         ORG,
                         STATUS(1) "=new",
                         STATUS(2) "=qualified",
                         STATUS(3) "=won",
                         STATUS(4) "=lost",
                         "--default",
                         "stage/in_quote=" STATUS(2),
                         NULL};
    if (cli(connect) != 0 || cli(import) != 0 || cli(map) != 0)
        goto out;
    const char *user[] = {"user", "add",    "--org", ORG, "--name",
                          "Ann",  "--role", "admin", NULL};
    if (cli(user) != 0)
        goto out;
    char *out_path = xasprintf("%s/user.out", rig.dir);
    char *out = read_text(out_path);
    const char *at = strstr(out, "token: ");
    if (at)
        rig.admin = xstrndup(at + 7, strcspn(at + 7, "\r\n"));
    free(out);
    free(out_path);
    ok = rig.admin ? 0 : -1;
out:
    free(spec);
    free(seed);
    free(prism);
    free(install_log);
    return ok;
}

static int teardown(void **state)
{
    bool clean = true;

    if (rig.serve > 0)
        clean &= proc_stop(rig.serve, 15000) == 0;
    if (rig.sim > 0)
        clean &= proc_stop(rig.sim, 15000) == 0;
    if (rig.prism > 0)
        proc_stop(rig.prism, 15000);
    char *cmd = xasprintf("rm -rf '%s'", rig.dir);
    if (system(cmd) != 0)
        clean = false;
    free(cmd);
    free(rig.dir);
    free(rig.db);
    free(rig.serve_base);
    free(rig.sim_base);
    free(rig.prism_base);
    free(rig.admin);
    return clean ? 0 : -1;
}

/* Prism's complaints so far: its log lines of errors (marked ✖) and
 * violations. Not the word "error" alone: the simulator's attribute
 * slugs are random words and may spell it in a logged URL. */
static char *violations(void)
{
    char *path = xasprintf("%s/prism.log", rig.dir);
    char *log = read_text(path);
    char *found = xstrdup("");

    for (char *line = log; line && *line;) {
        char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char *copy = xstrndup(line, len);
        if (strstr(copy, "✖") || strstr(copy, "Violation")) {
            char *more = xasprintf("%s%s\n", found, copy);
            free(found);
            found = more;
        }
        free(copy);
        line = end ? end + 1 : NULL;
    }
    free(log);
    free(path);
    return found;
}

static void assert_no_violations(void)
{
    char *v = violations();
    if (*v)
        fail_msg("Prism found requests or answers off the spec:\n%s", v);
    free(v);
}

static json_t *api(const char *method, const char *path, const char *body,
                   long *status)
{
    char *url = xasprintf("%s%s", rig.serve_base, path);
    char *auth = xasprintf("Authorization: Bearer %s", rig.admin);
    const char *headers[] = {auth, "Content-Type: application/json", NULL};
    struct http_test_response resp;

    http_test_request(method, url, headers, body, &resp);
    json_t *out = json_incref(resp.json);
    *status = resp.status;
    http_test_response_free(&resp);
    free(auth);
    free(url);
    return out;
}

static json_t *sim(const char *method, const char *path, const char *body,
                   long *status)
{
    char *url = xasprintf("%s%s", rig.sim_base, path);
    const char *headers[] = {"Content-Type: application/json", NULL};
    struct http_test_response resp;

    http_test_request(method, url, headers, body, &resp);
    json_t *out = json_incref(resp.json);
    *status = resp.status;
    http_test_response_free(&resp);
    free(url);
    return out;
}

struct wait {
    bool in_sim;
    const char *id;
    const char *field;
    const char *value;
};

static bool holds(void *ctx)
{
    struct wait *w = ctx;
    long status = 0;
    char *path =
        xasprintf(w->in_sim ? "/_sim/deals/%s" : "/api/v1/deals/%s", w->id);
    json_t *deal = w->in_sim ? sim("GET", path, NULL, &status)
                             : api("GET", path, NULL, &status);
    json_t *v = json_object_get(
        w->in_sim ? json_object_get(deal, "fields") : deal, w->field);
    bool ok = status == 200 &&
              (w->value ? json_is_string(v) &&
                              strcmp(json_string_value(v), w->value) == 0
                        : json_is_null(v));
    json_decref(deal);
    free(path);
    return ok;
}

/* What went wrong, when a wait failed: Prism's complaints and the end of
 * fieldsync's log. */
static void show_logs(void)
{
    char *v = violations();
    char *path = xasprintf("%s/serve.log", rig.dir);
    char *log = read_text(path);
    size_t len = strlen(log);
    fprintf(stderr, "--- prism ---\n%s--- serve (end) ---\n%s\n", v,
            len > 3000 ? log + len - 3000 : log);
    free(log);
    free(path);
    free(v);
}

static bool wait_for(bool in_sim, const char *id, const char *field,
                     const char *value)
{
    struct wait w = {in_sim, id, field, value};
    bool ok = http_test_poll(holds, &w, WAIT_MS);
    if (!ok)
        show_logs();
    return ok;
}

static void test_a_day_through_the_validating_proxy(void **state)
{
    long status = 0;
    json_t *list = api("GET", "/api/v1/deals?limit=20", NULL, &status);
    assert_int_equal(status, 200);
    json_t *first = json_array_get(json_object_get(list, "deals"), 0);
    char *id = xstrdup(json_string_value(json_object_get(first, "id")));
    char *crm = xstrdup(json_string_value(json_object_get(first, "crm_id")));
    assert_int_equal(json_array_size(json_object_get(list, "deals")), 12);
    json_decref(list);

    /* Field edits of every kind of value: PATCH through the proxy. */
    char *path = xasprintf("/api/v1/deals/%s", id);
    json_decref(api("PATCH", path,
                    "{\"fields\":{\"name\":\"Through Prism\",\"amount\":"
                    "\"1200.5\",\"close_date\":\"2027-02-01\",\"postcode\":"
                    "\"M1 1AE\",\"location\":\"53.48,-2.24\",\"stage\":"
                    "\"won\"}}",
                    &status));
    assert_int_equal(status, 200);
    assert_true(wait_for(true, crm, "name", "Through Prism"));
    assert_true(wait_for(true, crm, "location", "53.480000,-2.240000"));
    assert_true(wait_for(true, crm, "stage", STATUS(3)));

    /* Attio edits: an id-only webhook, then a read through the proxy;
     * an emptied attribute. */
    char *sim_path = xasprintf("/_sim/deals/%s", crm);
    json_decref(sim("PATCH", sim_path,
                    "{\"fields\":{\"product\":\"Edited in Attio\","
                    "\"close_date\":null}}",
                    &status));
    assert_int_equal(status, 200);
    assert_true(wait_for(false, id, "product", "Edited in Attio"));
    assert_true(wait_for(false, id, "close_date", NULL));

    /* A create: assert on our id. */
    json_t *made =
        api("POST", "/api/v1/deals",
            "{\"fields\":{\"name\":\"Born behind Prism\"}}", &status);
    assert_int_equal(status, 201);
    const char *made_id = json_string_value(json_object_get(made, "id"));
    assert_non_null(made_id);
    assert_true(wait_for(false, made_id, "stage", "new"));
    json_decref(made);

    /* A webhook registration, as connect --public-url sends it (to an
     * https target, the only kind the document allows: a loopback port
     * nothing listens on, so nothing is delivered anywhere). */
    char *url = xasprintf("%s/v2/webhooks", rig.prism_base);
    const char *headers[] = {"Authorization: Bearer " TOKEN,
                             "Content-Type: application/json", NULL};
    json_t *body =
        json_pack("{s:{s:s, s:[{s:s, s:n}]}}", "data", "target_url",
                  "https://127.0.0.1:1/webhooks/attio/1", "subscriptions",
                  "event_type", "record.updated", "filter");
    json_t *hook = http_test_json("POST", url, headers, body, &status);
    assert_int_equal(status, 200);
    assert_non_null(json_string_value(
        json_object_get(json_object_get(hook, "data"), "secret")));
    json_decref(hook);
    json_decref(body);
    free(url);

    assert_no_violations();
    free(sim_path);
    free(path);
    free(crm);
    free(id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_day_through_the_validating_proxy),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
