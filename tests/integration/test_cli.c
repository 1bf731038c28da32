/* What a new user meets first, through the real binaries: the sync
 * status's whole counts past its list's cap, serve's one-per-database
 * lock whatever the path, and the command line's error wording. */
#include "stack.h"

#include "base/alloc.h"
#include "http_test.h"
#include "sse_test.h"
#include "test_env.h"

#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

/* One more than the status list's cap (docs/API.md). */
#define STATUS_DEALS 1001

static struct stack st;

static int setup(void **state)
{
    /* A short backstop period, so a failing pass shows in the log soon;
     * info lines, where a client gone away is logged. */
    static const char *const serve_args[] = {"--log-level", "info", NULL};
    struct stack_options o = {
        .deals = 6, .backstop_ms = 200, .serve_args = serve_args};

    (void)state;
    return stack_start(&st, &o) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return stack_stop(&st) ? 0 : -1;
}

/* Runs the CLI with args; asserts the exit code and that the output holds
 * want. */
static void assert_cli(const char *const *args, int want_code, const char *want)
{
    int code = -1;
    char *out = stack_cli(&st, &code, args);

    if (!out || !strstr(out, want))
        print_error("output: %s\n", out ? out : "(none)");
    assert_non_null(out);
    assert_int_equal(code, want_code);
    assert_non_null(strstr(out, want));
    free(out);
}

/* More deals waiting than the list shows: the counts are whole in the API
 * and `fieldsync status`, the list stops at 1,000. */
static void test_status_counts_past_the_list(void **state)
{
    long status;

    (void)state;
    assert_true(stack_faults(&st, "{\"api_5xx\":1.0}"));
    for (int i = 0; i < STATUS_DEALS; i++) {
        char *body = xasprintf("{\"fields\":{\"name\":\"Waiting %d\"}}", i);
        json_decref(
            stack_api(&st, st.admin, "POST", "/api/v1/deals", body, &status));
        free(body);
        assert_int_equal(status, 201);
    }

    json_t *r =
        stack_api(&st, st.admin, "GET", "/api/v1/sync/status", NULL, &status);
    assert_int_equal(status, 200);
    json_int_t pending = json_integer_value(json_object_get(r, "pending"));
    json_int_t failed = json_integer_value(json_object_get(r, "failed"));
    assert_int_equal(pending + failed, STATUS_DEALS);
    assert_int_equal(json_array_size(json_object_get(r, "records")), 1000);
    json_decref(r);

    int code;
    const char *args[] = {"status", "--org", STACK_ORG, NULL};
    char *out = stack_cli(&st, &code, args);
    assert_int_equal(code, 0);
    long long cli_pending = -1, cli_failed = -1;
    assert_int_equal(
        sscanf(out, "pending: %lld\nfailed: %lld", &cli_pending, &cli_failed),
        2);
    assert_int_equal(cli_pending + cli_failed, STATUS_DEALS);
    free(out);
    assert_true(stack_faults(&st, STACK_NO_FAULTS));
}

/* A second serve on the running one's database is refused by any path to
 * it, a symbolic link, one through "..", a hard link, and says why. */
static void test_second_serve_refused_by_any_path(void **state)
{
    char *db = st.db;
    char *sym = xasprintf("%s/alias.db", st.dir);
    char *hard = xasprintf("%s/hard.db", st.dir);
    char *dotted = xasprintf("%s/../%s", st.dir, strrchr(st.dir, '/') + 1);
    char *dotted_db = xasprintf("%s/%s", dotted, strrchr(db, '/') + 1);
    const char *serve[] = {"serve", "--listen", "127.0.0.1:0", NULL};

    (void)state;
    assert_int_equal(symlink(db, sym), 0);
    assert_int_equal(link(db, hard), 0);
    char *paths[] = {db, sym, dotted_db, hard};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        st.db = paths[i];
        assert_cli(serve, 1, "another fieldsync serve runs on this database");
    }
    st.db = db;
    unlink(sym);
    unlink(hard);
    free(sym);
    free(hard);
    free(dotted);
    free(dotted_db);
}

/* The serve log holds a line with every one of the words. */
struct log_wait {
    const char *const *words;
};

static bool log_has_line(void *ctx)
{
    const struct log_wait *w = ctx;
    char *path = xasprintf("%s/serve.log", st.dir);
    char *text = stack_read_file(path);
    bool found = false;

    for (char *line = text; line && *line && !found;) {
        char *end = strchr(line, '\n');
        if (end)
            *end = '\0';
        found = true;
        for (size_t i = 0; w->words[i] && found; i++)
            found = strstr(line, w->words[i]) != NULL;
        line = end ? end + 1 : NULL;
    }
    free(text);
    free(path);
    return found;
}

