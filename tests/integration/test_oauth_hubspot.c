/* OAuth against the HubSpot simulator, which issues 2-second access
 * tokens, refuses expired ones with 401 and rotates the refresh token on
 * every refresh: many threads calling across several expiries make one
 * refresh per token lifetime and never send an expired token; the
 * running service refreshes for its pusher and backstop, and the rotated
 * refresh token it stored works after a restart (oauth_test.h). */
#include "oauth_test.h"
#include "stack.h"
#include "stack_hubspot.h"

#include "base/alloc.h"
#include "providers/hubspot.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>

#include <cmocka.h>

#define CLIENT_ID "fieldsync-test-client"
#define FIRST_REFRESH_TOKEN "rt-install-0001"
#define TTL_S 2
#define THREADS 12
#define RUN_MS 5000
#define OTHER_ORG "oauthco"
#define OTHER_PORTAL "9003"

static struct stack st;
/* The refresh token the simulator takes now: rotated by every refresh. */
static char *live_refresh_token;

static int setup(void **state)
{
    static const char *const sim_args[] = {
        "--oauth-client-id",       CLIENT_ID,
        "--refresh-token",         FIRST_REFRESH_TOKEN,
        "--token-ttl-s",           "2",
        "--rotate-refresh-tokens", NULL};
    struct stack_options o = {
        .crm = "hubspot", .deals = 8, .backstop_ms = 300, .sim_args = sim_args};

    return stack_start(&st, &o) ? 0 : -1;
}

static int teardown(void **state)
{
    free(live_refresh_token);
    return stack_stop(&st) ? 0 : -1;
}

static void test_many_threads_one_refresh_per_lifetime(void **state)
{
    struct connection conn = {
        .id = 1,
        .provider = "hubspot",
        .base_url = st.sim_base,
        .client_secret = STACK_HUBSPOT_SECRET,
        .oauth_client_id = CLIENT_ID,
        .refresh_token = FIRST_REFRESH_TOKEN,
    };

    live_refresh_token = oauth_test_threads(&st, &hubspot_provider, &conn,
                                            THREADS, RUN_MS, TTL_S);
}

static void test_service_refreshes_and_keeps_rotated_token(void **state)
{
    const char *connect[] = {"connect",
                             "hubspot",
                             "--org",
                             OTHER_ORG,
                             "--oauth-client-id",
                             CLIENT_ID,
                             "--refresh-token",
                             live_refresh_token,
                             "--client-secret",
                             STACK_HUBSPOT_SECRET,
                             "--app-id",
                             STACK_HUBSPOT_APP_ID,
                             "--portal-id",
                             OTHER_PORTAL,
                             "--base-url",
                             st.sim_base,
                             NULL};
    struct oauth_test_org o = {OTHER_ORG, OTHER_PORTAL, connect,
                               live_refresh_token, TTL_S};

    oauth_test_service(&st, &o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_many_threads_one_refresh_per_lifetime),
        cmocka_unit_test(test_service_refreshes_and_keeps_rotated_token),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
