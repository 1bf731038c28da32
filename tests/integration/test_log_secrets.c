/* No secret in any log. The whole stack runs at debug level with every
 * kind of secret configured — a webhook client secret, a static CRM
 * token, an OAuth client with refresh tokens rotated on every refresh and
 * 2-second access tokens, users' API tokens, a revoked one — and does
 * what touches them: signed and forged webhooks, calls with good, unknown
 * and revoked tokens, pushes across token expiries, a refused refresh
 * token. Then every log file and command output is searched for every
 * one of those secrets, whole and by its first 20 characters. */
#include "http_test.h"
#include "stack.h"
#include "stack_hubspot.h"

#include "base/alloc.h"
#include "base/clock.h"

#include <dirent.h>
#include <inttypes.h>
#include <jansson.h>
#include <setjmp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define CLIENT_ID "log-test-client"
#define FIRST_REFRESH_TOKEN "rt-install-log-test-0001"
#define OAUTH_ORG "oauthlogs"
#define OAUTH_PORTAL "9004"
#define SECRETS_MAX 64
#define PREFIX_LEN 20

static struct stack st;
static char *secrets[SECRETS_MAX];
static size_t n_secrets;
/* Outputs of the commands run, searched with the log files. */
static char *outputs;

static void keep_secret(const char *s)
{
    if (!s || !*s || n_secrets >= SECRETS_MAX)
        return;
    for (size_t i = 0; i < n_secrets; i++) {
        if (strcmp(secrets[i], s) == 0)
            return;
    }
    secrets[n_secrets++] = xstrdup(s);
}

static void keep_output(char *out)
{
    char *all = xasprintf("%s%s", outputs ? outputs : "", out);
    free(outputs);
    free(out);
    outputs = all;
}

static int setup(void **state)
{
    static const char *const sim_args[] = {"--oauth-client-id",
                                           CLIENT_ID,
                                           "--refresh-token",
                                           FIRST_REFRESH_TOKEN,
                                           "--token-ttl-s",
                                           "2",
                                           "--rotate-refresh-tokens",
                                           "--log-level",
                                           "debug",
                                           NULL};
    static const char *const serve_args[] = {"--log-level", "debug", NULL};
    struct stack_options o = {.deals = 6,
                              .backstop_ms = 300,
                              .sim_args = sim_args,
                              .serve_args = serve_args};

    if (!stack_start(&st, &o))
        return -1;
    keep_secret(STACK_HUBSPOT_SECRET);
    keep_secret(STACK_HUBSPOT_TOKEN);
    keep_secret(FIRST_REFRESH_TOKEN);
    keep_secret(st.admin);
    return 0;
}

static int teardown(void **state)
{
    for (size_t i = 0; i < n_secrets; i++)
        free(secrets[i]);
    free(outputs);
    return stack_stop(&st) ? 0 : -1;
}

/* Every token the database holds now (connections' and nothing else:
 * users' tokens are kept only as hashes). */
static void keep_stored_tokens(void)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;

    assert_int_equal(sqlite3_open_v2(st.db, &db, SQLITE_OPEN_READWRITE, NULL),
                     SQLITE_OK);
    sqlite3_busy_timeout(db, 10000);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT value FROM connection_secrets "
                                        "WHERE name IN ('token', "
                                        "'refresh_token', 'client_secret')",
                                        -1, &q, NULL),
                     SQLITE_OK);
    while (sqlite3_step(q) == SQLITE_ROW)
        keep_secret((const char *)sqlite3_column_text(q, 0));
    sqlite3_finalize(q);
    sqlite3_close(db);
}

static char *cli(const char *const *args, int *code)
{
    return stack_cli(&st, code, args);
}

/* `connect hubspot` for the OAuth org with the refresh token; its exit
 * code (the output is kept for the search). */
static int connect_oauth(const char *refresh_token)
{
    const char *args[] = {"connect",
                          "hubspot",
                          "--org",
                          OAUTH_ORG,
                          "--oauth-client-id",
                          CLIENT_ID,
                          "--refresh-token",
                          refresh_token,
                          "--client-secret",
                          STACK_HUBSPOT_SECRET,
                          "--app-id",
                          STACK_HUBSPOT_APP_ID,
                          "--portal-id",
                          OAUTH_PORTAL,
                          "--base-url",
                          st.sim_base,
                          NULL};
    int code;
    keep_output(cli(args, &code));
    return code;
}

