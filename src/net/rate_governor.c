/* A per-connection rate governor: a rolling window of call times, a daily
 * count that resets at UTC midnight, and pauses the CRM asked for. */
#include "net/rate_governor.h"

#include "base/alloc.h"

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>

#define DAY_MS INT64_C(86400000)
#define DEFAULT_WINDOW_CALLS 100
#define DEFAULT_WINDOW_MS INT64_C(10000)

struct rate_governor {
    pthread_mutex_t lock;
    struct rate_budget budget;

    /* Times of the calls inside the window, oldest first, as a ring of
     * budget.window_calls slots. Calls the CRM reported but we did not
     * make are entered here too, stamped when we learnt of them. */
    int64_t *times;
    int head;
    int count;
    int64_t last_time;

    int64_t day;        /* UTC day number the daily figures are for */
    int64_t daily_left; /* units left today; -1 when unlimited, unknown */
    int64_t paused_until;
    int64_t calls_made;
};

static int64_t day_of(int64_t now_ms)
{
    int64_t d = now_ms / DAY_MS;
    return now_ms < 0 && now_ms % DAY_MS ? d - 1 : d;
}

static int64_t budget_daily(const struct rate_budget *b)
{
    return b->daily_units > 0 ? b->daily_units : -1;
}

struct rate_governor *rate_governor_new(const struct rate_budget *budget)
{
    struct rate_governor *gov = xcalloc(1, sizeof(*gov));

    gov->budget = *budget;
    if (gov->budget.window_calls <= 0)
        gov->budget.window_calls = DEFAULT_WINDOW_CALLS;
    if (gov->budget.window_ms <= 0)
        gov->budget.window_ms = DEFAULT_WINDOW_MS;
    gov->times = xcalloc((size_t)gov->budget.window_calls, sizeof(int64_t));
    gov->day = INT64_MIN;
    gov->daily_left = budget_daily(&gov->budget);
    gov->last_time = INT64_MIN;
    pthread_mutex_init(&gov->lock, NULL);
    return gov;
}

void rate_governor_free(struct rate_governor *gov)
{
    if (!gov)
        return;
    pthread_mutex_destroy(&gov->lock);
    free(gov->times);
    free(gov);
}

/* Drops calls that have left the window and starts a new day's count when
 * the UTC day changed. Called with the lock held. */
static void refresh(struct rate_governor *gov, int64_t now_ms)
{
    int cap = gov->budget.window_calls;

    while (gov->count > 0 &&
           gov->times[gov->head] + gov->budget.window_ms <= now_ms) {
        gov->head = (gov->head + 1) % cap;
        gov->count--;
    }

    int64_t day = day_of(now_ms);
    if (day != gov->day) {
        if (gov->day != INT64_MIN && day > gov->day)
            gov->daily_left = budget_daily(&gov->budget);
        gov->day = day;
    }
}

/* Enters n calls at now_ms; the caller has checked they fit. Times stay
 * in order even if the caller's clock steps back. */
static void record(struct rate_governor *gov, int n, int64_t now_ms)
{
    int cap = gov->budget.window_calls;
    int64_t t = now_ms > gov->last_time ? now_ms : gov->last_time;

    for (int i = 0; i < n && gov->count < cap; i++) {
        gov->times[(gov->head + gov->count) % cap] = t;
        gov->count++;
    }
    gov->last_time = t;
}

static int64_t next_midnight(int64_t now_ms)
{
    return (day_of(now_ms) + 1) * DAY_MS;
}

/* How long until cost more calls fit into the window, 0 if they do now. */
static int64_t window_wait(const struct rate_governor *gov, int cost,
                           int64_t now_ms)
{
    int cap = gov->budget.window_calls;
    int over = gov->count + cost - cap;

    if (over <= 0)
        return 0;
    /* The over-th oldest call has to leave the window first. */
    int64_t t = gov->times[(gov->head + over - 1) % cap];
    int64_t wait = t + gov->budget.window_ms - now_ms;
    return wait > 0 ? wait : 1;
}

/* How long until the calls and daily units fit; 0 when they do now.
 * Called with the lock held, after refresh. */
