/* The HubSpot webhook receiver of fieldsync serve, on the real program:
 * a correctly signed delivery is applied, while a bad signature, a stale
 * timestamp or an unknown portal is refused and stores nothing. */
#include "http_test.h"
#include "stack.h"

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

/* HubSpot refuses requests older than this; so does fieldsync. */
#define STALE_MS (6 * 60 * 1000)

static struct stack st;
static char *deal_id; /* our id of CRM deal 20000000001 */
static int64_t event_seq = 1;

static int setup(void **state)
{
    struct stack_options o = {.deals = 8};
    if (!stack_start(&st, &o))
        return -1;
    deal_id = stack_record_id(&st, "20000000001");
    return deal_id ? 0 : -1;
}

static int teardown(void **state)
{
    free(deal_id);
    return stack_stop(&st) ? 0 : -1;
}

/* One dealname change of deal 20000000001 as HubSpot would deliver it
 * from a CRM user of the portal (caller frees). */
static char *rename_delivery(const char *portal, const char *name)
{
    return xasprintf(
        "[{\"eventId\":%" PRId64 ",\"subscriptionId\":1,\"portalId\":%s,"
        "\"appId\":%s,\"occurredAt\":%" PRId64 ",\"subscriptionType\":"
        "\"deal.propertyChange\",\"attemptNumber\":0,\"objectId\":"
        "20000000001,\"propertyName\":\"dealname\",\"propertyValue\":\"%s\","
        "\"changeSource\":\"CRM_UI\",\"sourceId\":\"userId:5100001\"}]",
        event_seq++, portal, STACK_APP_ID, clock_now_ms(), name);
}

/* The delivery is refused with status and leaves no trace: no event
 * stored, the deal as it was, one more rejection counted. */
static void assert_refused(const char *body, const char *secret,
                           int64_t timestamp, long status)
{
    int64_t received = stack_metric(&st, "fieldsync_events_received_total");
    int64_t rejected = stack_metric(&st, "fieldsync_webhooks_rejected_total");
    json_t *before = stack_deal(&st, deal_id);

    assert_int_equal(stack_webhook(&st, body, secret, timestamp), status);
    assert_int_equal(stack_metric(&st, "fieldsync_events_received_total"),
                     received);
    assert_int_equal(stack_metric(&st, "fieldsync_webhooks_rejected_total"),
                     rejected + 1);
    assert_int_equal(stack_metric(&st, "fieldsync_inbox_depth"), 0);
    json_t *after = stack_deal(&st, deal_id);
    assert_true(json_equal(before, after));
    json_decref(after);
    json_decref(before);
}

static void test_signed_delivery_is_applied(void **state)
{
    char *body = rename_delivery(STACK_PORTAL_ID, "Signed and accepted");

    assert_int_equal(stack_webhook(&st, body, STACK_SECRET, clock_now_ms()),
                     200);
    assert_true(stack_wait_field(&st, deal_id, "name", "Signed and accepted"));
    free(body);
}

static void test_bad_signature_is_refused(void **state)
{
    char *body = rename_delivery(STACK_PORTAL_ID, "Forged name");
    assert_refused(body, "not-the-client-secret", clock_now_ms(), 401);
    free(body);
}

static void test_stale_timestamp_is_refused(void **state)
{
    char *body = rename_delivery(STACK_PORTAL_ID, "Replayed name");
    assert_refused(body, STACK_SECRET, clock_now_ms() - STALE_MS, 401);
    free(body);
}

/* A portal with no connection: 404, as docs/HUBSPOT.md says. */
static void test_unknown_portal_is_refused(void **state)
{
    char *body = rename_delivery("777001", "Someone else's portal");
    assert_refused(body, STACK_SECRET, clock_now_ms(), 404);
    free(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signed_delivery_is_applied),
        cmocka_unit_test(test_bad_signature_is_refused),
        cmocka_unit_test(test_stale_timestamp_is_refused),
        cmocka_unit_test(test_unknown_portal_is_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
