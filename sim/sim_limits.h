/* Rate-limit counting for the simulated CRMs' APIs: a rolling window of
 * call times (HubSpot's 10 s burst and search's 1 s, Pipedrive's 2 s) and
 * a daily budget that resets at midnight UTC. Neither locks: the caller
 * holds its own mutex. */
#ifndef FIELDSYNC_SIM_SIM_LIMITS_H
#define FIELDSYNC_SIM_SIM_LIMITS_H

#include <stdbool.h>
#include <stdint.h>

#define SIM_DAY_MS 86400000LL

/* At most cap calls in any length_ms. */
struct sim_window {
    int64_t *stamps; /* call times, a ring, oldest at head */
    int cap;
    int head;
    int count;
    int64_t length_ms;
};

void sim_window_init(struct sim_window *w, int cap, int64_t length_ms);
void sim_window_free(struct sim_window *w);
/* Counts a call at now (ms) when the window has room; false when full. */
bool sim_window_take(struct sim_window *w, int64_t now);
/* Calls still allowed at now. */
int sim_window_remaining(struct sim_window *w, int64_t now);

/* A budget of limit units per UTC day: calls (HubSpot), or token costs
 * per call (Pipedrive). */
struct sim_daily {
    int64_t limit;
    int64_t day; /* days since the epoch of the count */
    int64_t count;
};

void sim_daily_init(struct sim_daily *d, int64_t limit, int64_t now);
/* True when a call costing cost units at now is within the day's budget.
 * It does not count it: sim_daily_count does, once every other limit let
 * the call in. */
bool sim_daily_allows(struct sim_daily *d, int64_t now, int64_t cost);
void sim_daily_count(struct sim_daily *d, int64_t cost);
int64_t sim_daily_remaining(const struct sim_daily *d);

#endif
