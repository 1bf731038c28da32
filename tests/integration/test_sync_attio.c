/* Two-way sync between fieldsync serve and the Attio simulator on the
 * real programs over loopback: the webhook registered at connect, import,
 * edits both ways (a location from postcode and location, an emptied
 * attribute), conflicts, echoes known by our token's actor, dropped and
 * duplicated webhooks, creates by assert, deletes, merges minting a new
 * record, Attio's rate limit, and a field the object lacks. */
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

/* Long enough for a re-push to show: the push window is 20 ms. */
#define QUIET_MS 500

static struct stack st;

static int start(const char *const *sim_args, int sim_rate)
{
    struct stack_options o = {.crm = "attio",
                              .sim_args = sim_args,
                              .deals = 24,
                              .owners = 3,
                              .sim_rate_10s = sim_rate,
                              .conn_rate_10s = 1000,
                              .backstop_ms = 1000};
    return stack_start(&st, &o) ? 0 : -1;
}

static int setup(void **state)
{
    return start(NULL, 0);
}

static int teardown(void **state)
{
    return stack_stop(&st) ? 0 : -1;
}

static int reset_faults(void **state)
{
    return stack_faults(&st, "{\"drop\":0,\"duplicate\":0,\"reorder\":false,"
                             "\"delay_ms\":0,\"api_5xx\":0,\"api_timeout\":0,"
                             "\"webhooks_paused\":false}")
               ? 0
               : -1;
}

/* The n-th seed deal's CRM id (Attio's records are numbered in seed
 * order by the simulator). */
static char *crm_id_of(int n)
{
    return xasprintf("dea10000-0000-4000-8000-%012x", n + 1);
}

static char *record_id(const char *crm_id)
{
    char *id = stack_record_id(&st, crm_id);
    assert_non_null(id);
    return id;
}

static json_t *patch(const char *id, const char *body, long *status)
{
    return stack_patch(&st, st.admin, id, body, status);
}

static void patch_ok(const char *id, const char *body)
{
    long status = 0;
    json_decref(patch(id, body, &status));
    assert_int_equal(status, 200);
}

static void assert_converged(const char *id, const char *crm_id,
                             const char *field, const char *value)
{
    assert_true(stack_wait_sim(&st, crm_id, field, value));
    assert_true(stack_wait_field(&st, id, field, value));
    assert_true(stack_wait_state(&st, id, "synced"));
}

static int64_t writes(void)
{
    return stack_sim_stat(&st, "api_calls_by_class", "write");
}

/* ---- the connection ---- */

static void test_webhook_registered_at_connect(void **state)
{
    long status = 0;
    char *path = xasprintf("%s/v2/webhooks", st.sim_base);
    const char *headers[] = {"Authorization: Bearer " STACK_SIM_TOKEN, NULL};
    json_t *hooks = http_test_json("GET", path, headers, NULL, &status);

    assert_int_equal(status, 200);
    const char *url = stack_text(
        json_array_get(json_object_get(hooks, "data"), 0), "target_url");
    assert_non_null(url);
    char *want = xasprintf("%s/webhooks/attio/1", st.api_base);
    assert_string_equal(url, want);
    free(want);
    json_decref(hooks);
    free(path);
}

/* ---- import and edits ---- */

static void test_import_brings_every_deal(void **state)
{
    json_t *sim_deals = stack_sim_deals(&st);
    json_t *deals = stack_deals(&st, false);
    size_t i;
    json_t *d;

    assert_int_equal(json_array_size(deals), st.deals);
    json_array_foreach(sim_deals, i, d)
    {
        json_t *mine = stack_deal_by_crm_id(&st, stack_text(d, "id"));
        json_t *want = stack_sim_fields(d);
        const char *field;
        json_t *value;
        assert_non_null(mine);
        json_object_foreach(want, field, value)
        {
            json_t *have = stack_crm_view(mine, field);
            assert_true(json_equal(have, value) ||
                        (json_is_null(value) && !have));
        }
        json_decref(want);
        json_decref(mine);
    }
    json_decref(sim_deals);
    json_decref(deals);
}

static void test_field_edits_reach_attio(void **state)
{
    char *crm = crm_id_of(1);
    char *id = record_id(crm);

    patch_ok(id, "{\"fields\":{\"name\":\"Renamed in the field\","
                 "\"amount\":\"1234.5\",\"close_date\":\"2027-01-31\","
                 "\"postcode\":\"m1 1ae\",\"location\":\"53.4808,-2.2426\"}}");
    assert_converged(id, crm, "name", "Renamed in the field");
    assert_converged(id, crm, "amount", "1234.5");
    assert_converged(id, crm, "close_date", "2027-01-31");
    /* One Attio location value carries both. */
    assert_converged(id, crm, "postcode", "M1 1AE");
    assert_converged(id, crm, "location", "53.480800,-2.242600");

    /* Only the postcode changes: the location stays in the value. */
    patch_ok(id, "{\"fields\":{\"postcode\":\"M2 2BB\"}}");
    assert_converged(id, crm, "postcode", "M2 2BB");
    assert_converged(id, crm, "location", "53.480800,-2.242600");
    free(id);
    free(crm);
}

