/* What only Attio does, on the real programs over loopback (the
 * scenarios every CRM passes are under tests/integration/crm): one
 * location value carrying postcode and location, an emptied attribute
 * read without a time, echoes known by our token's actor without a read,
 * creates asserted on our id, an edit of a field the object has no
 * attribute for refused, and a map that does not fit the object refused
 * at connect with the reason. */
#include "http_test.h"
#include "stack.h"
#include "stack_attio.h"

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

static const char *const omit_close_date[] = {"--omit-attribute", "close_date",
                                              NULL};

static int start(const char *const *sim_args)
{
    struct stack_options o = {.crm = "attio",
                              .sim_args = sim_args,
                              .deals = 12,
                              .owners = 3,
                              .backstop_ms = 1000};
    return stack_start(&st, &o) ? 0 : -1;
}

static int start_full(void **state)
{
    return start(NULL);
}

static int start_without_close_date(void **state)
{
    return start(omit_close_date);
}

static int stop(void **state)
{
    return stack_stop(&st) ? 0 : -1;
}

static char *record_id(size_t n)
{
    char *id = stack_record_id(&st, stack_seed_id(&st, n));
    assert_non_null(id);
    return id;
}

static void patch_ok(const char *id, const char *body)
{
    long status = 0;
    json_decref(stack_patch(&st, st.admin, id, body, &status));
    assert_int_equal(status, 200);
}

static void assert_converged(const char *id, const char *crm_id,
                             const char *field, const char *value)
{
    assert_true(stack_wait_sim(&st, crm_id, field, value));
    assert_true(stack_wait_field(&st, id, field, value));
    assert_true(stack_wait_state(&st, id, "synced"));
}

static void test_location_is_one_value(void **state)
{
    const char *crm = stack_seed_id(&st, 1);
    char *id = record_id(1);

    patch_ok(id, "{\"fields\":{\"postcode\":\"m1 1ae\","
                 "\"location\":\"53.4808,-2.2426\"}}");
    assert_converged(id, crm, "postcode", "M1 1AE");
    assert_converged(id, crm, "location", "53.480800,-2.242600");

    /* Only the postcode changes: the write rebuilds the location value
     * from both fields, so the coordinates stay. */
    patch_ok(id, "{\"fields\":{\"postcode\":\"M2 2BB\"}}");
    assert_converged(id, crm, "postcode", "M2 2BB");
    assert_converged(id, crm, "location", "53.480800,-2.242600");

    /* An Attio user moves the deal: both fields follow. */
    assert_true(stack_sim_edit(&st, crm,
                               "{\"postcode\":\"M3 3CC\",\"location\":"
                               "\"53.5,-2.25\"}") > 0);
    assert_true(stack_wait_field(&st, id, "postcode", "M3 3CC"));
    assert_true(stack_wait_field(&st, id, "location", "53.500000,-2.250000"));

    /* Its history holds one value a write, each ended by the next. */
    char *url = xasprintf("%s/v2/objects/deals/records/%s/attributes/"
                          "location/values?show_historic=true",
                          st.sim_base, crm);
    const char *headers[] = {"Authorization: Bearer " STACK_ATTIO_TOKEN, NULL};
    long status = 0;
    json_t *values = http_test_json("GET", url, headers, NULL, &status);
    json_t *list = json_object_get(values, "data");
    assert_int_equal(status, 200);
    assert_true(json_array_size(list) >= 3);
    size_t last = json_array_size(list) - 1;
    assert_true(json_is_null(
        json_object_get(json_array_get(list, last), "active_until")));
    for (size_t i = 0; i < last; i++)
        assert_true(json_is_string(
            json_object_get(json_array_get(list, i), "active_until")));
    assert_string_equal(stack_text(json_array_get(list, last), "postcode"),
                        "M3 3CC");
    json_decref(values);
    free(url);
    free(id);
}

static void test_emptied_attribute_clears(void **state)
{
    const char *crm = stack_seed_id(&st, 2);
    char *id = record_id(2);

    assert_true(stack_sim_edit(&st, crm, "{\"close_date\":\"2027-05-01\"}") >
                0);
    assert_true(stack_wait_field(&st, id, "close_date", "2027-05-01"));
    /* Attio shows an emptied attribute with no value and no time. */
    assert_true(stack_sim_edit(&st, crm, "{\"close_date\":null}") > 0);
    assert_true(stack_wait_field(&st, id, "close_date", NULL));
    assert_true(stack_wait_state(&st, id, "synced"));
    free(id);
}

static int64_t calls(const char *kind)
{
    return stack_sim_stat(&st, "api_calls_by_kind", kind);
}

struct counts {
    int64_t updates;
};

static bool no_more_updates(void *ctx)
{
    return calls("update") == ((struct counts *)ctx)->updates;
}

