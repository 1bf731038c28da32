/* The HubSpot webhook receiver of fieldsync serve, on the real program,
 * with deliveries posted by hand: a correctly signed delivery is applied,
 * while a bad signature, a stale timestamp or an unknown portal is
 * refused and stores nothing; and a change HubSpot reports under a
 * merged-away id after the merge lands on the survivor. */
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

/* HubSpot refuses requests older than this; so does fieldsync. */
#define STALE_MS (6 * 60 * 1000)

static struct stack st;
static char *deal_id; /* our id of the first seed deal */
static int64_t event_seq = 1;

static int setup(void **state)
{
    struct stack_options o = {.crm = "hubspot", .deals = 8};
    if (!stack_start(&st, &o))
        return -1;
    deal_id = stack_record_id(&st, stack_seed_id(&st, 0));
    return deal_id ? 0 : -1;
}

static int teardown(void **state)
{
    free(deal_id);
    return stack_stop(&st) ? 0 : -1;
}

/* One dealname change of a deal as HubSpot would deliver it from a CRM
 * user of the portal, now (caller frees). */
static char *rename_event(int portal, const char *crm_id, const char *name)
{
    return xasprintf(
        "[{\"eventId\":%" PRId64 ",\"subscriptionId\":1,\"portalId\":%d,"
        "\"appId\":%s,\"occurredAt\":%" PRId64 ",\"subscriptionType\":"
        "\"deal.propertyChange\",\"attemptNumber\":0,\"objectId\":%s,"
        "\"propertyName\":\"dealname\",\"propertyValue\":\"%s\","
        "\"changeSource\":\"CRM_UI\",\"sourceId\":\"userId:5100001\"}]",
        event_seq++, portal, STACK_HUBSPOT_APP_ID, clock_now_ms(), crm_id,
        name);
}

/* The same for the first seed deal. */
static char *rename_delivery(int portal, const char *name)
{
    return rename_event(portal, stack_seed_id(&st, 0), name);
}

/* The delivery is refused with status and leaves no trace: no event
 * stored, the deal as it was, one more rejection counted. */
static void assert_refused(const char *body, const char *secret,
                           int64_t timestamp, long status)
{
    int64_t received = stack_metric(&st, "fieldsync_events_received_total");
    int64_t rejected = stack_metric(&st, "fieldsync_webhooks_rejected_total");
    json_t *before = stack_deal(&st, deal_id);

    assert_int_equal(stack_hubspot_webhook(&st, body, secret, timestamp),
                     status);
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
    char *body = rename_delivery(STACK_HUBSPOT_PORTAL, "Signed and accepted");

    assert_int_equal(
        stack_hubspot_webhook(&st, body, STACK_HUBSPOT_SECRET, clock_now_ms()),
        200);
    assert_true(stack_wait_field(&st, deal_id, "name", "Signed and accepted"));
    free(body);
}

static void test_bad_signature_is_refused(void **state)
{
    char *body = rename_delivery(STACK_HUBSPOT_PORTAL, "Forged name");
    assert_refused(body, "not-the-client-secret", clock_now_ms(), 401);
    free(body);
}

static void test_stale_timestamp_is_refused(void **state)
{
    char *body = rename_delivery(STACK_HUBSPOT_PORTAL, "Replayed name");
    assert_refused(body, STACK_HUBSPOT_SECRET, clock_now_ms() - STALE_MS, 401);
    free(body);
}

/* A portal with no connection: 404, as docs/HUBSPOT.md says. */
static void test_unknown_portal_is_refused(void **state)
{
    char *body = rename_delivery(777001, "Someone else's portal");
    assert_refused(body, STACK_HUBSPOT_SECRET, clock_now_ms(), 404);
    free(body);
}

/* HubSpot resolves a merged-away id to the merged deal, so a change made
 * after the merge may still be reported under the old id: it lands on
 * the survivor, and the loser stays merged. (Other CRMs drop the old id
 * or mint a new one, so this is HubSpot's alone; a change made before
 * the merge and delivered after it is test_sync's, for every CRM.) */
static void test_change_under_merged_away_id_lands_on_survivor(void **state)
{
    const char *primary = stack_seed_id(&st, 2);
    const char *merged = stack_seed_id(&st, 3);
    char *winner = stack_record_id(&st, primary);
    char *loser = stack_record_id(&st, merged);
    char *merge =
        xasprintf("{\"primary\":\"%s\",\"merged\":[\"%s\"]}", primary, merged);
    long status;

    assert_non_null(winner);
    assert_non_null(loser);
    json_decref(stack_sim(&st, "POST", "/_sim/merge", merge, &status));
    assert_int_equal(status, 200);
    assert_true(stack_wait_deleted(&st, loser, true, "merged"));
    json_t *deal = stack_deal(&st, loser);
    assert_string_equal(stack_text(deal, "merged_into"), winner);
    json_decref(deal);

    char *body =
        rename_event(STACK_HUBSPOT_PORTAL, merged, "Late under old id");
    assert_int_equal(
        stack_hubspot_webhook(&st, body, STACK_HUBSPOT_SECRET, clock_now_ms()),
        200);
    assert_true(stack_wait_field(&st, winner, "name", "Late under old id"));
    deal = stack_deal(&st, loser);
    assert_true(json_is_true(json_object_get(deal, "deleted")));
    json_decref(deal);
    free(body);
    free(merge);
    free(loser);
    free(winner);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signed_delivery_is_applied),
        cmocka_unit_test(test_bad_signature_is_refused),
        cmocka_unit_test(test_stale_timestamp_is_refused),
        cmocka_unit_test(test_unknown_portal_is_refused),
        cmocka_unit_test(test_change_under_merged_away_id_lands_on_survivor),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
