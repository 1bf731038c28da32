/* Two-way sync between fieldsync serve and the Pipedrive simulator, on
 * the real programs over loopback: import, field edits reaching the CRM in
 * one PATCH per deal, CRM edits reaching the field API and the live
 * stream, conflicts, echoes, CRM deletes, restores and merges (a delete
 * and a change), creates made once, and the webhook's Basic credentials
 * and answers. */
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
    struct stack_options o = {
        .crm = "pipedrive", .deals = 40, .owners = 4, .backstop_ms = 2000};
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
    char *id = record_id("2");
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
    assert_string_equal(stack_text(deal, "crm_stage"), "won-1");
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

    assert_converged(id, "2", "amount", "1200.5");
    assert_true(stack_wait_sim(&st, "2", "stage", "won-1"));

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
    char *id = record_id("3");
    char *url = xasprintf("%s/api/v1/events", st.api_base);
    struct sse_test *sse = sse_test_open(url, st.admin);

    assert_non_null(sse);
    crm_edit("3", "{\"name\":\"Renamed in the CRM\","
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
    char *id = record_id("5");
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
    crm_edit("5", "{\"name\":\"CRM says B\"}");
    assert_true(stack_faults(&st, "{\"webhooks_paused\":false}"));
    assert_true(stack_wait_field(&st, id, "name", "CRM says B"));
    assert_true(stack_faults(&st, "{\"api_5xx\":0}"));

    assert_converged(id, "5", "name", "CRM says B");
    assert_true(stack_settled(&st, STACK_WAIT_MS));
    assert_true(stack_wait_sim(&st, "5", "name", "CRM says B"));
    free(id);
}

/* The same, with the field edit made after the CRM's: it stays (pending)
 * when the CRM's change arrives, and then overwrites the CRM. */
static void test_conflict_later_field_edit_wins_both_sides(void **state)
{
    char *id = record_id("6");
    int64_t conflicts = stack_metric(&st, "fieldsync_conflicts_total");
    long status;

    assert_true(stack_faults(&st, "{\"webhooks_paused\":true,"
                                  "\"api_5xx\":1.0}"));
    int64_t crm_time = crm_edit("6", "{\"name\":\"CRM says C\"}");
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
    assert_converged(id, "6", "name", "Field says D");
    free(id);
}

/* Push 1 lands, its echo is held; a second edit is made and cannot be
 * pushed yet; then the echo of push 1 arrives. The second edit stays and
 * reaches the CRM afterwards. */
static void test_late_echo_does_not_undo_second_edit(void **state)
{
    char *id = record_id("7");
    long status;

    assert_true(stack_faults(&st, "{\"webhooks_paused\":true}"));
    json_decref(patch(id, "{\"fields\":{\"account\":\"Echo one\"}}", &status));
    assert_int_equal(status, 200);
    assert_true(stack_wait_sim(&st, "7", "account", "Echo one"));
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
    assert_converged(id, "7", "account", "Echo two");
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
    char *id = record_id("9");
    long status;
    json_t *r;

    r = stack_sim(&st, "DELETE", "/_sim/deals/9", NULL, &status);
    assert_int_equal(status, 200);
    json_decref(r);
    struct deleted_wait gone = {id, true, "crm_delete"};
    assert_true(http_test_poll(deleted_is, &gone, STACK_WAIT_MS));
    assert_false(listed(id));

    r = patch(id, "{\"fields\":{\"name\":\"too late\"}}", &status);
    assert_int_equal(status, 409);
    assert_string_equal(stack_text(r, "error"), "deleted");
    json_decref(r);

    r = stack_sim(&st, "POST", "/_sim/deals/9/restore", "{}", &status);
    assert_int_equal(status, 200);
    json_decref(r);
    struct deleted_wait back = {id, false, NULL};
    assert_true(http_test_poll(deleted_is, &back, STACK_WAIT_MS));
    assert_true(listed(id));

    r = patch(id, "{\"fields\":{\"name\":\"Restored and edited\"}}", &status);
    assert_int_equal(status, 200);
    json_decref(r);
    assert_converged(id, "9", "name", "Restored and edited");
    free(id);
}

