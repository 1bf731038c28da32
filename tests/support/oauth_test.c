/* The OAuth scenarios shared by the CRMs' OAuth tests. */
#include "oauth_test.h"

#include "http_test.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "net/http_client.h"

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

/* ---- many threads in this process ---- */

void oauth_test_memory_init(struct oauth_test_memory *m,
                            const char *refresh_token)
{
    memset(m, 0, sizeof(*m));
    pthread_mutex_init(&m->lock, NULL);
    m->tokens.refresh_token = refresh_token ? xstrdup(refresh_token) : NULL;
}

void oauth_test_memory_clear(struct oauth_test_memory *m)
{
    oauth_tokens_clear(&m->tokens);
    pthread_mutex_destroy(&m->lock);
}

static char *copy(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

fs_result oauth_test_memory_load(void *ctx, int64_t id,
                                 struct oauth_tokens *out)
{
    struct oauth_test_memory *m = ctx;

    pthread_mutex_lock(&m->lock);
    memset(out, 0, sizeof(*out));
    out->access_token = copy(m->tokens.access_token);
    out->refresh_token = copy(m->tokens.refresh_token);
    out->expires_at = m->tokens.expires_at;
    out->refresh_at = m->tokens.refresh_at;
    pthread_mutex_unlock(&m->lock);
    return FS_OK;
}

fs_result oauth_test_memory_save(void *ctx, int64_t id,
                                 const struct oauth_tokens *t)
{
    struct oauth_test_memory *m = ctx;

    pthread_mutex_lock(&m->lock);
    oauth_tokens_clear(&m->tokens);
    m->tokens.access_token = copy(t->access_token);
    m->tokens.refresh_token = copy(t->refresh_token);
    m->tokens.expires_at = t->expires_at;
    m->tokens.refresh_at = t->refresh_at;
    m->saves++;
    pthread_mutex_unlock(&m->lock);
    return FS_OK;
}

struct worker {
    const struct provider *provider;
    const struct connection *conn;
    struct oauth_keeper *keeper;
    int64_t run_ms;
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
    int64_t end = clock_mono_ms() + w->run_ms;

    while (clock_mono_ms() < end) {
        struct crm_owner *owners = NULL;
        size_t n = 0;
        fs_result r = w->provider->list_owners(&s, &owners, &n);
        if (r == FS_OK && n > 0) {
            w->calls++;
        } else {
            w->failed++;
            fprintf(stderr, "call failed: %s (%zu owners)\n", fs_result_name(r),
                    n);
        }
        crm_owners_free(owners, n);
        clock_sleep_ms(2); /* inside the simulator's budget */
    }
    http_client_free(s.http);
    return NULL;
}

char *oauth_test_threads(struct stack *st, const struct provider *provider,
                         const struct connection *conn, int threads,
                         int64_t run_ms, int ttl_s)
{
    struct oauth_test_memory mem;
    struct oauth_store_ops ops = {oauth_test_memory_load,
                                  oauth_test_memory_save, NULL, &mem};
    pthread_t *ids = xcalloc((size_t)threads, sizeof(*ids));
    struct worker *workers = xcalloc((size_t)threads, sizeof(*workers));

    oauth_test_memory_init(&mem, conn->refresh_token);
    struct oauth_keeper *keeper = oauth_keeper_new(&ops);
    int64_t refreshes_before =
        stack_sim_stat(st, "api_calls_by_kind", "oauth_token");
    int64_t expired_before = stack_sim_stat(st, "auth_expired", NULL);

    for (int i = 0; i < threads; i++) {
        workers[i] = (struct worker){provider, conn, keeper, run_ms, 0, 0};
        pthread_create(&ids[i], NULL, call_crm, &workers[i]);
    }
    int calls = 0, failed = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(ids[i], NULL);
        calls += workers[i].calls;
        failed += workers[i].failed;
    }

    int64_t refreshes = stack_sim_stat(st, "api_calls_by_kind", "oauth_token") -
                        refreshes_before;
    printf("%s: %d calls from %d threads over %" PRId64
           " ms with %d s tokens: %" PRId64 " refreshes\n",
           provider->name, calls, threads, run_ms, ttl_s, refreshes);
    assert_int_equal(failed, 0);
    /* Not one call went out with an expired token. */
    assert_int_equal(stack_sim_stat(st, "auth_expired", NULL), expired_before);
    /* Every refresh the simulator saw is the keeper's, one at a time: the
     * first, then one a lifetime less its last quarter. */
    assert_int_equal(refreshes, oauth_keeper_refreshes(keeper));
    assert_true(refreshes >= 1 + run_ms / (ttl_s * 1000));
    assert_true(refreshes <= 1 + run_ms / (ttl_s * 750) + 1);
    assert_int_equal(mem.saves, refreshes);

    char *rotated = xstrdup(mem.tokens.refresh_token);
    assert_string_not_equal(rotated, conn->refresh_token);
    oauth_keeper_free(keeper);
    oauth_test_memory_clear(&mem);
    free(workers);
    free(ids);
    return rotated;
}

