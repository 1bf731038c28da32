/* fieldsync serve over HTTPS (--tls-cert, --tls-key) with a certificate
 * the test makes: the field API and webhooks answer over TLS only, the
 * simulator's webhooks arrive over it, and a webhook signature must be
 * over the https URL HubSpot called. */
#include "http_test.h"
#include "stack.h"
#include "stack_hubspot.h"

#include "base/alloc.h"
#include "base/clock.h"

#include <inttypes.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static struct stack st;
static char *deal_id;

static int setup(void **state)
{
    struct stack_options o = {.deals = 6, .tls = true};

    if (!stack_start(&st, &o))
        return -1;
    deal_id = stack_record_id(&st, "20000000001");
    return deal_id && strncmp(st.api_base, "https://", 8) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    free(deal_id);
    return stack_stop(&st) ? 0 : -1;
}

static void test_api_over_https(void **state)
{
    long status;
    json_t *me = stack_api(&st, st.admin, "GET", "/api/v1/me", NULL, &status);

    assert_int_equal(status, 200);
    json_decref(me);

    /* Plain HTTP to the same port gets no HTTP answer. */
    char *plain = xasprintf("http://%s/healthz", st.api_base + 8);
    struct http_test_response resp;
    http_test_request("GET", plain, NULL, NULL, &resp);
    assert_true(resp.status == 0 || resp.status >= 400);
    http_test_response_free(&resp);
    free(plain);
}

/* Signed over https://..., as HubSpot calls us, the delivery is taken;
 * the same signed over http://... is refused. */
static void test_webhook_signed_over_https_url(void **state)
{
    char *body = xasprintf(
        "[{\"eventId\":77,\"subscriptionId\":1,\"portalId\":%d,\"appId\":%s,"
        "\"occurredAt\":%" PRId64 ",\"subscriptionType\":"
        "\"deal.propertyChange\",\"attemptNumber\":0,\"objectId\":"
        "20000000001,\"propertyName\":\"dealname\",\"propertyValue\":"
        "\"Over TLS\",\"changeSource\":\"CRM_UI\",\"sourceId\":"
        "\"userId:5100001\"}]",
        STACK_HUBSPOT_PORTAL, STACK_HUBSPOT_APP_ID, clock_now_ms());
    char *http_url = xasprintf("http://%s/webhooks/hubspot", st.api_base + 8);
    struct stack_hubspot_delivery d = {.body = body,
                                       .signed_url = http_url,
                                       .secret = STACK_HUBSPOT_SECRET,
                                       .timestamp_ms = clock_now_ms()};
    struct http_test_response resp;

    assert_true(stack_hubspot_webhook_send(&st, &d, &resp));
    assert_int_equal(resp.status, 401);
    http_test_response_free(&resp);

    d.signed_url = NULL;
    assert_true(stack_hubspot_webhook_send(&st, &d, &resp));
    assert_int_equal(resp.status, 200);
    http_test_response_free(&resp);
    assert_true(stack_wait_field(&st, deal_id, "name", "Over TLS"));
    free(http_url);
    free(body);
}

/* A CRM user's edit travels as a webhook over TLS; a rep's edit goes
 * back to the CRM. */
static void test_sync_both_ways_over_https(void **state)
{
    long status;

    assert_true(stack_sim_edit(&st, "20000000001",
                               "{\"product\":\"Edited in the CRM\"}") > 0);
    assert_true(stack_wait_field(&st, deal_id, "product", "Edited in the CRM"));
    json_decref(stack_patch(
        &st, st.admin, deal_id,
        "{\"fields\":{\"account\":\"Edited in the field\"}}", &status));
    assert_int_equal(status, 200);
    assert_true(
        stack_wait_sim(&st, "20000000001", "account", "Edited in the field"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api_over_https),
        cmocka_unit_test(test_webhook_signed_over_https_url),
        cmocka_unit_test(test_sync_both_ways_over_https),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
