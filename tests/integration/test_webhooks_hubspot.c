/* The HubSpot webhook receiver of fieldsync serve, on the real program,
 * with deliveries posted by hand: a correctly signed delivery is applied,
 * while a bad signature (a wrong secret, a re-serialised body, the URL
 * decoded otherwise than HubSpot does), a stale or future timestamp or an
 * unknown portal is refused and stores nothing; a valid delivery replayed
 * changes nothing; and a change HubSpot reports under a merged-away id
 * after the merge lands on the survivor. */
#include "http_test.h"
#include "stack.h"
#include "stack_hubspot.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "providers/hubspot.h"

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

/* Sends d and checks the answer's status. A refused one leaves no
 * trace: no event stored, the deal as it was, one more rejection
 * counted. */
static void assert_delivery(const struct stack_hubspot_delivery *d, long status)
{
    int64_t received = stack_metric(&st, "fieldsync_events_received_total");
    int64_t rejected = stack_metric(&st, "fieldsync_webhooks_rejected_total");
    json_t *before = stack_deal(&st, deal_id);
    struct http_test_response resp;

    assert_true(stack_hubspot_webhook_send(&st, d, &resp));
    assert_int_equal(resp.status, status);
    http_test_response_free(&resp);
    if (status != 200) {
        assert_int_equal(stack_metric(&st, "fieldsync_events_received_total"),
                         received);
        assert_int_equal(stack_metric(&st, "fieldsync_webhooks_rejected_total"),
                         rejected + 1);
        assert_int_equal(stack_metric(&st, "fieldsync_inbox_depth"), 0);
        json_t *after = stack_deal(&st, deal_id);
        assert_true(json_equal(before, after));
        json_decref(after);
    }
    json_decref(before);
}

