/* The OAuth scenarios of the integration tests, for any CRM whose
 * simulator issues short-lived access tokens, refuses expired ones and
 * rotates the refresh token on every refresh: many threads of this
 * process calling the real provider through one token keeper, and the
 * running service refreshing for its pusher and keeping the rotated
 * refresh token across a restart. */
#ifndef FIELDSYNC_TESTS_OAUTH_TEST_H
#define FIELDSYNC_TESTS_OAUTH_TEST_H

#include "stack.h"

#include "model/connection.h"
#include "providers/oauth.h"
#include "providers/provider.h"

#include <pthread.h>

/* A token keeper's store in memory: load and save for
 * oauth_store_ops, whose ctx is the memory (or a struct holding it as its
 * first member). Start it with oauth_test_memory_init. */
struct oauth_test_memory {
    pthread_mutex_t lock;
    struct oauth_tokens tokens;
    int saves;
};

void oauth_test_memory_init(struct oauth_test_memory *m,
                            const char *refresh_token);
void oauth_test_memory_clear(struct oauth_test_memory *m);
fs_result oauth_test_memory_load(void *ctx, int64_t id,
                                 struct oauth_tokens *out);
fs_result oauth_test_memory_save(void *ctx, int64_t id,
                                 const struct oauth_tokens *t);

/* Calls provider.list_owners from threads threads for run_ms through one
 * keeper (tokens kept in memory) on conn, whose tokens live ttl_s, and
 * asserts: no call failed or went out with an expired token; every
 * refresh the simulator counted is the keeper's, one per lifetime less
 * its last quarter; each was stored. Returns the refresh token the last
 * refresh stored, the one the simulator takes now (caller frees). */
char *oauth_test_threads(struct stack *st, const struct provider *provider,
                         const struct connection *conn, int threads,
                         int64_t run_ms, int ttl_s);

/* An OAuth connection of a second org to the simulator's CRM. */
struct oauth_test_org {
    const char *org;
    const char *account_id;     /* the connection's account */
    const char *const *connect; /* `connect CRM ...` words, NULL-ended,
                                   carrying refresh_token */
    const char *refresh_token;  /* the one in connect */
    int ttl_s;                  /* the simulator's token lifetime */
};

/* Adds the org and connects it (asserting nothing printed carries a
 * token and the refresh token stored is a rotated one), imports its
 * deals, then edits one deal in it three times, each pushed to the CRM:
 * once, after the first access token expired, and after the service was
 * restarted and its token expired meanwhile. Asserts the refresh token
 * stored changed, the service refreshed, and no call carried an expired
 * token. */
void oauth_test_service(struct stack *st, const struct oauth_test_org *o);

#endif