/* A backstop pass the CRM refuses says what the CRM answered. */
static void test_backstop_failure_says_why(void **state)
{
    const char *words[] = {"event=backstop_failed", "status=50",
                           "error=\"The service is temporarily unavailable.\"",
                           NULL};
    struct log_wait w = {words};

    (void)state;
    assert_true(stack_faults(&st, "{\"api_5xx\":1.0}"));
    bool logged = http_test_poll(log_has_line, &w, STACK_WAIT_MS);
    assert_true(stack_faults(&st, STACK_NO_FAULTS));
    assert_true(logged);
}

/* libmicrohttpd's own messages (a live stream's client gone while an
 * event is sent) come as key=value lines at info, never raw. */
static void test_library_messages_are_log_lines(void **state)
{
    const char *words[] = {"level=info", "event=http_library_message",
                           "library=libmicrohttpd", "message=\"", NULL};
    struct log_wait w = {words};
    char *url = xasprintf("%s/api/v1/events", st.api_base);
    const char *id = NULL;
    long status;

    (void)state;
    json_t *deals = stack_deals(&st, false);
    id = stack_text(json_array_get(deals, 0), "id");
    assert_non_null(id);
    bool logged = false;
    for (int round = 0; round < 5 && !logged; round++) {
        struct sse_test *sse = sse_test_open(url, st.admin);
        assert_non_null(sse);
        sse_test_close(sse);
        for (int i = 0; i < 5; i++) {
            char *body =
                xasprintf("{\"fields\":{\"name\":\"Gone %d.%d\"}}", round, i);
            json_decref(stack_patch(&st, st.admin, id, body, &status));
            free(body);
            assert_int_equal(status, 200);
        }
        logged = http_test_poll(log_has_line, &w, 2000);
    }
    assert_true(logged);

    /* No line of libmicrohttpd's is left raw. */
    char *path = xasprintf("%s/serve.log", st.dir);
    char *text = stack_read_file(path);
    for (char *line = text; line && *line;) {
        char *end = strchr(line, '\n');
        if (end)
            *end = '\0';
        if (strstr(line, "Failed to send") || strstr(line, "chunked"))
            assert_non_null(strstr(line, "event=http_library_message"));
        line = end ? end + 1 : NULL;
    }
    free(text);
    free(path);
    json_decref(deals);
    free(url);
}

/* A rejected webhook, which no connection owns, shows as one series
 * without a label; no series names a connection 0. */
static void test_no_metrics_for_connection_zero(void **state)
{
    char *url = xasprintf("%s/webhooks/hubspot", st.api_base);
    struct http_test_response resp;
    const char *json[] = {"Content-Type: application/json", NULL};

    (void)state;
    assert_true(http_test_request("POST", url, json, "[]", &resp));
    assert_true(resp.status >= 400);
    http_test_response_free(&resp);
    free(url);

    url = xasprintf("%s/metrics", st.api_base);
    assert_true(http_test_request("GET", url, NULL, NULL, &resp));
    assert_int_equal(resp.status, 200);
    assert_null(strstr(resp.body, "connection=\"0\""));
    assert_non_null(strstr(resp.body, "\nfieldsync_webhooks_rejected_total "));
    assert_non_null(
        strstr(resp.body, "fieldsync_push_calls_total{connection=\""));
    http_test_response_free(&resp);
    free(url);
}

/* import says an org does not exist, and a missing database in the words
 * every command uses. */
static void test_import_errors_name_the_cause(void **state)
{
    char *fresh = xasprintf("%s/fresh.db", st.dir);
    char *no_db = xasprintf("no database at %s (give --db PATH", fresh);
    const char *nope[] = {"import", "--org", "nope", NULL};
    const char *missing[] = {"import", "--db", fresh, "--org", STACK_ORG, NULL};
    const char *status[] = {"status", "--org", STACK_ORG, NULL};
    const char *add[] = {"org", "add", "idle", NULL};
    const char *idle[] = {"import", "--org", "idle", NULL};
    char *db = st.db;

    (void)state;
    assert_cli(nope, 1, "no org named 'nope'");
    assert_cli(missing, 1, no_db);
    st.db = fresh;
    assert_cli(status, 1, no_db);
    st.db = db;
    assert_cli(add, 0, "");
    assert_cli(idle, 1, "org 'idle' has no active connection");
    free(no_db);
    free(fresh);
}

