/* OAuth against the Pipedrive simulator, whose /oauth/token takes the
 * client as HTTP Basic, issues 2-second access tokens, rotates the
 * refresh token on every refresh (the old one then refused with
 * invalid_grant) and names the company's API root as api_domain: the
 * scenarios of oauth_test.h, with the service's connection given an API
 * host that answers nothing, so its calls work only at the api_domain. */
#include "http_test.h"
#include "oauth_test.h"
#include "stack.h"
#include "stack_pipedrive.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "providers/pipedrive.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define CLIENT_ID "b4d083d9216986345b32"
#define CLIENT_SECRET "pipedrive-test-client-secret"
#define FIRST_REFRESH_TOKEN "1:1:install-refresh-token"
#define TTL_S 2
#define THREADS 12
#define RUN_MS 5000
#define OTHER_ORG "oauthco"
/* A loopback port nothing listens on (TCP port 1, tcpmux). */
#define DEAD_API "http://127.0.0.1:1"

static struct stack st;
static char *token_url;
/* The refresh token the simulator takes now: rotated by every refresh. */
static char *live_refresh_token;

static int setup(void **state)
{
    static const char *const sim_args[] = {"--oauth-client-id",
                                           CLIENT_ID,
                                           "--oauth-client-secret",
                                           CLIENT_SECRET,
                                           "--refresh-token",
                                           FIRST_REFRESH_TOKEN,
                                           "--token-ttl-s",
                                           "2",
                                           NULL};
    struct stack_options o = {.crm = "pipedrive",
                              .deals = 8,
                              .backstop_ms = 300,
                              .sim_args = sim_args};

    if (!stack_start(&st, &o))
        return -1;
    token_url = xasprintf("%s/oauth/token", st.sim_base);
    return 0;
}

static int teardown(void **state)
{
    free(live_refresh_token);
    free(token_url);
    return stack_stop(&st) ? 0 : -1;
}

/* One token request to the simulator as Pipedrive's clients send it. */
static json_t *token_request(const char *client_id, const char *refresh,
                             long *status)
{
    char *basic = pipedrive_basic_auth(client_id, CLIENT_SECRET);
    char *auth = xasprintf("Authorization: %s", basic);
    char *body =
        xasprintf("grant_type=refresh_token&refresh_token=%s", refresh);
    const char *headers[] = {
        auth, "Content-Type: application/x-www-form-urlencoded", NULL};
    struct http_test_response resp;

    http_test_request("POST", token_url, headers, body, &resp);
    *status = resp.status;
    json_t *json = json_incref(resp.json);
    http_test_response_free(&resp);
    free(body);
    free(auth);
    free(basic);
    return json;
}

static void test_many_threads_one_refresh_per_lifetime(void **state)
{
    char *settings = xasprintf("{\"oauth_url\":\"%s\"}", token_url);
    struct connection conn = {
        .id = 1,
        .provider = "pipedrive",
        .base_url = st.sim_base,
        .account_id = "9120044",
        .app_id = STACK_PIPEDRIVE_USER,
        .settings = settings,
        .oauth_client_id = CLIENT_ID,
        .oauth_client_secret = CLIENT_SECRET,
        .refresh_token = FIRST_REFRESH_TOKEN,
    };

    live_refresh_token = oauth_test_threads(&st, &pipedrive_provider, &conn,
                                            THREADS, RUN_MS, TTL_S);
    free(settings);
}

/* The token endpoint's answers: the company's API root beside the
 * tokens; a refresh token once rotated away, or a wrong client, refused
 * in Pipedrive's words. */
static void test_token_endpoint_rotates_and_refuses(void **state)
{
    long status = 0;
    json_t *fresh = token_request(CLIENT_ID, live_refresh_token, &status);

    assert_int_equal(status, 200);
    assert_string_equal(stack_text(fresh, "token_type"), "Bearer");
    assert_string_equal(stack_text(fresh, "api_domain"), st.sim_base);
    assert_int_equal(json_integer_value(json_object_get(fresh, "expires_in")),
                     TTL_S);
    const char *rotated = stack_text(fresh, "refresh_token");
    assert_non_null(rotated);
    assert_string_not_equal(rotated, live_refresh_token);

    json_t *old = token_request(CLIENT_ID, live_refresh_token, &status);
    assert_int_equal(status, 400);
    assert_string_equal(stack_text(old, "error"), "invalid_grant");
    assert_non_null(strstr(stack_text(old, "message"), "refresh token"));
    json_decref(old);

    json_t *stranger = token_request("someone-else", rotated, &status);
    assert_int_equal(status, 400);
    assert_string_equal(stack_text(stranger, "error"), "invalid_client");
    json_decref(stranger);

    /* An access token is refused by the API once it has expired. */
    char *bearer = xasprintf("Authorization: Bearer %s",
                             stack_text(fresh, "access_token"));
    char *url = xasprintf("%s/api/v1/users/me", st.sim_base);
    const char *headers[] = {bearer, NULL};
    json_t *me = http_test_json("GET", url, headers, NULL, &status);
    assert_int_equal(status, 200);
    json_decref(me);
    stack_wait_past(clock_now_ms() + TTL_S * 1000);
    json_t *late = http_test_json("GET", url, headers, NULL, &status);
    assert_int_equal(status, 401);
    assert_false(json_is_true(json_object_get(late, "success")));
    json_decref(late);

    free(live_refresh_token);
    live_refresh_token = xstrdup(rotated);
    free(url);
    free(bearer);
    json_decref(fresh);
}

static void test_service_refreshes_and_keeps_rotated_token(void **state)
{
    const char *connect[] = {"connect",
                             "pipedrive",
                             "--org",
                             OTHER_ORG,
                             "--client-id",
                             CLIENT_ID,
                             "--client-secret",
                             CLIENT_SECRET,
                             "--refresh-token",
                             live_refresh_token,
                             "--oauth-url",
                             token_url,
                             "--company-id",
                             "9120044",
                             "--user-id",
                             STACK_PIPEDRIVE_USER,
                             "--webhook-user",
                             STACK_PIPEDRIVE_HOOK_USER,
                             "--webhook-password",
                             STACK_PIPEDRIVE_HOOK_PASSWORD,
                             "--base-url",
                             DEAD_API,
                             NULL};
    struct oauth_test_org o = {OTHER_ORG, "9120044", connect,
                               live_refresh_token, TTL_S};

    oauth_test_service(&st, &o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_many_threads_one_refresh_per_lifetime),
        cmocka_unit_test(test_token_endpoint_rotates_and_refuses),
        cmocka_unit_test(test_service_refreshes_and_keeps_rotated_token),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
