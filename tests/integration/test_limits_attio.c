/* The Attio connection at its edges, on the real programs: Attio's rate
 * limit hit and its Retry-After honoured; an object without an attribute
 * for a field, whose edits are refused rather than left pending; and a
 * map that does not fit the object refused at connect with the reason. */
#include "http_test.h"
#include "stack.h"

#include "base/alloc.h"
#include "base/clock.h"

#include <inttypes.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define EDITS 8
/* The simulator's budget, reads and writes alike, per second. */
#define TINY_RATE 3
/* A governor that ignored Retry-After would be refused hundreds of
 * times while the edits trickle through. */
#define MAX_429 24

static struct stack st;

static int start(const char *const *sim_args, int sim_rate)
{
    struct stack_options o = {.crm = "attio",
                              .sim_args = sim_args,
                              .deals = 12,
                              .owners = 2,
                              .sim_rate_10s = sim_rate,
                              .conn_rate_10s = 1000};
    return stack_start(&st, &o) ? 0 : -1;
}

static int stop(void **state)
{
    return stack_stop(&st) ? 0 : -1;
}

static int start_tiny(void **state)
{
    return start(NULL, TINY_RATE);
}

static const char *const omit_close_date[] = {"--omit-attribute", "close_date",
                                              NULL};

static int start_without_close_date(void **state)
{
    return start(omit_close_date, 0);
}

static char *crm_id_of(int n)
{
    return xasprintf("dea10000-0000-4000-8000-%012x", n + 1);
}

static void test_rate_limit_hit_and_honoured(void **state)
{
    char *ids[EDITS];
    char *crms[EDITS];

    for (int i = 0; i < EDITS; i++) {
        crms[i] = crm_id_of(i);
        ids[i] = stack_record_id(&st, crms[i]);
        assert_non_null(ids[i]);
        char *body = xasprintf("{\"fields\":{\"name\":\"Throttled %d\"}}", i);
        long status = 0;
        json_decref(stack_patch(&st, st.admin, ids[i], body, &status));
        assert_int_equal(status, 200);
        free(body);
    }
    for (int i = 0; i < EDITS; i++) {
        char *want = xasprintf("Throttled %d", i);
        assert_true(stack_wait_sim(&st, crms[i], "name", want));
        assert_true(stack_wait_state(&st, ids[i], "synced"));
        free(want);
    }
    int64_t limited = stack_sim_stat(&st, "rate_limited", NULL);
    fprintf(stderr, "attio limits: api_calls=%lld rate_limited=%lld\n",
            (long long)stack_sim_stat(&st, "api_calls", NULL),
            (long long)limited);
    assert_true(limited > 0);
    assert_true(limited <= MAX_429);
    /* No edit written twice: updates beyond one a deal were refused. */
    assert_true(stack_sim_stat(&st, "api_calls_by_kind", "update") <=
                EDITS + limited);
    for (int i = 0; i < EDITS; i++) {
        free(ids[i]);
        free(crms[i]);
    }
}

static void test_unsynced_field_refused(void **state)
{
    char *crm = crm_id_of(0);
    char *id = stack_record_id(&st, crm);
    long status = 0;

    json_t *err =
        stack_patch(&st, st.admin, id,
                    "{\"fields\":{\"close_date\":\"2027-01-01\"}}", &status);
    assert_int_equal(status, 422);
    assert_string_equal(stack_text(err, "error"), "field_not_synced");
    assert_string_equal(stack_text(err, "field"), "close_date");
    json_decref(err);

    /* Nothing of it was kept: the deal has nothing to push. */
    assert_true(stack_wait_state(&st, id, "synced"));
    json_t *deal = stack_deal(&st, id);
    assert_true(json_is_null(json_object_get(deal, "close_date")));
    json_decref(deal);

    /* The fields the object has still sync; a create naming the missing
     * one is refused too. */
    json_decref(stack_patch(&st, st.admin, id,
                            "{\"fields\":{\"name\":\"Still synced\"}}",
                            &status));
    assert_int_equal(status, 200);
    assert_true(stack_wait_sim(&st, crm, "name", "Still synced"));
    err = stack_api(&st, st.admin, "POST", "/api/v1/deals",
                    "{\"fields\":{\"name\":\"x\",\"close_date\":"
                    "\"2027-01-01\"}}",
                    &status);
    assert_int_equal(status, 422);
    json_decref(err);
    free(id);
    free(crm);
}

/* `connect attio` in a second org with a map that does not fit. */
static char *connect_with_map(const char *map, int *code)
{
    const char *add[] = {"org", "add", "beta", NULL};
    free(stack_cli(&st, code, add));
    const char *args[] = {"connect",
                          "attio",
                          "--org",
                          "beta",
                          "--token",
                          STACK_SIM_TOKEN,
                          "--webhook-secret",
                          STACK_SECRET,
                          "--base-url",
                          st.sim_base,
                          "--map",
                          map,
                          NULL};
    return stack_cli(&st, code, args);
}

static void test_map_checked_at_connect(void **state)
{
    int code = 0;
    char *out = connect_with_map("owner=account_name", &code);

    assert_int_not_equal(code, 0);
    assert_non_null(strstr(out, "owner"));
    assert_non_null(strstr(out, "actor-reference"));
    free(out);

    out = connect_with_map("stage=", &code);
    assert_int_not_equal(code, 0);
    assert_non_null(strstr(out, "stage is a core field"));
    free(out);

    /* An explicitly named field the object lacks. */
    out = connect_with_map("close_date=close_date", &code);
    assert_int_not_equal(code, 0);
    assert_non_null(strstr(out, "'close_date'"));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rate_limit_hit_and_honoured,
                                        start_tiny, stop),
        cmocka_unit_test_setup_teardown(test_unsynced_field_refused,
                                        start_without_close_date, stop),
        cmocka_unit_test_setup_teardown(test_map_checked_at_connect,
                                        start_without_close_date, stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
