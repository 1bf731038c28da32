/* Sync under faults with a CRM's simulator (FS_CRM), on the real programs
 * over loopback: webhooks dropped or duplicated (healed by the backstop,
 * nothing made twice), creates that fail or time out and are retried (the
 * CRM gets the deal once), and a deal whose pushes keep failing (marked
 * failed with its error, then sent after a retry from the API or the
 * command line). */
#include "http_test.h"
#include "stack.h"

#include "base/alloc.h"

#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* serve's backstop period and how long a deal may fail before it is
 * marked failed. */
#define BACKSTOP_MS 300
#define FAIL_AFTER_MS 1500
/* A timed-out create answers after the simulator's 6 s hang, then the
 * pusher backs off before it tries again. */
#define CREATE_RETRY_WAIT_MS 20000

static struct stack st;

static int setup(void **state)
{
    struct stack_options o = {.deals = 30,
                              .backstop_ms = BACKSTOP_MS,
                              .fail_after_ms = FAIL_AFTER_MS};
    return stack_start(&st, &o) ? 0 : -1;
}

static int teardown(void **state)
{
    return stack_stop(&st) ? 0 : -1;
}

static int reset_faults(void **state)
{
    return stack_faults(&st, STACK_NO_FAULTS) ? 0 : -1;
}

/* Records in fieldsync (tombstones too) holding that CRM id. */
static size_t records_with_crm_id(const char *crm_id)
{
    json_t *deals = stack_deals(&st, true);
    size_t i, n = 0;
    json_t *d;

    json_array_foreach(deals, i, d)
    {
        const char *id = stack_text(d, "crm_id");
        n += id && strcmp(id, crm_id) == 0;
    }
    json_decref(deals);
    return n;
}

/* Simulator deals carrying our record id (the CRM's field for it);
 * *crm_id gets the last one's id (caller frees). */
static size_t sim_deals_with_our_id(const char *our_id, char **crm_id)
{
    json_t *all = stack_sim_deals(&st);
    size_t i, n = 0;
    json_t *d;

    json_array_foreach(all, i, d)
    {
        const char *v = stack_text(d, "our_id");
        if (!v || strcmp(v, our_id) != 0)
            continue;
        n++;
        if (crm_id) {
            free(*crm_id);
            *crm_id = xstrdup(stack_text(d, "id"));
        }
    }
    json_decref(all);
    return n;
}

/* Creates a deal as a CRM user; returns its CRM id (caller frees). */
static char *crm_create(const char *name)
{
    long status;
    char *body = xasprintf("{\"fields\":{\"name\":\"%s\","
                           "\"stage\":\"%s\"}}",
                           name, stack_stage_id(&st, "Prospecting"));
    json_t *r = stack_sim(&st, "POST", "/_sim/deals", body, &status);

    assert_int_equal(status, 201);
    char *id = xstrdup(stack_text(r, "id"));
    json_decref(r);
    free(body);
    return id;
}

static void crm_rename(const char *crm_id, const char *name)
{
    char *fields = xasprintf("{\"name\":\"%s\"}", name);

    assert_true(stack_sim_edit(&st, crm_id, fields) > 0);
    free(fields);
}

struct crm_id_wait {
    const char *crm_id;
    const char *name;
};

static bool record_has_name(void *ctx)
{
    struct crm_id_wait *w = ctx;
    json_t *deal = stack_deal_by_crm_id(&st, w->crm_id);
    const char *name = stack_text(deal, "name");
    bool match = name && strcmp(name, w->name) == 0;

    json_decref(deal);
    return match;
}

static void wait_record_name(const char *crm_id, const char *name)
{
    struct crm_id_wait w = {crm_id, name};
    assert_true(http_test_poll(record_has_name, &w, STACK_WAIT_MS));
}

static void test_dropped_webhooks_are_healed_by_backstop(void **state)
{
    const char *renamed = stack_seed_id(&st, 0);
    int64_t dropped = stack_sim_stat(&st, "events_dropped", NULL);

    assert_true(stack_faults(&st, "{\"drop\":1.0}"));
    crm_rename(renamed, "Renamed while webhooks drop");
    char *created = crm_create("Created while webhooks drop");
    assert_true(stack_settled(&st, STACK_WAIT_MS));
    assert_true(stack_sim_stat(&st, "events_dropped", NULL) >= dropped + 2);

    wait_record_name(renamed, "Renamed while webhooks drop");
    wait_record_name(created, "Created while webhooks drop");
    assert_int_equal(records_with_crm_id(created), 1);
    assert_int_equal(records_with_crm_id(renamed), 1);
    free(created);
}

