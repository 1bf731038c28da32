/* Two-way sync between fieldsync serve and a CRM's simulator (FS_CRM), on
 * the real programs over loopback: import, field edits reaching the CRM,
 * CRM edits reaching the field API and the live stream, conflicts,
 * echoes, and CRM deletes, restores (where the CRM has them) and
 * merges. */
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
    return stack_faults(&st, STACK_NO_FAULTS) ? 0 : -1;
}

/* The nth seed deal's CRM id. */
static const char *seed(size_t n)
{
    return stack_seed_id(&st, n);
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

/* The field API's deal holds every field as the CRM's deal does, and has
 * nothing left to push. */
static void assert_same_as_crm(const json_t *mine, const json_t *sim_deal)
{
    json_t *want = stack_sim_fields(sim_deal);
    const char *field;
    json_t *value;

    json_object_foreach(want, field, value)
    {
        json_t *ours = stack_crm_view(mine, field);
        if (!json_equal(value, ours))
            fail_msg("deal %s field %s: CRM %s, field API %s",
                     stack_text(sim_deal, "id"), field,
                     json_string_value(value), json_string_value(ours));
    }
    assert_string_equal(stack_text(json_object_get(mine, "sync"), "state"),
                        "synced");
    json_decref(want);
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
        assert_non_null(mine);
        assert_false(json_is_true(json_object_get(mine, "deleted")));
        assert_same_as_crm(mine, d);
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
    const char *crm_id = seed(1);
    char *id = record_id(crm_id);
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
    assert_string_equal(stack_text(deal, "crm_stage"),
                        stack_stage_id(&st, "Won"));
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

    assert_converged(id, crm_id, "amount", "1200.5");
    assert_true(
        stack_wait_sim(&st, crm_id, "stage", stack_stage_id(&st, "Won")));

    /* The CRM sends a webhook for our own write too; once it is in and
     * applied, nothing may change or be written again. */
    assert_true(stack_settled(&st, STACK_WAIT_MS));
    struct quiet q = {id, write_calls()};
    assert_true(q.writes > 0);
    assert_true(stack_holds(stays_quiet, &q, QUIET_MS));
    free(id);
}

static void test_crm_edit_reaches_field_api_and_live_stream(void **state)
{
    const char *crm_id = seed(2);
    char *id = record_id(crm_id);
    char *url = xasprintf("%s/api/v1/events", st.api_base);
    struct sse_test *sse = sse_test_open(url, st.admin);

    assert_non_null(sse);
    crm_edit(crm_id, "{\"name\":\"Renamed in the CRM\","
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
    const char *crm_id = seed(4);
    char *id = record_id(crm_id);
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
    crm_edit(crm_id, "{\"name\":\"CRM says B\"}");
    /* An id-only webhook is only news once the CRM can be read. */
    if (!st.crm->webhook_values)
        assert_true(stack_faults(&st, "{\"api_5xx\":0}"));
    assert_true(stack_faults(&st, "{\"webhooks_paused\":false}"));
    assert_true(stack_wait_field(&st, id, "name", "CRM says B"));
    assert_true(stack_faults(&st, "{\"api_5xx\":0}"));

    assert_converged(id, crm_id, "name", "CRM says B");
    assert_true(stack_settled(&st, STACK_WAIT_MS));
    assert_true(stack_wait_sim(&st, crm_id, "name", "CRM says B"));
    free(id);
}

/* The same, with the field edit made after the CRM's: it stays (pending)
 * when the CRM's change arrives, and then overwrites the CRM. */
static void test_conflict_later_field_edit_wins_both_sides(void **state)
{
    const char *crm_id = seed(5);
    char *id = record_id(crm_id);
    int64_t conflicts = stack_metric(&st, "fieldsync_conflicts_total");
    long status;

    assert_true(stack_faults(&st, "{\"webhooks_paused\":true,"
                                  "\"api_5xx\":1.0}"));
    int64_t crm_time = crm_edit(crm_id, "{\"name\":\"CRM says C\"}");
    stack_wait_past(crm_time);
    json_decref(patch(id, "{\"fields\":{\"name\":\"Field says D\"}}", &status));
    assert_int_equal(status, 200);

    /* An id-only webhook is only news once the CRM can be read; the
     * push, backing off since its failure, comes after that read. */
    if (!st.crm->webhook_values)
        assert_true(stack_faults(&st, "{\"api_5xx\":0}"));
    assert_true(stack_faults(&st, "{\"webhooks_paused\":false}"));
    assert_true(stack_settled(&st, STACK_WAIT_MS));
    assert_true(stack_metric(&st, "fieldsync_conflicts_total") > conflicts);
    json_t *deal = stack_deal(&st, id);
    assert_string_equal(stack_text(deal, "name"), "Field says D");
    if (st.crm->webhook_values)
        assert_string_equal(field_state(deal, "name"), "pending");
    json_decref(deal);

    assert_true(stack_faults(&st, "{\"api_5xx\":0}"));
    assert_converged(id, crm_id, "name", "Field says D");
    free(id);
}

/* Push 1 lands, its echo is held; a second edit is made and cannot be
 * pushed yet; then the echo of push 1 arrives. The second edit stays and
 * reaches the CRM afterwards. */
static void test_late_echo_does_not_undo_second_edit(void **state)
{
    const char *crm_id = seed(6);
    char *id = record_id(crm_id);
    long status;

    assert_true(stack_faults(&st, "{\"webhooks_paused\":true}"));
    json_decref(patch(id, "{\"fields\":{\"account\":\"Echo one\"}}", &status));
    assert_int_equal(status, 200);
    assert_true(stack_wait_sim(&st, crm_id, "account", "Echo one"));
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
    assert_converged(id, crm_id, "account", "Echo two");
    assert_true(stack_settled(&st, STACK_WAIT_MS));
    deal = stack_deal(&st, id);
    assert_string_equal(stack_text(deal, "account"), "Echo two");
    json_decref(deal);
    free(id);
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

/* Deletes the deal in the CRM and waits for fieldsync's tombstone. */
static void crm_delete(const char *crm_id, const char *id)
{
    long status;
    char *path = xasprintf("/_sim/deals/%s", crm_id);

    json_decref(stack_sim(&st, "DELETE", path, NULL, &status));
    assert_int_equal(status, 200);
    free(path);
    assert_true(stack_wait_deleted(&st, id, true, "crm_delete"));
    assert_false(listed(id));
}

static void test_crm_delete_reaches_field_api(void **state)
{
    const char *crm_id = seed(8);
    char *id = record_id(crm_id);
    long status;

    crm_delete(crm_id, id);
    json_t *r = patch(id, "{\"fields\":{\"name\":\"too late\"}}", &status);
    assert_int_equal(status, 409);
    assert_string_equal(stack_text(r, "error"), "deleted");
    json_decref(r);

    /* The tombstone stays: nothing is pushed and the deal is not back. */
    assert_true(stack_settled(&st, STACK_WAIT_MS));
    json_t *deal = stack_deal(&st, id);
    assert_true(json_is_true(json_object_get(deal, "deleted")));
    json_decref(deal);
    assert_false(listed(id));
    free(id);
}

/* Only for CRMs that restore (the entry's restores). */
static void test_crm_restore_reaches_field_api(void **state)
{
    const char *crm_id = seed(11);
    char *id = record_id(crm_id);
    long status;

    crm_delete(crm_id, id);
    char *path = xasprintf("/_sim/deals/%s/restore", crm_id);
    json_t *r = stack_sim(&st, "POST", path, "{}", &status);
    assert_int_equal(status, 200);
    json_decref(r);
    free(path);
    assert_true(stack_wait_deleted(&st, id, false, NULL));
    assert_true(listed(id));

    r = patch(id, "{\"fields\":{\"name\":\"Restored and edited\"}}", &status);
    assert_int_equal(status, 200);
    json_decref(r);
    assert_converged(id, crm_id, "name", "Restored and edited");
    free(id);
}

/* Merges the loser into the primary in the CRM; returns the surviving
 * deal's CRM id as the CRM answered it (the primary's, or one the merge
 * minted; caller frees). */
static char *crm_merge(const char *primary, const char *loser)
{
    long status;
    char *body =
        xasprintf("{\"primary\":\"%s\",\"merged\":[\"%s\"]}", primary, loser);
    json_t *r = stack_sim(&st, "POST", "/_sim/merge", body, &status);

    assert_int_equal(status, 200);
    assert_non_null(stack_text(r, "id"));
    char *survivor = xstrdup(stack_text(r, "id"));
    json_decref(r);
    free(body);
    return survivor;
}

/* The loser is tombstoned as merged into the winner, which lives on under
 * the surviving CRM id, and edits to the loser are refused. */
static void assert_merged(const char *winner, const char *loser,
                          const char *survivor)
{
    long status;
    assert_true(stack_wait_deleted(&st, loser, true, "merged"));
    json_t *deal = stack_deal(&st, loser);
    assert_string_equal(stack_text(deal, "merged_into"), winner);
    json_decref(deal);
    deal = stack_deal(&st, winner);
    assert_false(json_is_true(json_object_get(deal, "deleted")));
    assert_string_equal(stack_text(deal, "crm_id"), survivor);
    json_decref(deal);

    json_t *r =
        patch(loser, "{\"fields\":{\"name\":\"on the loser\"}}", &status);
    assert_int_equal(status, 409);
    assert_string_equal(stack_text(r, "error"), "deleted");
    json_decref(r);
}

struct pair_wait {
    const char *a;
    const char *b;
    const char *crm_id;
};

static bool holds_crm_id(const char *id, const char *crm_id)
{
    json_t *deal = stack_deal(&st, id);
    const char *have = stack_text(deal, "crm_id");
    bool holds = have && strcmp(have, crm_id) == 0;
    json_decref(deal);
    return holds;
}

static bool either_holds(void *ctx)
{
    struct pair_wait *w = ctx;
    return holds_crm_id(w->a, w->crm_id) || holds_crm_id(w->b, w->crm_id);
}

/* Where the CRM's merge events name no primary, either record may live
 * on: swaps winner and loser when the loser did. */
static void which_survived(char **winner, char **loser, const char *survivor)
{
    struct pair_wait w = {*winner, *loser, survivor};
    if (!st.crm->merge_names_primary &&
        http_test_poll(either_holds, &w, STACK_WAIT_MS) &&
        holds_crm_id(*loser, survivor)) {
        char *swap = *winner;
        *winner = *loser;
        *loser = swap;
    }
}

static void test_crm_merge_remaps_the_losing_id(void **state)
{
    char *winner = record_id(seed(9));
    char *loser = record_id(seed(10));
    long status;

    char *survivor = crm_merge(seed(9), seed(10));
    which_survived(&winner, &loser, survivor);
    assert_merged(winner, loser, survivor);

    /* The survivor still syncs both ways. */
    json_t *r =
        patch(winner, "{\"fields\":{\"product\":\"After merge\"}}", &status);
    assert_int_equal(status, 200);
    json_decref(r);
    assert_converged(winner, survivor, "product", "After merge");
    crm_edit(survivor, "{\"account\":\"Edited after merge\"}");
    assert_true(stack_wait_field(&st, winner, "account", "Edited after merge"));
    free(survivor);
    free(winner);
    free(loser);
}

/* How long the change's webhook is held: long enough for the merge's to
 * overtake it and be applied. */
#define HELD_MS "3000"

static bool delivery_held(void *ctx)
{
    return stack_sim_stat(&st, "pending_deliveries", NULL) > 0;
}

/* A CRM user changes a deal, then merges it into another; the change's
 * webhook is held up and arrives after the merge's. The late change must
 * not bring the loser back nor put on the survivor a value the CRM's
 * merge did not keep: both sides end equal. */
static void test_change_delivered_after_merge(void **state)
{
    char *winner = record_id(seed(12));
    char *loser = record_id(seed(13));

    assert_true(stack_settled(&st, STACK_WAIT_MS));
    assert_true(stack_faults(&st, "{\"delay_ms\":" HELD_MS "}"));
    crm_edit(seed(13), "{\"name\":\"Renamed before the merge\"}");
    assert_true(http_test_poll(delivery_held, NULL, STACK_WAIT_MS));
    assert_true(stack_faults(&st, "{\"delay_ms\":0}"));
    char *survivor = crm_merge(seed(12), seed(13));
    which_survived(&winner, &loser, survivor);
    assert_merged(winner, loser, survivor);
    /* The merge is in; the change is still on its way. */
    assert_true(delivery_held(NULL));

    assert_true(stack_settled(&st, STACK_WAIT_MS));
    json_t *loser_deal = stack_deal(&st, loser);
    assert_true(json_is_true(json_object_get(loser_deal, "deleted")));
    assert_string_equal(stack_text(loser_deal, "deleted_reason"), "merged");
    json_decref(loser_deal);
    json_t *mine = stack_deal(&st, winner);
    json_t *theirs = stack_sim_deal(&st, survivor);
    assert_non_null(mine);
    assert_non_null(theirs);
    assert_same_as_crm(mine, theirs);
    json_decref(theirs);
    json_decref(mine);
    free(survivor);
    free(winner);
    free(loser);
}

int main(void)
{
    const struct stack_crm *crm = stack_crm_by_name(stack_crm_default());
    struct CMUnitTest tests[] = {
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
        cmocka_unit_test_setup_teardown(test_crm_delete_reaches_field_api,
                                        reset_faults, reset_faults),
        cmocka_unit_test_setup_teardown(test_crm_merge_remaps_the_losing_id,
                                        reset_faults, reset_faults),
        cmocka_unit_test_setup_teardown(test_change_delivered_after_merge,
                                        reset_faults, reset_faults),
        /* Last, so it can be left out for a CRM whose deletes are final. */
        cmocka_unit_test_setup_teardown(test_crm_restore_reaches_field_api,
                                        reset_faults, reset_faults),
    };
    size_t n = sizeof(tests) / sizeof(tests[0]);

    if (crm && !crm->restores)
        n--;
    return _cmocka_run_group_tests("test_sync", tests, n, setup, teardown);
}