static void test_attio_edits_reach_the_field(void **state)
{
    char *crm = crm_id_of(2);
    char *id = record_id(crm);

    assert_true(stack_sim_edit(&st, crm,
                               "{\"name\":\"Renamed in Attio\","
                               "\"stage\":\"" STACK_ATTIO_STATUS(3) "\"}") > 0);
    assert_true(stack_wait_field(&st, id, "name", "Renamed in Attio"));
    assert_true(stack_wait_field(&st, id, "stage", STACK_ATTIO_STATUS(3)));

    /* An emptied attribute shows no time; it still clears the field. */
    assert_true(stack_sim_edit(&st, crm, "{\"close_date\":\"2027-05-01\"}") >
                0);
    assert_true(stack_wait_field(&st, id, "close_date", "2027-05-01"));
    assert_true(stack_sim_edit(&st, crm, "{\"close_date\":null}") > 0);
    assert_true(stack_wait_field(&st, id, "close_date", NULL));
    assert_true(stack_wait_state(&st, id, "synced"));
    free(id);
    free(crm);
}

/* ---- conflicts and echoes ---- */

static void test_conflicting_edits_later_wins(void **state)
{
    char *crm = crm_id_of(3);
    char *id = record_id(crm);

    /* Field first, Attio later: Attio's edit wins on both sides. */
    assert_true(stack_faults(&st, "{\"webhooks_paused\":true}"));
    patch_ok(id, "{\"fields\":{\"product\":\"Field product\"}}");
    assert_true(stack_wait_sim(&st, crm, "product", "Field product"));
    stack_wait_past(clock_now_ms());
    assert_true(stack_sim_edit(&st, crm, "{\"product\":\"Attio product\"}") >
                0);
    assert_true(stack_faults(&st, "{\"webhooks_paused\":false}"));
    assert_converged(id, crm, "product", "Attio product");

    /* Attio first, field later: the field's edit wins. */
    assert_true(stack_faults(&st, "{\"webhooks_paused\":true}"));
    assert_true(stack_sim_edit(&st, crm, "{\"account\":\"Attio account\"}") >
                0);
    stack_wait_past(clock_now_ms());
    patch_ok(id, "{\"fields\":{\"account\":\"Field account\"}}");
    assert_true(stack_faults(&st, "{\"webhooks_paused\":false}"));
    assert_converged(id, crm, "account", "Field account");
    free(id);
    free(crm);
}

struct no_writes {
    int64_t writes;
};

static bool writes_unchanged(void *ctx)
{
    return writes() == ((struct no_writes *)ctx)->writes;
}

static void test_echoes_change_nothing(void **state)
{
    char *crm = crm_id_of(4);
    char *id = record_id(crm);

    int64_t ignored = stack_metric(&st, "fieldsync_events_ignored_total");

    patch_ok(id, "{\"fields\":{\"name\":\"Echo me\"}}");
    assert_converged(id, crm, "name", "Echo me");
    assert_true(stack_settled(&st, STACK_WAIT_MS));

    /* The echo names our token (learnt from our first write): it is
     * known as ours without a read, and nothing is written again. */
    assert_true(stack_metric(&st, "fieldsync_events_ignored_total") > ignored);
    struct no_writes w = {writes()};
    assert_true(stack_holds(writes_unchanged, &w, QUIET_MS));
    json_t *deal = stack_deal(&st, id);
    assert_string_equal(stack_text(deal, "name"), "Echo me");
    json_decref(deal);
    free(id);
    free(crm);
}

/* ---- webhooks lost and repeated ---- */

static void test_dropped_webhooks_healed(void **state)
{
    char *crm = crm_id_of(5);
    char *id = record_id(crm);
    int64_t dropped = stack_sim_stat(&st, "events_dropped", NULL);

    assert_true(stack_faults(&st, "{\"drop\":1}"));
    assert_true(stack_sim_edit(&st, crm, "{\"name\":\"Never announced\"}") > 0);
    assert_true(stack_sim_stat(&st, "events_dropped", NULL) > dropped);
    /* The backstop's scan finds it. */
    assert_true(stack_wait_field(&st, id, "name", "Never announced"));
    free(id);
    free(crm);
}

static void test_duplicated_webhooks_once(void **state)
{
    char *crm = crm_id_of(6);
    char *id = record_id(crm);
    int64_t dup = stack_metric(&st, "fieldsync_events_duplicate_total");

    assert_true(stack_faults(&st, "{\"duplicate\":1}"));
    assert_true(stack_sim_edit(&st, crm, "{\"name\":\"Said twice\"}") > 0);
    assert_true(stack_wait_field(&st, id, "name", "Said twice"));
    assert_true(stack_settled(&st, STACK_WAIT_MS));
    assert_true(stack_sim_stat(&st, "events_duplicated", NULL) > 0);
    /* The copy carried the same Idempotency-Key. */
    assert_true(stack_metric(&st, "fieldsync_events_duplicate_total") > dup);
    free(id);
    free(crm);
}

