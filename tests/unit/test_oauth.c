/* The OAuth token keeper with a stand-in token endpoint and store: one
 * refresh in flight however many threads call, a rotated refresh token
 * kept and stored before use, tokens another process stored taken, and
 * failures backed off. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "oauth_test.h"
#include "providers/oauth.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define THREADS 16
#define ISSUED_MAX 64

/* The stand-in CRM and store (the store first: the keeper's ctx is the
 * fake). */
struct fake {
    struct oauth_test_memory mem;
    pthread_mutex_t lock;
    int64_t lifetime_s;
    fs_result answer;   /* what the endpoint answers */
    int exchanges;      /* calls of the endpoint */
    int in_flight;      /* calls under way now */
    int most_in_flight; /* at once, at most */
    char *current_rt;   /* the refresh token the endpoint takes */
    bool wrong_rt;      /* a refresh token other than current_rt came */
    /* Every access token issued and when it expires. */
    char *issued[ISSUED_MAX];
    int64_t issued_expiry[ISSUED_MAX];
    int n_issued;
};

static fs_result fake_exchange(void *ctx, struct provider_session *s,
                               const struct oauth_grant *grant,
                               struct oauth_tokens *out, char **error)
{
    struct fake *f = ctx;

    pthread_mutex_lock(&f->lock);
    f->exchanges++;
    if (++f->in_flight > f->most_in_flight)
        f->most_in_flight = f->in_flight;
    pthread_mutex_unlock(&f->lock);
    clock_sleep_ms(30); /* the network, so callers pile up meanwhile */

    pthread_mutex_lock(&f->lock);
    f->in_flight--;
    fs_result r = f->answer;
    if (r == FS_OK && strcmp(grant->value, f->current_rt) != 0) {
        f->wrong_rt = true;
        r = FS_ERR_AUTH;
    }
    if (r == FS_OK) {
        int n = f->n_issued++;
        out->access_token = xasprintf("at-%d", n);
        out->refresh_token = xasprintf("rt-%d", n);
        oauth_tokens_set_lifetime(out, clock_now_ms(), f->lifetime_s);
        free(f->current_rt);
        f->current_rt = xstrdup(out->refresh_token);
        f->issued[n] = xstrdup(out->access_token);
        f->issued_expiry[n] = out->expires_at;
    } else {
        *error = xstrdup("refused");
    }
    pthread_mutex_unlock(&f->lock);
    return r;
}

struct rig {
    struct fake f;
    struct oauth_keeper *keeper;
    struct connection conn;
};

static void rig_init(struct rig *r, int64_t lifetime_s)
{
    memset(r, 0, sizeof(*r));
    pthread_mutex_init(&r->f.lock, NULL);
    r->f.lifetime_s = lifetime_s;
    r->f.current_rt = xstrdup("rt-install");
    oauth_test_memory_init(&r->f.mem, "rt-install");
    struct oauth_store_ops ops = {oauth_test_memory_load,
                                  oauth_test_memory_save, fake_exchange, &r->f};
    r->keeper = oauth_keeper_new(&ops);
    r->conn.id = 7;
    r->conn.provider = xstrdup("hubspot");
    r->conn.refresh_token = xstrdup("rt-install");
}

static void rig_free(struct rig *r)
{
    oauth_keeper_free(r->keeper);
    connection_clear(&r->conn);
    oauth_test_memory_clear(&r->f.mem);
    free(r->f.current_rt);
    for (int i = 0; i < r->f.n_issued; i++)
        free(r->f.issued[i]);
    pthread_mutex_destroy(&r->f.lock);
}

static fs_result token_of(struct rig *r, char **token)
{
    struct provider_session s = {
        .conn = &r->conn, .tokens = r->keeper, .timeout_ms = 5000};
    return oauth_keeper_token(r->keeper, &s, token);
}

/* When the token handed out expires, from the endpoint's record. */
static int64_t expiry_of(struct rig *r, const char *token)
{
    int64_t at = -1;

    pthread_mutex_lock(&r->f.lock);
    for (int i = 0; i < r->f.n_issued; i++) {
        if (strcmp(r->f.issued[i], token) == 0)
            at = r->f.issued_expiry[i];
    }
    pthread_mutex_unlock(&r->f.lock);
    return at;
}

static void test_lifetime_margins(void **state)
{
    struct oauth_tokens t = {0};

    oauth_tokens_set_lifetime(&t, 1000, 1800);
    assert_int_equal(t.expires_at, 1000 + 1800000);
    assert_int_equal(t.refresh_at, 1000 + 1800000 - 300000);
    oauth_tokens_set_lifetime(&t, 1000, 4);
    assert_int_equal(t.expires_at, 5000);
    assert_int_equal(t.refresh_at, 4000);
}

static void test_static_token_as_is(void **state)
{
    struct rig r;
    char *token = NULL;

    rig_init(&r, 1);
    free(r.conn.refresh_token);
    r.conn.refresh_token = NULL;
    r.conn.token = xstrdup("pat-static");
    assert_int_equal(token_of(&r, &token), FS_OK);
    assert_string_equal(token, "pat-static");
    assert_int_equal(r.f.exchanges, 0);
    free(token);
    rig_free(&r);
}