static void test_duplicated_webhooks_create_nothing_twice(void **state)
{
    const char *renamed = stack_seed_id(&st, 1);
    int64_t duplicates = stack_metric(&st, "fieldsync_events_duplicate_total");

    assert_true(stack_faults(&st, "{\"duplicate\":1.0}"));
    char *created = crm_create("Created with every webhook twice");
    crm_rename(renamed, "Renamed with every webhook twice");
    wait_record_name(created, "Created with every webhook twice");
    wait_record_name(renamed, "Renamed with every webhook twice");
    assert_true(stack_settled(&st, STACK_WAIT_MS));

    assert_true(stack_sim_stat(&st, "events_duplicated", NULL) > 0);
    assert_true(stack_metric(&st, "fieldsync_events_duplicate_total") >
                duplicates);
    assert_int_equal(records_with_crm_id(created), 1);
    json_t *deals = stack_deals(&st, false);
    json_t *sim = stack_sim_deals(&st);
    assert_int_equal(json_array_size(deals), json_array_size(sim));
    json_decref(sim);
    json_decref(deals);
    free(created);
}

/* POST /api/v1/deals as the admin; returns our id (caller frees). */
static char *field_create(const char *name)
{
    long status;
    char *body = xasprintf("{\"fields\":{\"name\":\"%s\",\"amount\":700,"
                           "\"owner\":\"%s\"}}",
                           name, stack_owner_id(&st, 0));
    json_t *r =
        stack_api(&st, st.admin, "POST", "/api/v1/deals", body, &status);

    assert_int_equal(status, 201);
    assert_true(json_is_null(json_object_get(r, "crm_id")));
    assert_string_equal(stack_text(json_object_get(r, "sync"), "state"),
                        "pending");
    assert_string_equal(stack_text(r, "amount"), "700");
    char *id = xstrdup(stack_text(r, "id"));
    json_decref(r);
    free(body);
    return id;
}

struct create_wait {
    const char *id;
    char *crm_id;
};

static bool has_crm_id(void *ctx)
{
    struct create_wait *w = ctx;
    json_t *deal = stack_deal(&st, w->id);
    const char *crm_id = stack_text(deal, "crm_id");
    const char *state = stack_text(json_object_get(deal, "sync"), "state");

    if (crm_id && state && strcmp(state, "synced") == 0)
        w->crm_id = xstrdup(crm_id);
    json_decref(deal);
    return w->crm_id != NULL;
}

/* The deal reached the CRM exactly once, under the CRM id fieldsync
 * shows, and fieldsync holds it once. */
static void assert_created_once(const char *id, const char *name,
                                int64_t timeout_ms)
{
    struct create_wait w = {id, NULL};
    char *sim_id = NULL;

    assert_true(http_test_poll(has_crm_id, &w, timeout_ms));
    assert_true(stack_settled(&st, STACK_WAIT_MS));
    assert_int_equal(sim_deals_with_our_id(id, &sim_id), 1);
    assert_string_equal(sim_id, w.crm_id);
    assert_true(stack_wait_sim(&st, w.crm_id, "name", name));
    assert_int_equal(records_with_crm_id(w.crm_id), 1);
    free(sim_id);
    free(w.crm_id);
}

static void test_field_create_reaches_crm_once(void **state)
{
    char *id = field_create("Lead from the field");
    assert_created_once(id, "Lead from the field", STACK_WAIT_MS);
    free(id);
}

struct error_wait {
    const char *id;
};

static bool has_push_error(void *ctx)
{
    struct error_wait *w = ctx;
    json_t *deal = stack_deal(&st, w->id);
    bool failed_once = stack_text(json_object_get(deal, "sync"), "error");

    json_decref(deal);
    return failed_once;
}

static void test_failed_create_is_retried_once(void **state)
{
    assert_true(stack_faults(&st, "{\"api_5xx\":1.0}"));
    char *id = field_create("Lead while the CRM fails");
    struct error_wait w = {id};
    assert_true(http_test_poll(has_push_error, &w, STACK_WAIT_MS));
    assert_int_equal(sim_deals_with_our_id(id, NULL), 0);

    assert_true(stack_faults(&st, "{\"api_5xx\":0}"));
    assert_created_once(id, "Lead while the CRM fails", STACK_WAIT_MS);
    free(id);
}

struct sim_create_wait {
    const char *id;
};

static bool in_sim(void *ctx)
{
    struct sim_create_wait *w = ctx;
    return sim_deals_with_our_id(w->id, NULL) > 0;
}

/* The CRM makes the deal but its answer never comes in time: the retry
 * must find that deal, not make another. */
