/* Two-way sync between fieldsync serve and the HubSpot simulator, on the
 * real programs over loopback: import, field edits reaching the CRM, CRM
 * edits reaching the field API and the live stream, conflicts, echoes,
 * and CRM deletes, restores and merges. */
#include "http_test.h"
#include "sse_test.h"
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

/* Long enough for a re-push to show: the push window is 20 ms. */
#define QUIET_MS 500

static struct stack st;

static int setup(void **state)
{
    struct stack_options o = {.deals = 40, .owners = 4};
    return stack_start(&st, &o) ? 0 : -1;
}

static int teardown(void **state)
{
    return stack_stop(&st) ? 0 : -1;
}

/* Every test starts and ends without faults. */
static int reset_faults(void **state)
{
    return stack_faults(&st, "{\"drop\":0,\"duplicate\":0,\"reorder\":false,"
                             "\"delay_ms\":0,\"api_5xx\":0,\"api_timeout\":0,"
                             "\"webhooks_paused\":false}")
               ? 0
               : -1;
}

static char *record_id(const char *crm_id)
{
    char *id = stack_record_id(&st, crm_id);
    assert_non_null(id);
    return id;
}

static const char *field_state(const json_t *deal, const char *field)
{
    return stack_text(
        json_object_get(
            json_object_get(json_object_get(deal, "sync"), "fields"), field),
        "state");
}

static json_t *patch(const char *id, const char *body, long *status)
{
    return stack_patch(&st, st.admin, id, body, status);
}

/* A change as a CRM user through the simulator's control API; returns
 * the CRM's modification time of the deal. */
static int64_t crm_edit(const char *crm_id, const char *fields)
{
    int64_t t = stack_sim_edit(&st, crm_id, fields);

    assert_true(t > 0);
    return t;
}

static void wait_synced(const char *id)
{
    assert_true(stack_wait_state(&st, id, "synced"));
}

/* Both sides hold value in field, and fieldsync has nothing to push. */
static void assert_converged(const char *id, const char *crm_id,
                             const char *field, const char *value)
{
    assert_true(stack_wait_sim(&st, crm_id, field, value));
    assert_true(stack_wait_field(&st, id, field, value));
    wait_synced(id);
}

static void test_import_brings_every_deal_with_its_values(void **state)
{
    json_t *sim_deals = stack_sim_deals(&st);
    json_t *deals = stack_deals(&st, false);
    size_t i;
    json_t *d;

    assert_non_null(sim_deals);
    assert_non_null(deals);
    assert_int_equal(json_array_size(sim_deals), st.deals);
    assert_int_equal(json_array_size(deals), st.deals);

    json_t *by_crm_id = json_object();
    json_array_foreach(deals, i, d)
    {
        const char *crm_id = stack_text(d, "crm_id");
        assert_non_null(crm_id);
        assert_null(json_object_get(by_crm_id, crm_id));
        json_object_set(by_crm_id, crm_id, d);
    }
    json_array_foreach(sim_deals, i, d)
    {
        json_t *mine = json_object_get(by_crm_id, stack_text(d, "id"));
        json_t *want = stack_sim_fields(d);
        const char *field;
        json_t *value;
        assert_non_null(mine);
        assert_false(json_is_true(json_object_get(mine, "deleted")));
        json_object_foreach(want, field, value)
        {
            json_t *ours = stack_crm_view(mine, field);
            if (!json_equal(value, ours))
                fail_msg("deal %s field %s: CRM %s, field API %s",
                         stack_text(d, "id"), field, json_string_value(value),
                         json_string_value(ours));
        }
        assert_string_equal(stack_text(json_object_get(mine, "sync"), "state"),
                            "synced");
        json_decref(want);
    }
    json_decref(by_crm_id);
    json_decref(deals);
    json_decref(sim_deals);
}

static int64_t write_calls(void)
{
    return stack_sim_stat(&st, "api_calls_by_class", "write");
}

struct quiet {
    const char *id;
    int64_t writes;
};

/* No new CRM write, and the deal still synced with the edited amount. */
static bool stays_quiet(void *ctx)
{
    struct quiet *q = ctx;
    json_t *deal = stack_deal(&st, q->id);
    bool ok = deal && write_calls() == q->writes &&
              strcmp(stack_text(deal, "amount"), "1200.5") == 0 &&
              strcmp(stack_text(json_object_get(deal, "sync"), "state"),
                     "synced") == 0;
    json_decref(deal);
    return ok;
}