static int64_t wait_for(const struct rate_governor *gov, int calls,
                        int daily_units, int64_t now_ms)
{
    if (gov->paused_until > now_ms)
        return gov->paused_until - now_ms;
    if (gov->daily_left >= 0 && gov->daily_left < daily_units)
        return next_midnight(now_ms) - now_ms;
    return window_wait(gov, calls, now_ms);
}

static int clamp_calls(const struct rate_governor *gov, int calls)
{
    if (calls < 1)
        return 1;
    return calls > gov->budget.window_calls ? gov->budget.window_calls : calls;
}

int64_t rate_governor_try_acquire_units(struct rate_governor *gov, int calls,
                                        int daily_units, int64_t now_ms)
{
    pthread_mutex_lock(&gov->lock);
    refresh(gov, now_ms);
    calls = clamp_calls(gov, calls);
    if (daily_units < 0)
        daily_units = 0;

    int64_t wait = wait_for(gov, calls, daily_units, now_ms);
    if (wait == 0) {
        record(gov, calls, now_ms);
        if (gov->daily_left >= 0)
            gov->daily_left -= daily_units;
        gov->calls_made += calls;
    }
    pthread_mutex_unlock(&gov->lock);
    return wait;
}

int64_t rate_governor_try_acquire(struct rate_governor *gov, int cost,
                                  int64_t now_ms)
{
    return rate_governor_try_acquire_units(gov, cost, cost < 1 ? 1 : cost,
                                           now_ms);
}

int64_t rate_governor_wait(struct rate_governor *gov, int calls,
                           int daily_units, int64_t now_ms)
{
    pthread_mutex_lock(&gov->lock);
    refresh(gov, now_ms);
    int64_t wait = wait_for(gov, clamp_calls(gov, calls), daily_units, now_ms);
    pthread_mutex_unlock(&gov->lock);
    return wait;
}

void rate_governor_pause(struct rate_governor *gov, int64_t until_ms)
{
    pthread_mutex_lock(&gov->lock);
    if (until_ms > gov->paused_until)
        gov->paused_until = until_ms;
    pthread_mutex_unlock(&gov->lock);
}

void rate_governor_pause_daily(struct rate_governor *gov, int64_t now_ms)
{
    pthread_mutex_lock(&gov->lock);
    refresh(gov, now_ms);
    gov->daily_left = 0;
    if (next_midnight(now_ms) > gov->paused_until)
        gov->paused_until = next_midnight(now_ms);
    pthread_mutex_unlock(&gov->lock);
}

/* A negative figure means the CRM did not report it. A figure below what
 * we count lowers our count (calls made by other clients of the same
 * account use the same budget); a higher one never raises it. */
void rate_governor_observe(struct rate_governor *gov, int window_remaining,
                           int daily_remaining, int64_t now_ms)
{
    pthread_mutex_lock(&gov->lock);
    refresh(gov, now_ms);

    if (window_remaining >= 0) {
        int left = gov->budget.window_calls - gov->count;
        if (window_remaining < left)
            record(gov, left - window_remaining, now_ms);
    }
    if (daily_remaining >= 0 &&
        (gov->daily_left < 0 || daily_remaining < gov->daily_left))
        gov->daily_left = daily_remaining;

    pthread_mutex_unlock(&gov->lock);
}

int rate_governor_window_left(struct rate_governor *gov, int64_t now_ms)
{
    int left;

    pthread_mutex_lock(&gov->lock);
    refresh(gov, now_ms);
    left = gov->budget.window_calls - gov->count;
    if (gov->paused_until > now_ms)
        left = 0;
    pthread_mutex_unlock(&gov->lock);
    return left;
}

/* INT_MAX stands for "no daily limit known". */
int rate_governor_daily_left(struct rate_governor *gov, int64_t now_ms)
{
    int64_t left;

    pthread_mutex_lock(&gov->lock);
    refresh(gov, now_ms);
    left = gov->daily_left;
    pthread_mutex_unlock(&gov->lock);
    if (left < 0 || left > INT_MAX)
        return INT_MAX;
    return (int)left;
}

int64_t rate_governor_calls_made(struct rate_governor *gov)
{
    int64_t n;

    pthread_mutex_lock(&gov->lock);
    n = gov->calls_made;
    pthread_mutex_unlock(&gov->lock);
    return n;
}
