/* OAuth against the HubSpot simulator, which issues 2-second access
 * tokens, refuses expired ones with 401 and rotates the refresh token on
 * every refresh: many threads calling across several expiries make one
 * refresh per token lifetime and never send an expired token; the
 * running service refreshes for its pusher and backstop, and the rotated
 * refresh token it stored works after a restart. */
#include "http_test.h"
#include "stack.h"
#include "stack_hubspot.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "net/http_client.h"
#include "providers/hubspot.h"
#include "providers/oauth.h"

#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define CLIENT_ID "fieldsync-test-client"
#define FIRST_REFRESH_TOKEN "rt-install-0001"
#define TTL_S 2
#define THREADS 12
#define RUN_MS 5000
#define OTHER_ORG "oauthco"
#define OTHER_PORTAL "9003"

static struct stack st;
/* The refresh token the simulator takes now: rotated by every refresh. */
static char *live_refresh_token;

static int setup(void **state)
{
    static const char *const sim_args[] = {
        "--oauth-client-id",       CLIENT_ID,
        "--refresh-token",         FIRST_REFRESH_TOKEN,
        "--token-ttl-s",           "2",
        "--rotate-refresh-tokens", NULL};
    struct stack_options o = {
        .deals = 8, .backstop_ms = 300, .sim_args = sim_args};

    live_refresh_token = xstrdup(FIRST_REFRESH_TOKEN);
    return stack_start(&st, &o) ? 0 : -1;
}

static int teardown(void **state)
{
    free(live_refresh_token);
    return stack_stop(&st) ? 0 : -1;
}

/* ---- many threads in this process, on the real HubSpot provider ---- */

struct memory_store {
    pthread_mutex_t lock;
    struct oauth_tokens tokens;
    int saves;
};

static fs_result mem_load(void *ctx, int64_t id, struct oauth_tokens *out)
{
    struct memory_store *m = ctx;

    pthread_mutex_lock(&m->lock);
    memset(out, 0, sizeof(*out));
    out->access_token =
        m->tokens.access_token ? xstrdup(m->tokens.access_token) : NULL;
    out->refresh_token = xstrdup(m->tokens.refresh_token);
    out->expires_at = m->tokens.expires_at;
    out->refresh_at = m->tokens.refresh_at;
    pthread_mutex_unlock(&m->lock);
    return FS_OK;
}

static fs_result mem_save(void *ctx, int64_t id, const struct oauth_tokens *t)
{
    struct memory_store *m = ctx;

    pthread_mutex_lock(&m->lock);
    oauth_tokens_clear(&m->tokens);
    m->tokens.access_token = xstrdup(t->access_token);
    m->tokens.refresh_token = xstrdup(t->refresh_token);
    m->tokens.expires_at = t->expires_at;
    m->tokens.refresh_at = t->refresh_at;
    m->saves++;
    pthread_mutex_unlock(&m->lock);
    return FS_OK;
}

struct worker {
    const struct connection *conn;
    struct oauth_keeper *keeper;
    int calls;
    int failed;
};

static void *call_crm(void *arg)
{
    struct worker *w = arg;
    struct provider_session s = {
        .conn = w->conn,
        .http = http_client_new(),
        .tokens = w->keeper,
        .timeout_ms = 10000,
    };
    int64_t end = clock_mono_ms() + RUN_MS;

    while (clock_mono_ms() < end) {
        struct crm_owner *owners = NULL;
        size_t n = 0;
        fs_result r = hubspot_provider.list_owners(&s, &owners, &n);
        if (r == FS_OK && n > 0) {
            w->calls++;
        } else {
            w->failed++;
            fprintf(stderr, "call failed: %s (%zu owners)\n", fs_result_name(r),
                    n);
        }
        crm_owners_free(owners, n);
        clock_sleep_ms(2); /* inside the simulator's 100,000 per 10 s */
    }
    http_client_free(s.http);
    return NULL;
}

static void test_many_threads_one_refresh_per_lifetime(void **state)
{
    struct memory_store mem = {.tokens.refresh_token =
                                   xstrdup(FIRST_REFRESH_TOKEN)};
    struct oauth_store_ops ops = {mem_load, mem_save, NULL, &mem};
    struct connection conn = {
        .id = 1,
        .provider = "hubspot",
        .base_url = st.sim_base,
        .client_secret = STACK_HUBSPOT_SECRET,
        .oauth_client_id = CLIENT_ID,
        .refresh_token = FIRST_REFRESH_TOKEN,
    };
    pthread_t threads[THREADS];
    struct worker workers[THREADS];

    pthread_mutex_init(&mem.lock, NULL);
    struct oauth_keeper *keeper = oauth_keeper_new(&ops);
    int64_t refreshes_before =
        stack_sim_stat(&st, "api_calls_by_kind", "oauth_token");
    int64_t expired_before = stack_sim_stat(&st, "auth_expired", NULL);

    for (int i = 0; i < THREADS; i++) {
        workers[i] = (struct worker){&conn, keeper, 0, 0};
        pthread_create(&threads[i], NULL, call_crm, &workers[i]);
    }
    int calls = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(threads[i], NULL);
        calls += workers[i].calls;
        assert_int_equal(workers[i].failed, 0);
    }

    int64_t refreshes =
        stack_sim_stat(&st, "api_calls_by_kind", "oauth_token") -
        refreshes_before;
    printf("%d calls from %d threads over %d ms with %d s tokens: %" PRId64
           " refreshes\n",
           calls, THREADS, RUN_MS, TTL_S, refreshes);
    /* Not one call went out with an expired token. */
    assert_int_equal(stack_sim_stat(&st, "auth_expired", NULL), expired_before);
    /* Every refresh the simulator saw is the keeper's, one at a time: the
     * first, then one a lifetime less its last quarter (1.5 s). */
    assert_int_equal(refreshes, oauth_keeper_refreshes(keeper));
    assert_true(refreshes >= 1 + RUN_MS / (TTL_S * 1000));
    assert_true(refreshes <= 1 + RUN_MS / (TTL_S * 750) + 1);
    assert_int_equal(mem.saves, refreshes);

    free(live_refresh_token);
    live_refresh_token = xstrdup(mem.tokens.refresh_token);
    assert_string_not_equal(live_refresh_token, FIRST_REFRESH_TOKEN);
    oauth_keeper_free(keeper);
    oauth_tokens_clear(&mem.tokens);
    pthread_mutex_destroy(&mem.lock);
}