static void test_crm_merge_remaps_the_losing_id(void **state)
{
    char *winner = record_id("10");
    char *loser = record_id("11");
    long status;

    json_t *r = stack_sim(&st, "POST", "/_sim/merge",
                          "{\"primary\":\"10\","
                          "\"merged\":[\"11\"]}",
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
    assert_string_equal(stack_text(deal, "crm_id"), "10");
    json_decref(deal);

    r = patch(loser, "{\"fields\":{\"name\":\"on the loser\"}}", &status);
    assert_int_equal(status, 409);
    assert_string_equal(stack_text(r, "error"), "deleted");
    json_decref(r);

    /* Both events of the pair arrived; the loser stays merged away. */
    assert_true(stack_settled(&st, STACK_WAIT_MS));
    deal = stack_deal(&st, loser);
    assert_true(json_is_true(json_object_get(deal, "deleted")));
    json_decref(deal);

    /* The survivor still syncs both ways. */
    r = patch(winner, "{\"fields\":{\"product\":\"After merge\"}}", &status);
    assert_int_equal(status, 200);
    json_decref(r);
    assert_converged(winner, "10", "product", "After merge");
    free(winner);
    free(loser);
}

static int64_t calls_of_kind(const char *kind)
{
    return stack_sim_stat(&st, "api_calls_by_kind", kind);
}

/* Pipedrive has no batch write: every pending field of a deal goes in
 * the deal's one PATCH. */
static void test_edit_of_several_fields_is_one_patch(void **state)
{
    char *id = record_id("12");
    int64_t updates = calls_of_kind("update");
    long status;

    json_decref(patch(id,
                      "{\"fields\":{\"name\":\"Three at once\","
                      "\"amount\":\"321\",\"account\":\"Trio\","
                      "\"close_date\":\"2027-01-31\"}}",
                      &status));
    assert_int_equal(status, 200);
    assert_converged(id, "12", "name", "Three at once");
    assert_true(stack_wait_sim(&st, "12", "amount", "321"));
    assert_true(stack_wait_sim(&st, "12", "account", "Trio"));
    assert_true(stack_wait_sim(&st, "12", "close_date", "2027-01-31"));
    assert_true(stack_settled(&st, STACK_WAIT_MS));
    assert_int_equal(calls_of_kind("update") - updates, 1);
    free(id);
}

struct created {
    const char *our_id;
    size_t count;
    char *crm_id;
};

/* How many simulator deals carry our id. */
static bool count_ours(void *ctx)
{
    struct created *c = ctx;
    json_t *deals = stack_sim_deals(&st);
    size_t i;
    json_t *d;

    c->count = 0;
    json_array_foreach(deals, i, d)
    {
        const char *ours = stack_text(d, "our_id");
        if (ours && strcmp(ours, c->our_id) == 0) {
            c->count++;
            free(c->crm_id);
            c->crm_id = xstrdup(stack_text(d, "id"));
        }
    }
    json_decref(deals);
    return c->count > 0;
}

/* The simulator's key of the fieldsync_id deal field. */
#define OUR_ID_KEY "d7e9f1a3b5c7d9e1f3a5b7c9d1e3f5a7b9c1d354"

/* A create whose answer was lost (an earlier try made the deal in the
 * CRM, fieldsync never heard) is found by our id on the next try and
 * brought up to date, not made again. */
static void test_field_create_reaches_crm_once(void **state)
{
    long status;

    assert_true(stack_faults(&st, "{\"api_5xx\":1.0}"));
    json_t *r = stack_api(&st, st.admin, "POST", "/api/v1/deals",
                          "{\"fields\":{\"name\":\"Lead from the field\","
                          "\"amount\":\"750\",\"stage\":\"new\"}}",
                          &status);
    assert_int_equal(status, 201);
    const json_t *made =
        json_object_get(r, "deal") ? json_object_get(r, "deal") : r;
    assert_non_null(stack_text(made, "id"));
    char *id = xstrdup(stack_text(made, "id"));
    json_decref(r);

    /* The earlier try, as it reached the CRM. */
    char *url = xasprintf("%s/api/v2/deals", st.sim_base);
    char *body = xasprintf("{\"title\":\"Lead from the field\","
                           "\"custom_fields\":{\"" OUR_ID_KEY "\":\"%s\"}}",
                           id);
    const char *headers[] = {"x-api-token: " STACK_SIM_TOKEN,
                             "Content-Type: application/json", NULL};
    struct http_test_response resp;
    assert_true(stack_faults(&st, "{\"api_5xx\":0}"));
    int64_t creates = calls_of_kind("create");
    assert_true(http_test_request("POST", url, headers, body, &resp));
    assert_int_equal(resp.status, 200);
    http_test_response_free(&resp);
    free(body);
    free(url);

    struct created c = {id, 0, NULL};
    assert_true(http_test_poll(count_ours, &c, STACK_WAIT_MS));
    wait_synced(id);
    assert_true(stack_settled(&st, STACK_WAIT_MS));
    count_ours(&c);
    assert_int_equal(c.count, 1);
    assert_int_equal(calls_of_kind("create"), creates + 1);
    json_t *deal = stack_deal(&st, id);
    assert_string_equal(stack_text(deal, "crm_id"), c.crm_id);
    json_decref(deal);
    assert_converged(id, c.crm_id, "amount", "750");
    free(c.crm_id);
    free(id);
}

/* Dropped webhooks: the backstop's read of what changed since its
 * watermark heals them, with per-field times from the changelog. */
static void test_dropped_webhooks_healed_by_backstop(void **state)
{
    char *id = record_id("14");
    int64_t changelogs = calls_of_kind("changelog");

    assert_true(stack_faults(&st, "{\"drop\":1.0}"));
    crm_edit("14", "{\"product\":\"Healed by the backstop\"}");
    assert_true(stack_wait_field(&st, id, "product", "Healed by the backstop"));
    assert_true(calls_of_kind("changelog") > changelogs);
    wait_synced(id);
    free(id);
}

/* A webhook sent twice (the same meta.id) is applied once. */
static void test_duplicated_webhooks_apply_once(void **state)
{
    char *id = record_id("15");
    int64_t dupes = stack_metric(&st, "fieldsync_events_duplicate_total");

    assert_true(stack_faults(&st, "{\"duplicate\":1.0}"));
    crm_edit("15", "{\"postcode\":\"m1 1ae\"}");
    assert_true(stack_wait_field(&st, id, "postcode", "M1 1AE"));
    assert_true(stack_settled(&st, STACK_WAIT_MS));
    assert_true(stack_metric(&st, "fieldsync_events_duplicate_total") > dupes);
    wait_synced(id);
    free(id);
}

static long post_hook(const char *path, const char *auth, const char *body)
{
    char *url = xasprintf("%s%s", st.api_base, path);
    char *header = auth ? xasprintf("Authorization: %s", auth) : NULL;
    const char *headers[] = {"Content-Type: application/json", header, NULL};
    struct http_test_response resp;

    http_test_request("POST", url, headers, body, &resp);
    long status = resp.status;
    http_test_response_free(&resp);
    free(header);
    free(url);
    return status;
}

/* Wrong credentials are the only 4xx: Pipedrive bans a webhook after 10
 * failed first attempts, so what we cannot use is taken with a 2xx. */
static void test_webhook_answers(void **state)
{
    char *good = xasprintf("Basic %s", "c3RhY2staG9vazpzdGFjay1ob29rLXBhc3N3b3"
                                       "JkLTAxMjM0NTY3ODk=");
    const char *event =
        "{\"meta\":{\"action\":\"change\",\"entity\":\"person\","
        "\"entity_id\":\"5\",\"id\":\"hand-made-1\",\"version\":\"2.0\","
        "\"timestamp\":\"2026-12-02T09:41:07.312Z\"},\"data\":{},"
        "\"previous\":{}}";

    assert_int_equal(post_hook("/webhooks/pipedrive/1", good, event), 200);
    assert_int_equal(post_hook("/webhooks/pipedrive/1",
                               "Basic c3RhY2staG9vazp3cm9uZw==", event),
                     401);
    assert_int_equal(post_hook("/webhooks/pipedrive/1", NULL, event), 401);
    assert_int_equal(post_hook("/webhooks/pipedrive/1", good, "not json"), 200);
    assert_int_equal(post_hook("/webhooks/pipedrive/99", good, event), 200);
    assert_int_equal(post_hook("/webhooks/pipedrive/x", good, event), 200);
    free(good);
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
        cmocka_unit_test_setup_teardown(
            test_edit_of_several_fields_is_one_patch, reset_faults,
            reset_faults),
        cmocka_unit_test_setup_teardown(test_field_create_reaches_crm_once,
                                        reset_faults, reset_faults),
        cmocka_unit_test_setup_teardown(
            test_dropped_webhooks_healed_by_backstop, reset_faults,
            reset_faults),
        cmocka_unit_test_setup_teardown(test_duplicated_webhooks_apply_once,
                                        reset_faults, reset_faults),
        cmocka_unit_test_setup_teardown(test_webhook_answers, reset_faults,
                                        reset_faults),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