/* An OAuth org whose pushes refresh and rotate tokens. */
static void run_oauth_org(void)
{
    int code;
    const char *org[] = {"org", "add", OAUTH_ORG, NULL};
    keep_output(cli(org, &code));
    assert_int_equal(code, 0);

    /* A refresh token the CRM refuses: the command says so, without it. */
    keep_secret("rt-refused-by-the-crm-0001");
    assert_int_equal(connect_oauth("rt-refused-by-the-crm-0001"), 1);
    assert_int_equal(connect_oauth(FIRST_REFRESH_TOKEN), 0);
    keep_stored_tokens();

    char *admin = stack_user_add(&st, OAUTH_ORG, "Oz Admin", "admin", NULL);
    assert_non_null(admin);
    keep_secret(admin);
    for (int round = 0; round < 3; round++) {
        long status;
        char *body =
            xasprintf("{\"fields\":{\"name\":\"OAuth push %d\"}}", round);
        json_t *page = stack_api(&st, admin, "GET", "/api/v1/deals?limit=1",
                                 NULL, &status);
        const char *id =
            stack_text(json_array_get(json_object_get(page, "deals"), 0), "id");
        if (id) {
            json_decref(stack_patch(&st, admin, id, body, &status));
            assert_int_equal(status, 200);
        }
        json_decref(page);
        free(body);
        stack_wait_past(clock_now_ms() + 1200);
        keep_stored_tokens();
    }
    char *rt = stack_connection_secret(&st, OAUTH_PORTAL, "refresh_token");
    keep_secret(rt);
    free(rt);
    free(admin);
}

/* Webhooks and calls with good, forged, unknown and revoked credentials. */
static void run_hostile_traffic(void)
{
    char *body = xasprintf(
        "[{\"eventId\":91,\"subscriptionId\":1,\"portalId\":%d,\"appId\":%s,"
        "\"occurredAt\":%" PRId64 ",\"subscriptionType\":"
        "\"deal.propertyChange\",\"attemptNumber\":0,\"objectId\":"
        "20000000001,\"propertyName\":\"dealname\",\"propertyValue\":"
        "\"Logged?\",\"changeSource\":\"CRM_UI\",\"sourceId\":"
        "\"userId:5100001\"}]",
        STACK_HUBSPOT_PORTAL, STACK_HUBSPOT_APP_ID, clock_now_ms());
    assert_int_equal(
        stack_hubspot_webhook(&st, body, STACK_HUBSPOT_SECRET, clock_now_ms()),
        200);
    keep_secret("a-forged-client-secret-0001");
    assert_int_equal(stack_hubspot_webhook(&st, body,
                                           "a-forged-client-secret-0001",
                                           clock_now_ms()),
                     401);
    free(body);

    long status;
    const char *bogus = "fs_made_up_token_that_nobody_was_given_0001";
    keep_secret(bogus);
    json_decref(stack_api(&st, bogus, "GET", "/api/v1/deals", NULL, &status));
    assert_int_equal(status, 401);

    char *rep = stack_user_add(&st, STACK_ORG, "Rita Rep", "rep", "100001");
    assert_non_null(rep);
    keep_secret(rep);
    json_decref(stack_api(&st, rep, "GET", "/api/v1/me", NULL, &status));
    assert_int_equal(status, 200);
    json_decref(
        stack_api(&st, rep, "PUT", "/api/v1/admin/stages", "{}", &status));
    assert_int_equal(status, 403);
    free(rep);

    int code;
    const char *list[] = {"user", "list", "--org", STACK_ORG, NULL};
    keep_output(cli(list, &code));
    const char *status_cmd[] = {"status", "--org", OAUTH_ORG, NULL};
    keep_output(cli(status_cmd, &code));
}

/* Fails naming the file and the secret's kind of place if one is in. */
static void assert_no_secret(const char *where, const char *text)
{
    for (size_t i = 0; i < n_secrets; i++) {
        char prefix[PREFIX_LEN + 1];
        snprintf(prefix, sizeof(prefix), "%s", secrets[i]);
        bool whole = strstr(text, secrets[i]) != NULL;
        bool part =
            strlen(secrets[i]) > PREFIX_LEN + 4 && strstr(text, prefix) != NULL;
        if (whole || part)
            fprintf(stderr, "secret %zu (%.6s...) found in %s\n", i, secrets[i],
                    where);
        assert_false(whole);
        assert_false(part);
    }
}

/* The files in the stack's folder that are logs or outputs: not the
 * database (it holds the secrets by design), the seed or the key. */
static bool is_log(const char *name)
{
    return strncmp(name, "fieldsync.db", 12) != 0 &&
           strncmp(name, "tls.", 4) != 0 && strcmp(name, "seed") != 0 &&
           name[0] != '.';
}

static void test_no_secret_in_any_log(void **state)
{
    run_oauth_org();
    run_hostile_traffic();
    assert_true(stack_settled(&st, STACK_WAIT_MS));
    printf("searching for %zu secrets\n", n_secrets);
    assert_true(n_secrets >= 10);

    /* Both programs' logs, after they stopped (nothing left to flush). */
    assert_true(stack_restart_serve(&st, NULL));
    DIR *dir = opendir(st.dir);
    struct dirent *e;
    size_t files = 0;
    assert_non_null(dir);
    while ((e = readdir(dir)) != NULL) {
        if (!is_log(e->d_name))
            continue;
        char *path = xasprintf("%s/%s", st.dir, e->d_name);
        char *text = stack_read_file(path);
        assert_no_secret(e->d_name, text);
        files++;
        free(text);
        free(path);
    }
    closedir(dir);
    assert_no_secret("command output", outputs);
    assert_true(files >= 2); /* serve.log and sim.log at least */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_secret_in_any_log),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