static void test_field_edit_reaches_crm_and_echo_changes_nothing(void **state)
{
    char *id = record_id("20000000002");
    long status;
    json_t *r = patch(id,
                      "{\"fields\":{\"amount\":\"1200.50\","
                      "\"stage\":\"won\"}}",
                      &status);

    assert_int_equal(status, 200);
    json_t *deal = json_object_get(r, "deal");
    assert_string_equal(stack_text(deal, "id"), id);
    assert_string_equal(stack_text(deal, "amount"), "1200.5");
    assert_string_equal(stack_text(deal, "stage"), "won");
    assert_string_equal(stack_text(deal, "crm_stage"), "closedwon");
    assert_string_equal(stack_text(json_object_get(r, "edits"), "amount"),
                        "applied");
    assert_string_equal(stack_text(json_object_get(r, "edits"), "stage"),
                        "applied");
    assert_string_equal(field_state(deal, "amount"), "pending");
    assert_string_equal(field_state(deal, "name"), "synced");
    assert_string_equal(
        stack_text(json_object_get(
                       json_object_get(json_object_get(deal, "sync"), "fields"),
                       "amount"),
                   "origin"),
        "local");
    json_decref(r);

    assert_converged(id, "20000000002", "amount", "1200.5");
    assert_true(stack_wait_sim(&st, "20000000002", "stage", "closedwon"));

    /* The simulator signs a webhook for our own write too; once it is in
     * and applied, nothing may change or be written again. */
    assert_true(stack_settled(&st, STACK_WAIT_MS));
    struct quiet q = {id, write_calls()};
    assert_true(q.writes > 0);
    assert_true(stack_holds(stays_quiet, &q, QUIET_MS));
    free(id);
}

static void test_crm_edit_reaches_field_api_and_live_stream(void **state)
{
    char *id = record_id("20000000003");
    char *url = xasprintf("%s/api/v1/events", st.api_base);
    struct sse_test *sse = sse_test_open(url, st.admin);

    assert_non_null(sse);
    crm_edit("20000000003", "{\"name\":\"Renamed in the CRM\","
                            "\"amount\":\"99.90\"}");
    assert_true(stack_wait_field(&st, id, "name", "Renamed in the CRM"));
    assert_true(stack_wait_field(&st, id, "amount", "99.9"));

    int64_t deadline = clock_mono_ms() + STACK_WAIT_MS;
    while (
        !sse_test_has(sse, "deal.updated", id, "name", "Renamed in the CRM") &&
        clock_mono_ms() < deadline)
        clock_sleep_ms(10);
    assert_true(
        sse_test_has(sse, "deal.updated", id, "name", "Renamed in the CRM"));
    json_t *deal = stack_deal(&st, id);
    assert_string_equal(field_state(deal, "name"), "synced");
    json_decref(deal);
    sse_test_close(sse);
    free(url);
    free(id);
}

/* Both edits are made while neither side can see the other: webhooks are
 * held and every CRM call fails. The CRM's is later, so it wins. */
static void test_conflict_later_crm_edit_wins_both_sides(void **state)
{
    char *id = record_id("20000000005");
    long status;

    assert_true(stack_faults(&st, "{\"webhooks_paused\":true,"
                                  "\"api_5xx\":1.0}"));
    json_t *r = patch(id, "{\"fields\":{\"name\":\"Field says A\"}}", &status);
    assert_int_equal(status, 200);
    int64_t local_time = json_integer_value(json_object_get(
        json_object_get(
            json_object_get(json_object_get(json_object_get(r, "deal"), "sync"),
                            "fields"),
            "name"),
        "time"));
    json_decref(r);
    assert_true(local_time > 0);

    stack_wait_past(local_time);
    crm_edit("20000000005", "{\"name\":\"CRM says B\"}");
    assert_true(stack_faults(&st, "{\"webhooks_paused\":false}"));
    assert_true(stack_wait_field(&st, id, "name", "CRM says B"));
    assert_true(stack_faults(&st, "{\"api_5xx\":0}"));

    assert_converged(id, "20000000005", "name", "CRM says B");
    assert_true(stack_settled(&st, STACK_WAIT_MS));
    assert_true(stack_wait_sim(&st, "20000000005", "name", "CRM says B"));
    free(id);
}

