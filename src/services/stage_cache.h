/* Each org's stage map, read once and shared by the threads that show
 * deals (the field API, the live stream) for as long as the org's stage
 * version in the store stays the same, so a change made by another
 * process (the command line) shows at once too. */
#ifndef FIELDSYNC_SERVICES_STAGE_CACHE_H
#define FIELDSYNC_SERVICES_STAGE_CACHE_H

#include "model/stage_map.h"
#include "store/store.h"

#include <stdint.h>

struct stage_cache;

struct stage_cache *stage_cache_new(void);
/* Accepts NULL; every map handed out must have been released. */
void stage_cache_free(struct stage_cache *cache);

/* The org's current map for its active connection; give it back with
 * stage_cache_release. NULL when the store fails. */
const struct stage_map *stage_cache_get(struct stage_cache *cache,
                                        struct store *store, int64_t org_id);
void stage_cache_release(struct stage_cache *cache, const struct stage_map *m);

#endif