struct caller {
    struct rig *r;
    int calls;
    int stale; /* tokens handed out already expired */
    int failed;
};

static void *call_loop(void *arg)
{
    struct caller *c = arg;
    int64_t end = clock_mono_ms() + 2600;

    while (clock_mono_ms() < end) {
        char *token = NULL;
        if (token_of(c->r, &token) != FS_OK) {
            c->failed++;
        } else {
            if (expiry_of(c->r, token) <= clock_now_ms())
                c->stale++;
            c->calls++;
        }
        free(token);
        clock_sleep_ms(3);
    }
    return NULL;
}

/* Sixteen threads call across several expiries of a 1 s token: one
 * refresh at a time, each token handed out still valid, each new
 * refresh presenting the refresh token the last one returned, each
 * stored before anyone used it. */
static void test_one_refresh_in_flight(void **state)
{
    struct rig r;
    pthread_t threads[THREADS];
    struct caller callers[THREADS];

    rig_init(&r, 1);
    for (int i = 0; i < THREADS; i++) {
        callers[i] = (struct caller){.r = &r};
        pthread_create(&threads[i], NULL, call_loop, &callers[i]);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);

    int calls = 0;
    for (int i = 0; i < THREADS; i++) {
        calls += callers[i].calls;
        assert_int_equal(callers[i].stale, 0);
        assert_int_equal(callers[i].failed, 0);
    }
    printf("%d calls over 2.6 s made %d refreshes\n", calls, r.f.exchanges);
    assert_int_equal(r.f.most_in_flight, 1);
    assert_false(r.f.wrong_rt);
    /* A refresh a quarter before each expiry (0.75 s), and the first. */
    assert_true(r.f.exchanges >= 3);
    assert_true(r.f.exchanges <= 1 + 4);
    assert_int_equal(oauth_keeper_refreshes(r.keeper), r.f.exchanges);
    assert_int_equal(r.f.mem.saves, r.f.exchanges);
    assert_string_equal(r.f.mem.tokens.refresh_token, r.f.current_rt);
    rig_free(&r);
}

/* Another process refreshed and stored first: its tokens are taken, the
 * endpoint is not called (its refresh token would be dead already). */
static void test_tokens_stored_elsewhere_are_taken(void **state)
{
    struct rig r;
    char *token = NULL;

    rig_init(&r, 60);
    oauth_tokens_clear(&r.f.mem.tokens);
    r.f.mem.tokens.access_token = xstrdup("at-other-process");
    r.f.mem.tokens.refresh_token = xstrdup("rt-other-process");
    oauth_tokens_set_lifetime(&r.f.mem.tokens, clock_now_ms(), 60);
    assert_int_equal(token_of(&r, &token), FS_OK);
    assert_string_equal(token, "at-other-process");
    assert_int_equal(r.f.exchanges, 0);
    free(token);
    rig_free(&r);
}

/* The endpoint refuses: the failure comes back, is not retried at once,
 * and is tried again after the backoff. */
static void test_refused_refresh_backs_off(void **state)
{
    struct rig r;
    char *token = NULL;

    rig_init(&r, 60);
    r.f.answer = FS_ERR_AUTH;
    assert_int_equal(token_of(&r, &token), FS_ERR_AUTH);
    assert_null(token);
    assert_int_equal(token_of(&r, &token), FS_ERR_AUTH);
    assert_int_equal(r.f.exchanges, 1);

    clock_sleep_ms(1100);
    r.f.answer = FS_OK;
    assert_int_equal(token_of(&r, &token), FS_OK);
    assert_string_equal(token, "at-0");
    assert_int_equal(r.f.exchanges, 2);
    free(token);
    rig_free(&r);
}

/* A 401 to a token makes the next call refresh; a 401 to a token
 * already replaced does not. */
static void test_rejected_token_refreshes(void **state)
{
    struct rig r;
    char *first = NULL;
    char *second = NULL;

    rig_init(&r, 60);
    assert_int_equal(token_of(&r, &first), FS_OK);
    oauth_keeper_rejected(r.keeper, r.conn.id, first);
    assert_int_equal(token_of(&r, &second), FS_OK);
    assert_string_not_equal(first, second);
    assert_int_equal(r.f.exchanges, 2);

    oauth_keeper_rejected(r.keeper, r.conn.id, first);
    free(second);
    assert_int_equal(token_of(&r, &second), FS_OK);
    assert_int_equal(r.f.exchanges, 2);
    free(first);
    free(second);
    rig_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lifetime_margins),
        cmocka_unit_test(test_static_token_as_is),
        cmocka_unit_test(test_one_refresh_in_flight),
        cmocka_unit_test(test_tokens_stored_elsewhere_are_taken),
        cmocka_unit_test(test_refused_refresh_backs_off),
        cmocka_unit_test(test_rejected_token_refreshes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
