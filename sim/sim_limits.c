/* Rolling-window and daily call counting for the simulators. */
#include "sim_limits.h"

#include "base/alloc.h"

#include <stdlib.h>

void sim_window_init(struct sim_window *w, int cap, int64_t length_ms)
{
    w->cap = cap > 0 ? cap : 1;
    w->stamps = xcalloc((size_t)w->cap, sizeof(*w->stamps));
    w->head = 0;
    w->count = 0;
    w->length_ms = length_ms;
}

void sim_window_free(struct sim_window *w)
{
    free(w->stamps);
    w->stamps = NULL;
}

static void expire(struct sim_window *w, int64_t now)
{
    while (w->count > 0 && w->stamps[w->head] <= now - w->length_ms) {
        w->head = (w->head + 1) % w->cap;
        w->count--;
    }
}

bool sim_window_take(struct sim_window *w, int64_t now)
{
    expire(w, now);
    if (w->count >= w->cap)
        return false;
    w->stamps[(w->head + w->count) % w->cap] = now;
    w->count++;
    return true;
}

int sim_window_remaining(struct sim_window *w, int64_t now)
{
    expire(w, now);
    return w->cap - w->count;
}

void sim_daily_init(struct sim_daily *d, int64_t limit, int64_t now)
{
    d->limit = limit;
    d->day = now / SIM_DAY_MS;
    d->count = 0;
}

bool sim_daily_allows(struct sim_daily *d, int64_t now, int64_t cost)
{
    if (now / SIM_DAY_MS != d->day) {
        d->day = now / SIM_DAY_MS;
        d->count = 0;
    }
    return d->count + cost <= d->limit;
}

void sim_daily_count(struct sim_daily *d, int64_t cost)
{
    d->count += cost;
}

int64_t sim_daily_remaining(const struct sim_daily *d)
{
    return d->count < d->limit ? d->limit - d->count : 0;
}