/* A rate of 0 says what a rate must be. */
static void test_rate_must_be_positive(void **state)
{
    const char *connect[] = {
        "connect",         "hubspot", "--org",    STACK_ORG, "--token",     "t",
        "--client-secret", "s",       "--app-id", "1",       "--portal-id", "2",
        "--rate-10s",      "0",       NULL};

    (void)state;
    assert_cli(connect, 2, "--rate-10s must be a positive whole number");
}

/* An org connected but not mapped yet lists every stage that lacks a CRM
 * stage to write, not only the first. */
static void test_stages_show_lists_every_problem(void **state)
{
    const char *add[] = {"org", "add", "fresh", NULL};
    const char *show[] = {"stages", "show", "--org", "fresh", NULL};
    const char *keys[] = {"new", "qualified", "in_quote", "won", "lost"};
    int code;

    (void)state;
    assert_cli(add, 0, "");
    const char *import[] = {"import", "--org", "fresh", NULL};
    assert_true(stack_connect(&st, "fresh", 1, 1000));
    assert_cli(import, 0, "imported");
    char *out = stack_cli(&st, &code, show);
    assert_int_equal(code, 0);
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        char *want =
            xasprintf("problem: stage %s has no CRM stage to write", keys[i]);
        if (!strstr(out, want))
            print_error("output: %s\n", out);
        assert_non_null(strstr(out, want));
        free(want);
    }
    free(out);
}

/* One CRM owner is one user: a second user with the same owner id is
 * refused, by add and by set-owner; once the first is revoked it may. */
static void test_owner_linked_once(void **state)
{
    const char *owner = stack_owner_id(&st, 1);
    const char *add[] = {"user",       "add", "--org",  STACK_ORG,
                         "--name",     "Ann", "--role", "rep",
                         "--owner-id", owner, NULL};
    const char *again[] = {"user",       "add", "--org",  STACK_ORG,
                           "--name",     "Ann", "--role", "rep",
                           "--owner-id", owner, NULL};
    const char *other[] = {"user", "add",    "--org", STACK_ORG, "--name",
                           "Bo",   "--role", "rep",   NULL};
    const char *list[] = {"user", "list", "--org", STACK_ORG, NULL};
    int code;
    long long ann = 0, bo = 0;

    (void)state;
    char *out = stack_cli(&st, &code, add);
    assert_int_equal(code, 0);
    assert_int_equal(sscanf(out, "user %lld", &ann), 1);
    free(out);
    char *want =
        xasprintf("CRM owner %s is already linked to user %lld", owner, ann);
    assert_cli(again, 1, want);
    free(want);

    out = stack_cli(&st, &code, other);
    assert_int_equal(code, 0);
    assert_int_equal(sscanf(out, "user %lld", &bo), 1);
    free(out);
    char *bo_id = xasprintf("%lld", bo);
    const char *set[] = {"user", "set-owner",  "--org", STACK_ORG, "--id",
                         bo_id,  "--owner-id", owner,   NULL};
    out = stack_cli(&st, &code, set);
    assert_int_equal(code, 1);
    assert_non_null(strstr(out, "is already linked to user"));
    free(out);

    /* Nothing was added: one user holds the owner id. */
    out = stack_cli(&st, &code, list);
    assert_int_equal(code, 0);
    char *tab = xasprintf("\t%s\t", owner);
    const char *first = strstr(out, tab);
    assert_non_null(first);
    assert_null(strstr(first + 1, tab));
    free(tab);
    free(out);

    char *ann_id = xasprintf("%lld", ann);
    const char *revoke[] = {"user", "revoke", "--org", STACK_ORG,
                            "--id", ann_id,   NULL};
    assert_cli(revoke, 0, "revoked");
    assert_cli(set, 0, owner);
    free(ann_id);
    free(bo_id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_counts_past_the_list),
        cmocka_unit_test(test_second_serve_refused_by_any_path),
        cmocka_unit_test(test_backstop_failure_says_why),
        cmocka_unit_test(test_library_messages_are_log_lines),
        cmocka_unit_test(test_no_metrics_for_connection_zero),
        cmocka_unit_test(test_import_errors_name_the_cause),
        cmocka_unit_test(test_rate_must_be_positive),
        cmocka_unit_test(test_stages_show_lists_every_problem),
        cmocka_unit_test(test_owner_linked_once),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
