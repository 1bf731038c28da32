/* Unit tests for the rate governor: rolling window, daily count, pauses,
 * what the CRM reports, and many threads sharing one governor. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "net/rate_governor.h"

#include <limits.h>
#include <pthread.h>

#define DAY_MS INT64_C(86400000)
/* 2026-12-03T10:00:00Z, a time well inside a UTC day. */
#define T0 INT64_C(1796292000000)

static struct rate_governor *make(int calls, int64_t window_ms, int daily)
{
    struct rate_budget b = {
        .window_calls = calls, .window_ms = window_ms, .daily_units = daily};
    return rate_governor_new(&b);
}

static void test_window_fills_and_rolls(void **state)
{
    struct rate_governor *gov = make(3, 1000, 0);

    assert_int_equal(rate_governor_try_acquire(gov, 1, T0), 0);
    assert_int_equal(rate_governor_try_acquire(gov, 1, T0 + 10), 0);
    assert_int_equal(rate_governor_try_acquire(gov, 1, T0 + 20), 0);
    assert_int_equal(rate_governor_window_left(gov, T0 + 20), 0);

    /* The oldest call leaves the window 1000 ms after it was made. */
    assert_int_equal(rate_governor_try_acquire(gov, 1, T0 + 30), 970);
    assert_int_equal(rate_governor_try_acquire(gov, 1, T0 + 999), 1);
    assert_int_equal(rate_governor_try_acquire(gov, 1, T0 + 1000), 0);
    assert_int_equal(rate_governor_try_acquire(gov, 1, T0 + 1000), 10);
    assert_int_equal(rate_governor_calls_made(gov), 4);
    rate_governor_free(gov);
}

static void test_cost_takes_several_slots(void **state)
{
    struct rate_governor *gov = make(5, 1000, 0);

    assert_int_equal(rate_governor_try_acquire(gov, 2, T0), 0);
    assert_int_equal(rate_governor_try_acquire(gov, 2, T0 + 100), 0);
    assert_int_equal(rate_governor_window_left(gov, T0 + 100), 1);
    /* Two more need both calls of T0 gone. */
    assert_int_equal(rate_governor_try_acquire(gov, 2, T0 + 200), 800);
    assert_int_equal(rate_governor_try_acquire(gov, 1, T0 + 200), 0);
    assert_int_equal(rate_governor_calls_made(gov), 5);
    rate_governor_free(gov);
}

static void test_daily_count_resets_at_utc_midnight(void **state)
{
    int64_t midnight = (T0 / DAY_MS + 1) * DAY_MS;
    struct rate_governor *gov = make(100, 1000, 2);

    assert_int_equal(rate_governor_daily_left(gov, T0), 2);
    assert_int_equal(rate_governor_try_acquire(gov, 1, T0), 0);
    assert_int_equal(rate_governor_try_acquire(gov, 1, T0 + 1), 0);
    assert_int_equal(rate_governor_daily_left(gov, T0 + 1), 0);
    assert_int_equal(rate_governor_try_acquire(gov, 1, midnight - 1), 1);
    assert_int_equal(rate_governor_try_acquire(gov, 1, T0 + 5000),
                     midnight - (T0 + 5000));

    assert_int_equal(rate_governor_daily_left(gov, midnight), 2);
    assert_int_equal(rate_governor_try_acquire(gov, 1, midnight), 0);
    assert_int_equal(rate_governor_daily_left(gov, midnight), 1);
    rate_governor_free(gov);
}

static void test_unlimited_daily(void **state)
{
    struct rate_governor *gov = make(10, 1000, 0);

    assert_int_equal(rate_governor_daily_left(gov, T0), INT_MAX);
    assert_int_equal(rate_governor_try_acquire(gov, 1, T0), 0);
    assert_int_equal(rate_governor_daily_left(gov, T0), INT_MAX);
    rate_governor_free(gov);
}

static void test_pause_blocks_until_time(void **state)
{
    struct rate_governor *gov = make(10, 1000, 0);

    rate_governor_pause(gov, T0 + 500);
    assert_int_equal(rate_governor_try_acquire(gov, 1, T0), 500);
    assert_int_equal(rate_governor_window_left(gov, T0), 0);
    /* An earlier pause never shortens a longer one. */
    rate_governor_pause(gov, T0 + 100);
    assert_int_equal(rate_governor_try_acquire(gov, 1, T0 + 200), 300);
    assert_int_equal(rate_governor_try_acquire(gov, 1, T0 + 500), 0);
    assert_int_equal(rate_governor_calls_made(gov), 1);
    rate_governor_free(gov);
}