/* The same, with the field edit made after the CRM's: it stays (pending)
 * when the CRM's change arrives, and then overwrites the CRM. */
static void test_conflict_later_field_edit_wins_both_sides(void **state)
{
    char *id = record_id("20000000006");
    int64_t conflicts = stack_metric(&st, "fieldsync_conflicts_total");
    long status;

    assert_true(stack_faults(&st, "{\"webhooks_paused\":true,"
                                  "\"api_5xx\":1.0}"));
    int64_t crm_time = crm_edit("20000000006", "{\"name\":\"CRM says C\"}");
    stack_wait_past(crm_time);
    json_decref(patch(id, "{\"fields\":{\"name\":\"Field says D\"}}", &status));
    assert_int_equal(status, 200);

    assert_true(stack_faults(&st, "{\"webhooks_paused\":false}"));
    assert_true(stack_settled(&st, STACK_WAIT_MS));
    assert_true(stack_metric(&st, "fieldsync_conflicts_total") > conflicts);
    json_t *deal = stack_deal(&st, id);
    assert_string_equal(stack_text(deal, "name"), "Field says D");
    assert_string_equal(field_state(deal, "name"), "pending");
    json_decref(deal);

    assert_true(stack_faults(&st, "{\"api_5xx\":0}"));
    assert_converged(id, "20000000006", "name", "Field says D");
    free(id);
}

/* Push 1 lands, its echo is held; a second edit is made and cannot be
 * pushed yet; then the echo of push 1 arrives. The second edit stays and
 * reaches the CRM afterwards. */
static void test_late_echo_does_not_undo_second_edit(void **state)
{
    char *id = record_id("20000000007");
    long status;

    assert_true(stack_faults(&st, "{\"webhooks_paused\":true}"));
    json_decref(patch(id, "{\"fields\":{\"account\":\"Echo one\"}}", &status));
    assert_int_equal(status, 200);
    assert_true(stack_wait_sim(&st, "20000000007", "account", "Echo one"));
    wait_synced(id);

    assert_true(stack_faults(&st, "{\"api_5xx\":1.0}"));
    json_decref(patch(id, "{\"fields\":{\"account\":\"Echo two\"}}", &status));
    assert_int_equal(status, 200);
    assert_true(stack_faults(&st, "{\"webhooks_paused\":false}"));
    assert_true(stack_settled(&st, STACK_WAIT_MS));
    json_t *deal = stack_deal(&st, id);
    assert_string_equal(stack_text(deal, "account"), "Echo two");
    assert_string_equal(field_state(deal, "account"), "pending");
    json_decref(deal);

    assert_true(stack_faults(&st, "{\"api_5xx\":0}"));
    assert_converged(id, "20000000007", "account", "Echo two");
    assert_true(stack_settled(&st, STACK_WAIT_MS));
    deal = stack_deal(&st, id);
    assert_string_equal(stack_text(deal, "account"), "Echo two");
    json_decref(deal);
    free(id);
}

struct deleted_wait {
    const char *id;
    bool deleted;
    const char *reason;
};

static bool deleted_is(void *ctx)
{
    struct deleted_wait *w = ctx;
    json_t *deal = stack_deal(&st, w->id);
    bool match =
        deal && json_is_true(json_object_get(deal, "deleted")) == w->deleted;
    if (match && w->reason)
        match = stack_text(deal, "deleted_reason") &&
                strcmp(stack_text(deal, "deleted_reason"), w->reason) == 0;
    json_decref(deal);
    return match;
}

static bool listed(const char *id)
{
    json_t *deals = stack_deals(&st, false);
    size_t i;
    json_t *d;
    bool found = false;

    json_array_foreach(deals, i, d) found |=
        strcmp(stack_text(d, "id"), id) == 0;
    json_decref(deals);
    return found;
}