static void test_timed_out_create_is_not_duplicated(void **state)
{
    assert_true(stack_faults(&st, "{\"api_timeout\":1.0}"));
    char *id = field_create("Lead while the CRM hangs");
    struct sim_create_wait w = {id};
    assert_true(http_test_poll(in_sim, &w, STACK_WAIT_MS));

    assert_true(stack_faults(&st, "{\"api_timeout\":0}"));
    assert_created_once(id, "Lead while the CRM hangs", CREATE_RETRY_WAIT_MS);
    free(id);
}

struct failed_wait {
    const char *id;
};

/* The deal is listed failed in the sync status, with its error. */
static bool listed_failed(void *ctx)
{
    struct failed_wait *w = ctx;
    long status;
    json_t *r =
        stack_api(&st, st.admin, "GET", "/api/v1/sync/status", NULL, &status);
    size_t i;
    json_t *e;
    bool found = false;

    json_array_foreach(json_object_get(r, "records"), i, e)
    {
        const char *state = stack_text(e, "state");
        found |= strcmp(stack_text(e, "id"), w->id) == 0 && state &&
                 strcmp(state, "failed") == 0 && stack_text(e, "error") &&
                 stack_text(e, "message");
    }
    json_decref(r);
    return status == 200 && found;
}

/* Edits the deal while every CRM call fails and waits until it is marked
 * failed, in the API and in `fieldsync status`. Returns our id. */
static char *edit_until_failed(const char *crm_id, const char *name)
{
    char *id = stack_record_id(&st, crm_id);
    char *body = xasprintf("{\"fields\":{\"name\":\"%s\"}}", name);
    long status;

    assert_non_null(id);
    assert_true(stack_faults(&st, "{\"api_5xx\":1.0}"));
    json_decref(stack_patch(&st, st.admin, id, body, &status));
    assert_int_equal(status, 200);
    struct failed_wait w = {id};
    assert_true(http_test_poll(listed_failed, &w, STACK_WAIT_MS));
    assert_true(stack_wait_state(&st, id, "failed"));

    const char *args[] = {"status", "--org", STACK_ORG, NULL};
    int code;
    char *out = stack_cli(&st, &code, args);
    char *line = xasprintf("failed %s crm_id=%s ", id, crm_id);
    assert_int_equal(code, 0);
    const char *at = strstr(out, line);
    assert_non_null(at);
    assert_non_null(strstr(at, "fields=name error: "));
    free(line);
    free(out);

    /* A failed deal waits for a retry even once the CRM is back. */
    assert_true(stack_faults(&st, "{\"api_5xx\":0}"));
    assert_true(stack_holds(listed_failed, &w, 3 * BACKSTOP_MS));
    free(body);
    return id;
}

static void test_failing_push_is_failed_then_sent_after_api_retry(void **state)
{
    const char *crm_id = stack_seed_id(&st, 2);
    char *id = edit_until_failed(crm_id, "Failed then retried");
    long status;
    json_t *r =
        stack_api(&st, st.admin, "POST", "/api/v1/sync/retry", NULL, &status);

    assert_int_equal(status, 200);
    assert_true(json_integer_value(json_object_get(r, "requeued")) >= 1);
    json_decref(r);
    assert_true(stack_wait_sim(&st, crm_id, "name", "Failed then retried"));
    assert_true(stack_wait_state(&st, id, "synced"));
    free(id);
}

static void test_failing_push_is_sent_after_cli_retry(void **state)
{
    const char *crm_id = stack_seed_id(&st, 3);
    char *id = edit_until_failed(crm_id, "Failed then CLI retried");
    const char *args[] = {"retry", "--org", STACK_ORG, NULL};
    int code;
    char *out = stack_cli(&st, &code, args);

    assert_int_equal(code, 0);
    assert_non_null(strstr(out, "requeued 1"));
    free(out);
    assert_true(stack_wait_sim(&st, crm_id, "name", "Failed then CLI retried"));
    assert_true(stack_wait_state(&st, id, "synced"));
    free(id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_dropped_webhooks_are_healed_by_backstop, reset_faults,
            reset_faults),
        cmocka_unit_test_setup_teardown(
            test_duplicated_webhooks_create_nothing_twice, reset_faults,
            reset_faults),
        cmocka_unit_test_setup_teardown(test_field_create_reaches_crm_once,
                                        reset_faults, reset_faults),
        cmocka_unit_test_setup_teardown(test_failed_create_is_retried_once,
                                        reset_faults, reset_faults),
        cmocka_unit_test_setup_teardown(test_timed_out_create_is_not_duplicated,
                                        reset_faults, reset_faults),
        cmocka_unit_test_setup_teardown(
            test_failing_push_is_failed_then_sent_after_api_retry, reset_faults,
            reset_faults),
        cmocka_unit_test_setup_teardown(
            test_failing_push_is_sent_after_cli_retry, reset_faults,
            reset_faults),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
