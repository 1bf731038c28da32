/* Keeps a connection's calls inside the CRM's budgets: a rolling window
 * of calls (e.g. 100 per 10 s) and a daily budget, plus pauses the CRM
 * asked for. The daily budget counts units: one a call for HubSpot, the
 * endpoint's token cost for Pipedrive. Thread-safe; one per connection
 * and class of call. */
#ifndef FIELDSYNC_NET_RATE_GOVERNOR_H
#define FIELDSYNC_NET_RATE_GOVERNOR_H

#include <stdbool.h>
#include <stdint.h>

struct rate_governor;

struct rate_budget {
    int window_calls;  /* calls allowed per window */
    int64_t window_ms; /* rolling window length */
    int daily_units;   /* units allowed per UTC day; 0 = unlimited */
};

struct rate_governor *rate_governor_new(const struct rate_budget *budget);
void rate_governor_free(struct rate_governor *gov);

/* Takes cost calls (and cost daily units) from the budget if they fit now
 * and returns 0; else returns how many ms to wait before trying again
 * (never sends into a window known to be exhausted). */
int64_t rate_governor_try_acquire(struct rate_governor *gov, int cost,
                                  int64_t now_ms);
/* The same with the daily units apart from the calls. */
int64_t rate_governor_try_acquire_units(struct rate_governor *gov, int calls,
                                        int daily_units, int64_t now_ms);
/* How long until calls and daily units would fit, taking nothing: 0 when
 * they fit now. */
int64_t rate_governor_wait(struct rate_governor *gov, int calls,
                           int daily_units, int64_t now_ms);

/* The CRM refused a call for its rate limit: block until until_ms. A daily
 * refusal blocks until the next UTC midnight. */
void rate_governor_pause(struct rate_governor *gov, int64_t until_ms);
void rate_governor_pause_daily(struct rate_governor *gov, int64_t now_ms);

/* What the CRM reported as remaining in its window, if anything. */
void rate_governor_observe(struct rate_governor *gov, int window_remaining,
                           int daily_remaining, int64_t now_ms);

/* Calls still allowed now in the window and today (for metrics). */
int rate_governor_window_left(struct rate_governor *gov, int64_t now_ms);
int rate_governor_daily_left(struct rate_governor *gov, int64_t now_ms);
int64_t rate_governor_calls_made(struct rate_governor *gov);

#endif
