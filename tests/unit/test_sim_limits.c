/* Unit tests of the simulators' rate-limit counting: the rolling window
 * and the daily budget. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "sim_limits.h"

static void test_window_rolls(void **state)
{
    struct sim_window w;

    sim_window_init(&w, 3, 10000);
    assert_true(sim_window_take(&w, 1000));
    assert_true(sim_window_take(&w, 2000));
    assert_true(sim_window_take(&w, 9000));
    assert_int_equal(sim_window_remaining(&w, 9000), 0);
    assert_false(sim_window_take(&w, 10999));
    /* The first call leaves the window 10 s after it was made. */
    assert_int_equal(sim_window_remaining(&w, 11000), 1);
    assert_true(sim_window_take(&w, 11000));
    assert_false(sim_window_take(&w, 11500));
    assert_int_equal(sim_window_remaining(&w, 18999), 1);
    assert_int_equal(sim_window_remaining(&w, 19000), 2);
    assert_int_equal(sim_window_remaining(&w, 30000), 3);
    sim_window_free(&w);
}

static void test_daily_budget_resets_at_midnight_utc(void **state)
{
    struct sim_daily d;
    int64_t day = 20000 * SIM_DAY_MS;

    sim_daily_init(&d, 10, day + 5);
    assert_true(sim_daily_allows(&d, day + 10, 4));
    sim_daily_count(&d, 4);
    assert_true(sim_daily_allows(&d, day + 20, 6));
    sim_daily_count(&d, 6);
    assert_int_equal(sim_daily_remaining(&d), 0);
    assert_false(sim_daily_allows(&d, day + SIM_DAY_MS - 1, 1));
    assert_true(sim_daily_allows(&d, day + SIM_DAY_MS, 10));
    assert_int_equal(sim_daily_remaining(&d), 10);
    assert_false(sim_daily_allows(&d, day + SIM_DAY_MS, 11));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_window_rolls),
        cmocka_unit_test(test_daily_budget_resets_at_midnight_utc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