/* ---- the service ---- */

struct other_org {
    struct stack *st;
    char *admin;
};

static bool other_org_imported(void *ctx)
{
    struct other_org *o = ctx;
    long status;
    json_t *page =
        stack_api(o->st, o->admin, "GET", "/api/v1/deals", NULL, &status);
    bool done = status == 200 &&
                json_array_size(json_object_get(page, "deals")) == o->st->deals;
    json_decref(page);
    return done;
}

/* The other org's record id of CRM deal crm_id (caller frees). */
static char *other_record_id(struct other_org *o, const char *crm_id)
{
    long status;
    json_t *page = stack_api(o->st, o->admin, "GET", "/api/v1/deals?limit=100",
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
static void edit_reaches_crm(struct other_org *o, const char *record,
                             const char *crm_id, const char *name)
{
    long status;
    char *body = xasprintf("{\"fields\":{\"name\":\"%s\"}}", name);
    json_decref(stack_patch(o->st, o->admin, record, body, &status));
    assert_int_equal(status, 200);
    assert_true(stack_wait_sim(o->st, crm_id, "name", name));
    free(body);
}

void oauth_test_service(struct stack *st, const struct oauth_test_org *o)
{
    const char *org[] = {"org", "add", o->org, NULL};
    struct other_org other = {st, NULL};
    int code;

    free(stack_cli(st, &code, org));
    assert_int_equal(code, 0);
    char *out = stack_cli(st, &code, o->connect);
    if (code != 0)
        fprintf(stderr, "%s", out);
    assert_int_equal(code, 0);
    /* Nothing the command printed carries a token. */
    assert_null(strstr(out, o->refresh_token));
    assert_null(strstr(out, "sim-at-"));
    assert_null(strstr(out, "sim-rt-"));
    free(out);
    char *at_connect =
        stack_connection_secret(st, o->account_id, "refresh_token");
    assert_non_null(at_connect);
    assert_string_not_equal(at_connect, o->refresh_token);

    other.admin = stack_user_add(st, o->org, "Olga Admin", "admin", NULL);
    assert_non_null(other.admin);
    assert_true(http_test_poll(other_org_imported, &other, STACK_WAIT_MS));
    int64_t expired_before = stack_sim_stat(st, "auth_expired", NULL);
    int64_t refreshes_before =
        stack_sim_stat(st, "api_calls_by_kind", "oauth_token");

    const char *crm_id = stack_seed_id(st, 1);
    char *record = other_record_id(&other, crm_id);
    assert_non_null(record);
    edit_reaches_crm(&other, record, crm_id, "Pushed with an OAuth token");
    stack_wait_past(clock_now_ms() + o->ttl_s * 1000);
    edit_reaches_crm(&other, record, crm_id,
                     "Pushed after the first token expired");

    /* The service stops; the token it held expires meanwhile; the one
     * refresh token that works is the one it stored. */
    assert_true(stack_restart_serve(st, NULL));
    stack_wait_past(clock_now_ms() + o->ttl_s * 1000);
    edit_reaches_crm(&other, record, crm_id, "Pushed after a restart");

    char *now_stored =
        stack_connection_secret(st, o->account_id, "refresh_token");
    assert_string_not_equal(now_stored, at_connect);
    assert_true(stack_sim_stat(st, "api_calls_by_kind", "oauth_token") >
                refreshes_before + 1);
    assert_int_equal(stack_sim_stat(st, "auth_expired", NULL), expired_before);
    free(now_stored);
    free(at_connect);
    free(record);
    free(other.admin);
}
