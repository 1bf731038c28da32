/* fieldsync serve against a simulator with a tiny rate budget: the
 * connection's governor spreads the calls so the CRM (almost) never has to
 * answer 429, and every deal created in the field still arrives, once. */
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

/* Calls per rolling 10 s, the same on both sides. */
#define BUDGET 5
/* Creates go one a call: more than the budget needs a second window. */
#define CREATES (BUDGET + 2)
/* A 429 at most: the first calls of serve share the window with the
 * import's, which serve's governor learns of from the CRM's headers. */
#define MAX_429 1
/* Two windows, and a third when a 429 pauses the connection for one. */
#define ARRIVAL_WAIT_MS 45000

static struct stack st;
static char *lead_ids[CREATES]; /* our ids of the deals created */

static int setup(void **state)
{
    struct stack_options o = {
        .deals = 6, .sim_rate_10s = BUDGET, .conn_rate_10s = BUDGET};
    return stack_start(&st, &o) ? 0 : -1;
}

static int teardown(void **state)
{
    for (size_t i = 0; i < CREATES; i++)
        free(lead_ids[i]);
    return stack_stop(&st) ? 0 : -1;
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

    if (!http_test_poll(all_arrived, NULL, ARRIVAL_WAIT_MS))
        fail_msg("not every lead reached the CRM: %lld calls, %lld 429s",
                 (long long)stack_sim_stat(&st, "api_calls", NULL),
                 (long long)stack_sim_stat(&st, "rate_limited", NULL));
    assert_true(stack_sim_stat(&st, "api_calls_by_kind", "create") >= CREATES);
    assert_true(stack_sim_stat(&st, "rate_limited", NULL) <= MAX_429);
    for (size_t i = 0; i < CREATES; i++) {
        char *name = xasprintf("Budget lead %zu", i);
        assert_int_equal(sim_deals_named(name), 1);
        free(name);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_governor_keeps_calls_within_budget),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