static void test_echo_known_without_a_read(void **state)
{
    const char *crm = stack_seed_id(&st, 3);
    char *id = record_id(3);

    /* The first write teaches fieldsync our token's actor id. */
    patch_ok(id, "{\"fields\":{\"name\":\"Learn the actor\"}}");
    assert_converged(id, crm, "name", "Learn the actor");
    assert_true(stack_settled(&st, STACK_WAIT_MS));

    int64_t ignored = stack_metric(&st, "fieldsync_events_ignored_total");
    patch_ok(id, "{\"fields\":{\"name\":\"Echo me\"}}");
    assert_converged(id, crm, "name", "Echo me");
    assert_true(stack_settled(&st, STACK_WAIT_MS));
    /* The echo names our token: taken as ours, no re-push. */
    assert_true(stack_metric(&st, "fieldsync_events_ignored_total") > ignored);
    struct counts c = {calls("update")};
    assert_true(stack_holds(no_more_updates, &c, QUIET_MS));
    free(id);
}

static void test_create_asserted_on_our_id(void **state)
{
    long status = 0;
    json_t *made =
        stack_api(&st, st.admin, "POST", "/api/v1/deals",
                  "{\"fields\":{\"name\":\"Lead from the field\"}}", &status);
    assert_int_equal(status, 201);
    const char *id = stack_text(made, "id");
    assert_non_null(id);
    assert_true(stack_wait_state(&st, id, "synced"));

    json_t *deal = stack_deal(&st, id);
    json_t *sim = stack_sim_deal(&st, stack_text(deal, "crm_id"));
    assert_string_equal(stack_text(sim, "our_id"), id);
    /* Attio's required status defaults to the first one. */
    assert_string_equal(stack_text(json_object_get(sim, "fields"), "stage"),
                        stack_stage_id(&st, "Prospecting"));
    /* fieldsync learns the default from the assert's answer. */
    assert_true(
        stack_wait_field(&st, id, "stage", stack_stage_id(&st, "Prospecting")));
    assert_true(calls("assert") >= 1);
    assert_int_equal(calls("create"), 0);
    json_decref(sim);
    json_decref(deal);
    json_decref(made);
}

static void test_unsynced_field_refused(void **state)
{
    const char *crm = stack_seed_id(&st, 0);
    char *id = record_id(0);
    long status = 0;

    json_t *err =
        stack_patch(&st, st.admin, id,
                    "{\"fields\":{\"close_date\":\"2027-01-01\"}}", &status);
    assert_int_equal(status, 422);
    assert_string_equal(stack_text(err, "error"), "field_not_synced");
    assert_string_equal(stack_text(err, "field"), "close_date");
    json_decref(err);

    /* Nothing of it was kept, so nothing waits to be pushed. */
    assert_true(stack_wait_state(&st, id, "synced"));
    json_t *deal = stack_deal(&st, id);
    assert_true(json_is_null(json_object_get(deal, "close_date")));
    json_decref(deal);

    /* The fields the object has still sync; a create naming the missing
     * one is refused too. */
    patch_ok(id, "{\"fields\":{\"name\":\"Still synced\"}}");
    assert_true(stack_wait_sim(&st, crm, "name", "Still synced"));
    err = stack_api(&st, st.admin, "POST", "/api/v1/deals",
                    "{\"fields\":{\"name\":\"x\",\"close_date\":"
                    "\"2027-01-01\"}}",
                    &status);
    assert_int_equal(status, 422);
    json_decref(err);
    free(id);
}

/* `connect attio` in a second org with a map of its own. */
static char *connect_with_map(const char *map, int *code)
{
    const char *add[] = {"org", "add", "beta", NULL};
    free(stack_cli(&st, code, add));
    const char *args[] = {"connect",
                          "attio",
                          "--org",
                          "beta",
                          "--token",
                          STACK_ATTIO_TOKEN,
                          "--webhook-secret",
                          STACK_ATTIO_SECRET,
                          "--base-url",
                          st.sim_base,
                          "--map",
                          map,
                          NULL};
    return stack_cli(&st, code, args);
}

static void test_map_checked_at_connect(void **state)
{
    int code = 0;
    char *out = connect_with_map("owner=account_name", &code);

    assert_int_not_equal(code, 0);
    assert_non_null(strstr(out, "owner"));
    assert_non_null(strstr(out, "actor-reference"));
    free(out);

    out = connect_with_map("stage=", &code);
    assert_int_not_equal(code, 0);
    assert_non_null(strstr(out, "stage is a core field"));
    free(out);

    /* A field named explicitly onto an attribute the object lacks. */
    out = connect_with_map("close_date=close_date", &code);
    assert_int_not_equal(code, 0);
    assert_non_null(strstr(out, "'close_date'"));
    free(out);

    /* Left out on purpose: the connection is made, without it. */
    out = connect_with_map("close_date=", &code);
    assert_int_equal(code, 0);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_location_is_one_value, start_full,
                                        stop),
        cmocka_unit_test_setup_teardown(test_emptied_attribute_clears,
                                        start_full, stop),
        cmocka_unit_test_setup_teardown(test_echo_known_without_a_read,
                                        start_full, stop),
        cmocka_unit_test_setup_teardown(test_create_asserted_on_our_id,
                                        start_full, stop),
        cmocka_unit_test_setup_teardown(test_unsynced_field_refused,
                                        start_without_close_date, stop),
        cmocka_unit_test_setup_teardown(test_map_checked_at_connect,
                                        start_without_close_date, stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