static void test_crm_delete_and_restore_reach_field_api(void **state)
{
    char *id = record_id("20000000009");
    long status;
    json_t *r;

    r = stack_sim(&st, "DELETE", "/_sim/deals/20000000009", NULL, &status);
    assert_int_equal(status, 200);
    json_decref(r);
    struct deleted_wait gone = {id, true, "crm_delete"};
    assert_true(http_test_poll(deleted_is, &gone, STACK_WAIT_MS));
    assert_false(listed(id));

    r = patch(id, "{\"fields\":{\"name\":\"too late\"}}", &status);
    assert_int_equal(status, 409);
    assert_string_equal(stack_text(r, "error"), "deleted");
    json_decref(r);

    r = stack_sim(&st, "POST", "/_sim/deals/20000000009/restore", "{}",
                  &status);
    assert_int_equal(status, 200);
    json_decref(r);
    struct deleted_wait back = {id, false, NULL};
    assert_true(http_test_poll(deleted_is, &back, STACK_WAIT_MS));
    assert_true(listed(id));

    r = patch(id, "{\"fields\":{\"name\":\"Restored and edited\"}}", &status);
    assert_int_equal(status, 200);
    json_decref(r);
    assert_converged(id, "20000000009", "name", "Restored and edited");
    free(id);
}

static void test_crm_merge_remaps_the_losing_id(void **state)
{
    char *winner = record_id("20000000010");
    char *loser = record_id("20000000011");
    long status;

    json_t *r = stack_sim(&st, "POST", "/_sim/merge",
                          "{\"primary\":\"20000000010\","
                          "\"merged\":[\"20000000011\"]}",
                          &status);
    assert_int_equal(status, 200);
    json_decref(r);

    struct deleted_wait merged = {loser, true, "merged"};
    assert_true(http_test_poll(deleted_is, &merged, STACK_WAIT_MS));
    json_t *deal = stack_deal(&st, loser);
    assert_string_equal(stack_text(deal, "merged_into"), winner);
    json_decref(deal);
    deal = stack_deal(&st, winner);
    assert_false(json_is_true(json_object_get(deal, "deleted")));
    assert_string_equal(stack_text(deal, "crm_id"), "20000000010");
    json_decref(deal);

    r = patch(loser, "{\"fields\":{\"name\":\"on the loser\"}}", &status);
    assert_int_equal(status, 409);
    assert_string_equal(stack_text(r, "error"), "deleted");
    json_decref(r);

    /* A late change the CRM still reports under the merged-away id lands
     * on the survivor. */
    int64_t now = clock_now_ms();
    char *body = xasprintf(
        "[{\"eventId\":77001,\"subscriptionId\":1,\"portalId\":%s,"
        "\"appId\":%s,\"occurredAt\":%" PRId64 ",\"subscriptionType\":"
        "\"deal.propertyChange\",\"attemptNumber\":0,\"objectId\":"
        "20000000011,\"propertyName\":\"dealname\",\"propertyValue\":"
        "\"Late under old id\",\"changeSource\":\"CRM_UI\","
        "\"sourceId\":\"userId:5100001\"}]",
        STACK_PORTAL_ID, STACK_APP_ID, now);
    assert_int_equal(stack_webhook(&st, body, STACK_SECRET, now), 200);
    free(body);
    assert_true(stack_wait_field(&st, winner, "name", "Late under old id"));
    deal = stack_deal(&st, loser);
    assert_true(json_is_true(json_object_get(deal, "deleted")));
    json_decref(deal);

    /* The survivor still syncs both ways. */
    r = patch(winner, "{\"fields\":{\"product\":\"After merge\"}}", &status);
    assert_int_equal(status, 200);
    json_decref(r);
    assert_converged(winner, "20000000010", "product", "After merge");
    free(winner);
    free(loser);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_import_brings_every_deal_with_its_values, reset_faults,
            reset_faults),
        cmocka_unit_test_setup_teardown(
            test_field_edit_reaches_crm_and_echo_changes_nothing, reset_faults,
            reset_faults),
        cmocka_unit_test_setup_teardown(
            test_crm_edit_reaches_field_api_and_live_stream, reset_faults,
            reset_faults),
        cmocka_unit_test_setup_teardown(
            test_conflict_later_crm_edit_wins_both_sides, reset_faults,
            reset_faults),
        cmocka_unit_test_setup_teardown(
            test_conflict_later_field_edit_wins_both_sides, reset_faults,
            reset_faults),
        cmocka_unit_test_setup_teardown(
            test_late_echo_does_not_undo_second_edit, reset_faults,
            reset_faults),
        cmocka_unit_test_setup_teardown(
            test_crm_delete_and_restore_reach_field_api, reset_faults,
            reset_faults),
        cmocka_unit_test_setup_teardown(test_crm_merge_remaps_the_losing_id,
                                        reset_faults, reset_faults),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
