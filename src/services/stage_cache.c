/* The stage cache: one immutable map per org and stage version, counted
 * references, an outdated map freed once its last user gives it back. */
#include "services/stage_cache.h"

#include "base/alloc.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

struct cache_entry {
    int64_t org_id;
    int64_t version;
    struct stage_map map;
    int refs;
    bool outdated;
    struct cache_entry *next;
};

struct stage_cache {
    pthread_mutex_t lock;
    struct cache_entry *entries;
};

struct stage_cache *stage_cache_new(void)
{
    struct stage_cache *cache = xcalloc(1, sizeof(*cache));

    pthread_mutex_init(&cache->lock, NULL);
    return cache;
}

static void entry_free(struct cache_entry *e)
{
    stage_map_clear(&e->map);
    free(e);
}

void stage_cache_free(struct stage_cache *cache)
{
    if (!cache)
        return;
    while (cache->entries) {
        struct cache_entry *e = cache->entries;
        cache->entries = e->next;
        entry_free(e);
    }
    pthread_mutex_destroy(&cache->lock);
    free(cache);
}

/* Unlinks and frees outdated entries nobody holds. Lock held. */
static void sweep(struct stage_cache *cache)
{
    struct cache_entry **p = &cache->entries;

    while (*p) {
        struct cache_entry *e = *p;
        if (e->outdated && e->refs == 0) {
            *p = e->next;
            entry_free(e);
        } else {
            p = &e->next;
        }
    }
}

static fs_result load(struct store *store, int64_t org_id, struct stage_map *m)
{
    struct connection conn = {0};
    fs_result r = store_connection_for_org(store, org_id, &conn);

    if (r != FS_OK && r != FS_ERR_NOT_FOUND)
        return r;
    r = store_stage_map_load(store, org_id, conn.id, m);
    connection_clear(&conn);
    return r;
}

/* The entry for the org at that version, taken; marks older ones
 * outdated. NULL when there is none. Lock held. */
static const struct stage_map *take(struct stage_cache *cache, int64_t org_id,
                                    int64_t version)
{
    const struct stage_map *found = NULL;

    for (struct cache_entry *e = cache->entries; e; e = e->next) {
        if (e->org_id != org_id || e->outdated)
            continue;
        if (e->version == version && !found) {
            e->refs++;
            found = &e->map;
        } else if (e->version < version) {
            e->outdated = true;
        }
    }
    sweep(cache);
    return found;
}

const struct stage_map *stage_cache_get(struct stage_cache *cache,
                                        struct store *store, int64_t org_id)
{
    int64_t version = 0;

    if (store_stage_version(store, org_id, &version) != FS_OK)
        return NULL;
    pthread_mutex_lock(&cache->lock);
    const struct stage_map *m = take(cache, org_id, version);
    pthread_mutex_unlock(&cache->lock);
    if (m)
        return m;

    /* Read without the lock; two threads may both read one version. */
    struct cache_entry *fresh = xcalloc(1, sizeof(*fresh));
    if (load(store, org_id, &fresh->map) != FS_OK) {
        free(fresh);
        return NULL;
    }
    fresh->org_id = org_id;
    fresh->version = version;
    fresh->refs = 1;

    pthread_mutex_lock(&cache->lock);
    fresh->next = cache->entries;
    cache->entries = fresh;
    pthread_mutex_unlock(&cache->lock);
    return &fresh->map;
}

void stage_cache_release(struct stage_cache *cache, const struct stage_map *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&cache->lock);
    for (struct cache_entry *e = cache->entries; e; e = e->next) {
        if (&e->map == m) {
            e->refs--;
            break;
        }
    }
    sweep(cache);
    pthread_mutex_unlock(&cache->lock);
}
