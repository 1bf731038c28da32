/* Convergence under faults with a CRM's simulator (FS_CRM): seeded random
 * operations on both sides (field and CRM edits of the same and of
 * different fields, creates on both sides, CRM deletes, merges and
 * restores, owner and stage changes) while the simulator drops,
 * duplicates, delays and reorders webhooks and answers 5xx, timeouts and
 * its own 429s. Then the faults stop, the sync goes quiet with backstop
 * passes after, and both sides must hold, field by field, what the merge
 * rules predict from the edit log (tests/support/oracle.h, a model written
 * apart from fieldsync's merge code).
 *
 * FS_SEED replays a seed (each run prints its own); FS_OPS sets the
 * number of operations (default 300; `make stress` runs many more). */
#include "stack.h"
#include "workload.h"

#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#define BACKSTOP_MS 1000
/* Long enough that no deal is marked failed during a run. */
#define FAIL_AFTER_MS 3600000
#define DEFAULT_OPS 300
/* The CRM's 429 window, 5xx backoff and 6 s timeouts all drain in this. */
#define QUIET_MS 180000

static struct stack st;

static int setup(void **state)
{
    struct stack_options o = {.deals = 12,
                              .backstop_ms = BACKSTOP_MS,
                              .fail_after_ms = FAIL_AFTER_MS};
    return stack_start(&st, &o) ? 0 : -1;
}

static int teardown(void **state)
{
    return stack_stop(&st) ? 0 : -1;
}

static void test_sides_converge_to_the_rules_under_faults(void **state)
{
    struct workload w;
    struct oracle_result r;
    int ops = workload_ops(DEFAULT_OPS);

    workload_init(&w, &st, workload_seed("converge"));
    assert_true(workload_set_faults(&w, true));
    while (w.op < ops)
        workload_step(&w);
    assert_true(workload_set_faults(&w, false));

    bool quiet = stack_quiet(&st, QUIET_MS);
    if (!quiet)
        printf("  the sync did not go quiet in %d ms\n", QUIET_MS);
    oracle_check(&w.oracle, &st, &r);
    workload_print(&w, "converge", &r);
    assert_true(quiet);
    assert_int_equal(r.differences, 0);
    assert_int_equal(r.lost, 0);
    assert_int_equal(r.doubled, 0);
    assert_true(r.deals_checked > 0);
    workload_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sides_converge_to_the_rules_under_faults),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