/* ---- the service ---- */

static char *other_admin;

/* The refresh token fieldsync has stored for the connection (caller
 * frees). */
static char *stored_refresh_token(void)
{
    return stack_connection_secret(&st, OTHER_PORTAL, "refresh_token");
}

static bool other_org_imported(void *ctx)
{
    long status;
    json_t *page =
        stack_api(&st, other_admin, "GET", "/api/v1/deals", NULL, &status);
    bool done = status == 200 &&
                json_array_size(json_object_get(page, "deals")) == st.deals;
    json_decref(page);
    return done;
}

/* The other org's record id of CRM deal crm_id (caller frees). */
static char *other_record_id(const char *crm_id)
{
    long status;
    json_t *page = stack_api(&st, other_admin, "GET", "/api/v1/deals?limit=100",
                             NULL, &status);
    json_t *d;
    size_t i;
    char *id = NULL;

    json_array_foreach(json_object_get(page, "deals"), i, d)
    {
        if (strcmp(stack_text(d, "crm_id"), crm_id) == 0)
            id = xstrdup(stack_text(d, "id"));
    }
    json_decref(page);
    return id;
}

/* An edit in the other org reaches the CRM through the pusher, with a
 * token the keeper refreshed as needed. */
static void edit_reaches_crm(const char *record, const char *name)
{
    long status;
    char *body = xasprintf("{\"fields\":{\"name\":\"%s\"}}", name);
    json_decref(stack_patch(&st, other_admin, record, body, &status));
    assert_int_equal(status, 200);
    assert_true(stack_wait_sim(&st, "20000000002", "name", name));
    free(body);
}

static void test_service_refreshes_and_keeps_rotated_token(void **state)
{
    const char *org[] = {"org", "add", OTHER_ORG, NULL};
    int code;

    free(stack_cli(&st, &code, org));
    assert_int_equal(code, 0);
    const char *connect[] = {"connect",
                             "hubspot",
                             "--org",
                             OTHER_ORG,
                             "--oauth-client-id",
                             CLIENT_ID,
                             "--refresh-token",
                             live_refresh_token,
                             "--client-secret",
                             STACK_HUBSPOT_SECRET,
                             "--app-id",
                             STACK_HUBSPOT_APP_ID,
                             "--portal-id",
                             OTHER_PORTAL,
                             "--base-url",
                             st.sim_base,
                             NULL};
    char *out = stack_cli(&st, &code, connect);
    assert_int_equal(code, 0);
    /* Nothing the command printed carries a token. */
    assert_null(strstr(out, live_refresh_token));
    assert_null(strstr(out, "sim-at-"));
    assert_null(strstr(out, "sim-rt-"));
    free(out);
    char *at_connect = stored_refresh_token();
    assert_non_null(at_connect);
    assert_string_not_equal(at_connect, live_refresh_token);

    other_admin = stack_user_add(&st, OTHER_ORG, "Olga Admin", "admin", NULL);
    assert_non_null(other_admin);
    assert_true(http_test_poll(other_org_imported, NULL, STACK_WAIT_MS));
    int64_t expired_before = stack_sim_stat(&st, "auth_expired", NULL);
    int64_t refreshes_before =
        stack_sim_stat(&st, "api_calls_by_kind", "oauth_token");

    char *record = other_record_id("20000000002");
    assert_non_null(record);
    edit_reaches_crm(record, "Pushed with an OAuth token");
    stack_wait_past(clock_now_ms() + TTL_S * 1000);
    edit_reaches_crm(record, "Pushed after the first token expired");

    /* The service stops; the token it held expires meanwhile; the one
     * refresh token that works is the one it stored. */
    assert_true(stack_restart_serve(&st, NULL));
    stack_wait_past(clock_now_ms() + TTL_S * 1000);
    edit_reaches_crm(record, "Pushed after a restart");

    char *now_stored = stored_refresh_token();
    assert_string_not_equal(now_stored, at_connect);
    assert_true(stack_sim_stat(&st, "api_calls_by_kind", "oauth_token") >
                refreshes_before + 1);
    assert_int_equal(stack_sim_stat(&st, "auth_expired", NULL), expired_before);
    free(now_stored);
    free(at_connect);
    free(record);
    free(other_admin);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_many_threads_one_refresh_per_lifetime),
        cmocka_unit_test(test_service_refreshes_and_keeps_rotated_token),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