static void assert_refused(const char *body, const char *secret,
                           int64_t timestamp, long status)
{
    struct stack_hubspot_delivery d = {
        .body = body, .secret = secret, .timestamp_ms = timestamp};
    assert_delivery(&d, status);
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

static void test_future_timestamp_is_refused(void **state)
{
    char *body = rename_delivery(STACK_HUBSPOT_PORTAL, "From the future");
    assert_refused(body, STACK_HUBSPOT_SECRET, clock_now_ms() + STALE_MS, 401);
    free(body);
}

/* The same events with other white space: a signature is over the raw
 * bytes, never over JSON parsed and written again. */
static void test_reserialised_body_is_refused(void **state)
{
    char *body = rename_delivery(STACK_HUBSPOT_PORTAL, "Re-serialised");
    json_t *parsed = json_loads(body, 0, NULL);
    char *pretty = json_dumps(parsed, JSON_INDENT(2));
    struct stack_hubspot_delivery d = {.body = pretty,
                                       .signed_body = body,
                                       .secret = STACK_HUBSPOT_SECRET,
                                       .timestamp_ms = clock_now_ms()};

    assert_string_not_equal(pretty, body);
    assert_delivery(&d, 401);
    d.signed_body = NULL;
    assert_delivery(&d, 200);
    assert_true(stack_wait_field(&st, deal_id, "name", "Re-serialised"));
    free(pretty);
    json_decref(parsed);
    free(body);
}

/* HubSpot signs the URL with a fixed set of escapes decoded (%28 %29 %3A
 * ...) and every other one left as sent: a signature over the URL
 * decoded any other way, or not at all, is refused. */
static void test_url_decoded_otherwise_is_refused(void **state)
{
    char *base = xasprintf("%s/webhooks/hubspot", st.api_base);
    char *hubspot_rule = xasprintf("%s?src=(crm):one&q=a%%20b", base);
    char *undecoded = xasprintf("%s?src=%%28crm%%29%%3Aone&q=a%%20b", base);
    char *all_decoded = xasprintf("%s?src=(crm):one&q=a b", base);
    char *body =
        rename_delivery(STACK_HUBSPOT_PORTAL, "Signed by HubSpot's rule");
    struct stack_hubspot_delivery d = {.body = body,
                                       .query = "?src=%28crm%29%3Aone&q=a%20b",
                                       .secret = STACK_HUBSPOT_SECRET,
                                       .timestamp_ms = clock_now_ms()};

    d.signed_url = undecoded;
    assert_delivery(&d, 401);
    d.signed_url = all_decoded;
    assert_delivery(&d, 401);
    d.signed_url = hubspot_rule;
    assert_delivery(&d, 200);
    assert_true(
        stack_wait_field(&st, deal_id, "name", "Signed by HubSpot's rule"));
    free(body);
    free(all_decoded);
    free(undecoded);
    free(hubspot_rule);
    free(base);
}

/* A valid delivery sent again byte for byte inside the 5-minute window
 * (a replay, or a retry of one whose answer was lost) is answered 200 as
 * a duplicate and changes nothing, even after a newer change; outside
 * the window its timestamp is stale and it is refused (above). */
static void test_replay_changes_nothing(void **state)
{
    char *first = rename_delivery(STACK_HUBSPOT_PORTAL, "Replay first");
    int64_t t = clock_now_ms();
    struct stack_hubspot_delivery d = {
        .body = first, .secret = STACK_HUBSPOT_SECRET, .timestamp_ms = t};
    struct http_test_response resp;

    assert_delivery(&d, 200);
    assert_true(stack_wait_field(&st, deal_id, "name", "Replay first"));
    stack_wait_past(clock_now_ms());
    char *second = rename_delivery(STACK_HUBSPOT_PORTAL, "Replay second");
    assert_int_equal(stack_hubspot_webhook(&st, second, STACK_HUBSPOT_SECRET,
                                           clock_now_ms()),
                     200);
    assert_true(stack_wait_field(&st, deal_id, "name", "Replay second"));
    int64_t duplicates = stack_metric(&st, "fieldsync_events_duplicate_total");

    assert_true(stack_hubspot_webhook_send(&st, &d, &resp));
    assert_int_equal(resp.status, 200);
    assert_int_equal(json_integer_value(json_object_get(resp.json, "new")), 0);
    http_test_response_free(&resp);
    assert_int_equal(stack_metric(&st, "fieldsync_events_duplicate_total"),
                     duplicates + 1);
    assert_true(stack_settled(&st, STACK_WAIT_MS));
    json_t *deal = stack_deal(&st, deal_id);
    assert_string_equal(stack_text(deal, "name"), "Replay second");
    json_decref(deal);
    free(second);
    free(first);
}

/* The legacy signatures, v1 and v2, with a wrong secret. */
static void test_legacy_signatures_with_wrong_secret(void **state)
{
    char *body = rename_delivery(STACK_HUBSPOT_PORTAL, "Legacy forged");
    char *url = xasprintf("%s/webhooks/hubspot", st.api_base);
    char *v1 = hubspot_signature_v1("not-the-secret", body, strlen(body));
    char *v2 =
        hubspot_signature_v2("not-the-secret", "POST", url, body, strlen(body));
    char *good = hubspot_signature_v1(STACK_HUBSPOT_SECRET, body, strlen(body));
    const char *versions[] = {"v1", "v2", "v1"};
    const char *sigs[] = {v1, v2, good};
    const long want[] = {401, 401, 200};

    for (int i = 0; i < 3; i++) {
        char *sig = xasprintf("X-HubSpot-Signature: %s", sigs[i]);
        char *ver = xasprintf("X-HubSpot-Signature-Version: %s", versions[i]);
        const char *headers[] = {"Content-Type: application/json", sig, ver,
                                 NULL};
        int64_t received = stack_metric(&st, "fieldsync_events_received_total");
        struct http_test_response resp;
        http_test_request("POST", url, headers, body, &resp);
        assert_int_equal(resp.status, want[i]);
        if (want[i] != 200)
            assert_int_equal(
                stack_metric(&st, "fieldsync_events_received_total"), received);
        http_test_response_free(&resp);
        free(ver);
        free(sig);
    }
    free(good);
    free(v2);
    free(v1);
    free(url);
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
        cmocka_unit_test(test_future_timestamp_is_refused),
        cmocka_unit_test(test_reserialised_body_is_refused),
        cmocka_unit_test(test_url_decoded_otherwise_is_refused),
        cmocka_unit_test(test_replay_changes_nothing),
        cmocka_unit_test(test_legacy_signatures_with_wrong_secret),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
