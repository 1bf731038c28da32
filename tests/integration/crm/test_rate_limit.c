/* fieldsync serve against a CRM's simulator (FS_CRM) with a tiny rate
 * budget: the connection's governor spreads the calls so the CRM (almost)
 * never has to answer 429, and every deal created in the field still
 * arrives, once; and when the CRM's window is spent by someone else, the
 * CRM's 429 is honoured: the connection waits the window out instead of
 * calling into it, and the edit arrives afterwards. */
#include "http_test.h"
#include "stack.h"

#include "base/alloc.h"

#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* Calls per CRM rate window, the same on both sides. */
#define BUDGET 5
/* Creates go one a call on every CRM (HubSpot's pusher creates one a
 * call; Pipedrive and Attio have no batch create): more than the budget
 * needs a second window. */
#define CREATES (BUDGET + 2)
/* A 429 at most: the first calls of serve share the window with the
 * import's, which serve's governor learns of from the CRM's answers. */
#define MAX_429 1
/* After someone else spent the window: the push that meets the 429, and
 * at most one call another thread had already let out before the pause. */
#define MAX_429_HONOURED 2

static struct stack st;
static char *lead_ids[CREATES]; /* our ids of the deals created */

static int setup(void **state)
{
    struct stack_options o = {
        .deals = 6, .sim_rate = BUDGET, .conn_rate = BUDGET};
    return stack_start(&st, &o) ? 0 : -1;
}

static int teardown(void **state)
{
    for (size_t i = 0; i < CREATES; i++)
        free(lead_ids[i]);
    return stack_stop(&st) ? 0 : -1;
}

/* windows CRM rate windows and a few seconds for the rest. */
static int64_t windows_ms(int windows)
{
    return windows * st.crm->rate_window_ms + 5000;
}

/* Every created deal is in the CRM: fieldsync shows a CRM id and no
 * pending push. */
static bool all_arrived(void *ctx)
{
    for (size_t i = 0; i < CREATES; i++) {
        json_t *deal = stack_deal(&st, lead_ids[i]);
        const char *state = stack_text(json_object_get(deal, "sync"), "state");
        bool done =
            stack_text(deal, "crm_id") && state && strcmp(state, "synced") == 0;
        json_decref(deal);
        if (!done)
            return false;
    }
    return true;
}

static size_t sim_deals_named(const char *name)
{
    json_t *all = stack_sim_deals(&st);
    size_t i, n = 0;
    json_t *d;

    json_array_foreach(all, i, d)
    {
        const char *v = stack_text(json_object_get(d, "fields"), "name");
        n += v && strcmp(v, name) == 0;
    }
    json_decref(all);
    return n;
}

static void test_governor_keeps_calls_within_budget(void **state)
{
    long status;

    json_decref(stack_sim(&st, "POST", "/_sim/stats/reset", NULL, &status));
    assert_int_equal(status, 200);
    for (size_t i = 0; i < CREATES; i++) {
        char *body =
            xasprintf("{\"fields\":{\"name\":\"Budget lead %zu\"}}", i);
        json_t *r =
            stack_api(&st, st.admin, "POST", "/api/v1/deals", body, &status);
        assert_int_equal(status, 201);
        lead_ids[i] = xstrdup(stack_text(r, "id"));
        json_decref(r);
        free(body);
    }

    /* Two windows, and a third when a 429 pauses the connection for
     * one. */
    if (!http_test_poll(all_arrived, NULL, windows_ms(4)))
        fail_msg("not every lead reached the CRM: %lld calls, %lld 429s",
                 (long long)stack_sim_stat(&st, "api_calls", NULL),
                 (long long)stack_sim_stat(&st, "rate_limited", NULL));
    assert_true(stack_sim_stat(&st, "api_calls_by_class", "write") >= CREATES);
    assert_true(stack_sim_stat(&st, "rate_limited", NULL) <= MAX_429);
    for (size_t i = 0; i < CREATES; i++) {
        char *name = xasprintf("Budget lead %zu", i);
        assert_int_equal(sim_deals_named(name), 1);
        free(name);
    }
}

/* fieldsync's governor has its whole window again. */
static bool governor_rested(void *ctx)
{
    return stack_metric(&st, "fieldsync_rate_window_left") == BUDGET;
}

static void test_crm_rate_limit_is_hit_and_honoured(void **state)
{
    const char *crm_id = stack_seed_id(&st, 0);
    char *id = stack_record_id(&st, crm_id);
    long status;

    assert_non_null(id);
    assert_true(stack_settled(&st, STACK_WAIT_MS));
    assert_true(http_test_poll(governor_rested, NULL, windows_ms(2)));

    /* Another client of the account spends the CRM's window: fieldsync,
     * which made no call in it, cannot know until the CRM says so. */
    int64_t limited = stack_sim_stat(&st, "rate_limited", NULL);
    json_decref(stack_sim(&st, "POST", "/_sim/limits/exhaust", NULL, &status));
    assert_int_equal(status, 200);
    json_decref(stack_patch(&st, st.admin, id,
                            "{\"fields\":{\"name\":\"After the 429\"}}",
                            &status));
    assert_int_equal(status, 200);

    assert_true(
        stack_wait_sim_ms(&st, crm_id, "name", "After the 429", windows_ms(3)));
    assert_true(stack_wait_state(&st, id, "synced"));
    int64_t refused = stack_sim_stat(&st, "rate_limited", NULL) - limited;
    if (refused < 1 || refused > MAX_429_HONOURED)
        fail_msg("the CRM answered %lld 429s after its window was spent",
                 (long long)refused);
    free(id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_governor_keeps_calls_within_budget),
        cmocka_unit_test(test_crm_rate_limit_is_hit_and_honoured),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