static void test_pause_daily_until_midnight(void **state)
{
    int64_t midnight = (T0 / DAY_MS + 1) * DAY_MS;
    struct rate_governor *gov = make(10, 1000, 1000);

    rate_governor_pause_daily(gov, T0);
    assert_int_equal(rate_governor_daily_left(gov, T0), 0);
    assert_int_equal(rate_governor_try_acquire(gov, 1, T0 + 60000),
                     midnight - (T0 + 60000));
    assert_int_equal(rate_governor_try_acquire(gov, 1, midnight), 0);
    assert_int_equal(rate_governor_daily_left(gov, midnight), 999);
    rate_governor_free(gov);
}

static void test_observe_lowers_window(void **state)
{
    struct rate_governor *gov = make(10, 1000, 0);

    assert_int_equal(rate_governor_try_acquire(gov, 1, T0), 0);
    assert_int_equal(rate_governor_try_acquire(gov, 1, T0), 0);
    /* Another client of the account used the budget too. */
    rate_governor_observe(gov, 3, -1, T0 + 100);
    assert_int_equal(rate_governor_window_left(gov, T0 + 100), 3);
    /* A higher report never raises what we think is left. */
    rate_governor_observe(gov, 9, -1, T0 + 100);
    assert_int_equal(rate_governor_window_left(gov, T0 + 100), 3);

    for (int i = 0; i < 3; i++)
        assert_int_equal(rate_governor_try_acquire(gov, 1, T0 + 100), 0);
    assert_true(rate_governor_try_acquire(gov, 1, T0 + 100) > 0);
    /* Our own two calls leave at T0+1000; the reported ones are held for
     * a whole window from when we learnt of them. */
    assert_int_equal(rate_governor_window_left(gov, T0 + 1000), 2);
    assert_int_equal(rate_governor_window_left(gov, T0 + 1100), 10);
    rate_governor_free(gov);
}

static void test_observe_exhausted_window_blocks(void **state)
{
    struct rate_governor *gov = make(10, 1000, 0);

    rate_governor_observe(gov, 0, -1, T0);
    assert_int_equal(rate_governor_try_acquire(gov, 1, T0), 1000);
    assert_int_equal(rate_governor_try_acquire(gov, 1, T0 + 999), 1);
    assert_int_equal(rate_governor_try_acquire(gov, 1, T0 + 1000), 0);
    rate_governor_free(gov);
}

static void test_observe_lowers_daily(void **state)
{
    int64_t midnight = (T0 / DAY_MS + 1) * DAY_MS;
    struct rate_governor *gov = make(10, 1000, 0);

    rate_governor_observe(gov, -1, 1, T0);
    assert_int_equal(rate_governor_daily_left(gov, T0), 1);
    assert_int_equal(rate_governor_try_acquire(gov, 1, T0), 0);
    assert_int_equal(rate_governor_try_acquire(gov, 1, T0 + 2000),
                     midnight - (T0 + 2000));
    rate_governor_observe(gov, -1, 500, T0 + 2000);
    assert_int_equal(rate_governor_daily_left(gov, T0 + 2000), 0);
    rate_governor_free(gov);
}

struct race {
    struct rate_governor *gov;
    int taken;
};

static void *on_race(void *arg)
{
    struct race *r = arg;

    for (int i = 0; i < 1000; i++)
        if (rate_governor_try_acquire(r->gov, 1, T0) == 0)
            r->taken++;
    return NULL;
}

static void test_threads_never_exceed_window(void **state)
{
    struct rate_governor *gov = make(250, 10000, 0);
    struct race races[4];
    pthread_t threads[4];
    int total = 0;

    for (int i = 0; i < 4; i++) {
        races[i] = (struct race){.gov = gov};
        assert_int_equal(pthread_create(&threads[i], NULL, on_race, &races[i]),
                         0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
        total += races[i].taken;
    }
    assert_int_equal(total, 250);
    assert_int_equal(rate_governor_calls_made(gov), 250);
    assert_int_equal(rate_governor_window_left(gov, T0), 0);
    rate_governor_free(gov);
}

static void test_defaults_and_free_null(void **state)
{
    struct rate_governor *gov = make(0, 0, 0);

    assert_int_equal(rate_governor_window_left(gov, T0), 100);
    rate_governor_free(gov);
    rate_governor_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_window_fills_and_rolls),
        cmocka_unit_test(test_cost_takes_several_slots),
        cmocka_unit_test(test_daily_count_resets_at_utc_midnight),
        cmocka_unit_test(test_unlimited_daily),
        cmocka_unit_test(test_pause_blocks_until_time),
        cmocka_unit_test(test_pause_daily_until_midnight),
        cmocka_unit_test(test_observe_lowers_window),
        cmocka_unit_test(test_observe_exhausted_window_blocks),
        cmocka_unit_test(test_observe_lowers_daily),
        cmocka_unit_test(test_threads_never_exceed_window),
        cmocka_unit_test(test_defaults_and_free_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