/* ---- creates, deletes, merges ---- */

static void test_field_create_asserted_once(void **state)
{
    long status = 0;
    json_t *made = stack_api(&st, st.admin, "POST", "/api/v1/deals",
                             "{\"fields\":{\"name\":\"Lead from the field\","
                             "\"stage\":\"new\"}}",
                             &status);
    assert_int_equal(status, 201);
    const char *id = stack_text(made, "id");
    assert_non_null(id);
    assert_true(stack_wait_state(&st, id, "synced"));

    json_t *deal = stack_deal(&st, id);
    const char *crm = stack_text(deal, "crm_id");
    assert_non_null(crm);
    json_t *sim = stack_sim_deal(&st, crm);
    assert_string_equal(stack_text(sim, "our_id"), id);
    assert_string_equal(stack_text(json_object_get(sim, "fields"), "stage"),
                        STACK_ATTIO_STATUS(1));
    json_decref(sim);
    json_decref(deal);
    json_decref(made);
}

static void test_attio_delete_tombstones(void **state)
{
    char *crm = crm_id_of(7);
    char *id = record_id(crm);
    long status = 0;
    char *path = xasprintf("/_sim/deals/%s", crm);

    json_decref(stack_sim(&st, "DELETE", path, NULL, &status));
    assert_int_equal(status, 200);
    json_t *deals = NULL;
    for (int64_t until = clock_now_ms() + STACK_WAIT_MS;
         clock_now_ms() < until;) {
        json_t *d = stack_deal(&st, id);
        bool deleted = json_is_true(json_object_get(d, "deleted"));
        json_decref(d);
        if (deleted)
            break;
        clock_sleep_ms(20);
    }
    json_t *d = stack_deal(&st, id);
    assert_true(json_is_true(json_object_get(d, "deleted")));
    json_decref(d);
    json_decref(deals);
    free(path);
    free(id);
    free(crm);
}

static void test_merge_mints_one_survivor(void **state)
{
    char *a = crm_id_of(8);
    char *b = crm_id_of(9);
    char *id_a = record_id(a);
    char *id_b = record_id(b);
    long status = 0;
    char *body = xasprintf("{\"primary\":\"%s\",\"merged\":[\"%s\"]}", a, b);

    json_t *merged = stack_sim(&st, "POST", "/_sim/merge", body, &status);
    assert_int_equal(status, 200);
    const char *new_id = stack_text(merged, "id");
    assert_non_null(new_id);
    assert_true(strcmp(new_id, a) != 0 && strcmp(new_id, b) != 0);

    /* Two record.merged events; one of the two records takes the new
     * record's id, the other is tombstoned as merged into it. */
    json_t *survivor = NULL;
    for (int64_t until = clock_now_ms() + STACK_WAIT_MS;
         !survivor && clock_now_ms() < until; clock_sleep_ms(20))
        survivor = stack_deal_by_crm_id(&st, new_id);
    assert_non_null(survivor);
    const char *kept = stack_text(survivor, "id");
    assert_true(strcmp(kept, id_a) == 0 || strcmp(kept, id_b) == 0);
    assert_true(stack_settled(&st, STACK_WAIT_MS));
    json_t *other = stack_deal(&st, strcmp(kept, id_a) == 0 ? id_b : id_a);
    assert_true(json_is_true(json_object_get(other, "deleted")));

    /* The survivor syncs both ways under the new id. */
    patch_ok(kept, "{\"fields\":{\"name\":\"After the merge\"}}");
    assert_converged(kept, new_id, "name", "After the merge");
    json_decref(other);
    json_decref(survivor);
    json_decref(merged);
    free(body);
    free(id_a);
    free(id_b);
    free(a);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_webhook_registered_at_connect),
        cmocka_unit_test(test_import_brings_every_deal),
        cmocka_unit_test_setup(test_field_edits_reach_attio, reset_faults),
        cmocka_unit_test_setup(test_attio_edits_reach_the_field, reset_faults),
        cmocka_unit_test_setup(test_conflicting_edits_later_wins, reset_faults),
        cmocka_unit_test_setup(test_echoes_change_nothing, reset_faults),
        cmocka_unit_test_setup(test_dropped_webhooks_healed, reset_faults),
        cmocka_unit_test_setup(test_duplicated_webhooks_once, reset_faults),
        cmocka_unit_test_setup(test_field_create_asserted_once, reset_faults),
        cmocka_unit_test_setup(test_attio_delete_tombstones, reset_faults),
        cmocka_unit_test_setup(test_merge_mints_one_survivor, reset_faults),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
