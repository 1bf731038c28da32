/* What only Pipedrive does, on the real programs over loopback: its
 * webhook registered at connect and guarded by Basic credentials, answers
 * that never make Pipedrive ban it, won as a status, one PATCH per deal
 * whatever the fields, a create an earlier try made found by our id, and
 * the backstop's per-field times from the changelog. The scenarios every
 * CRM shares are in tests/integration/crm. */
#include "http_test.h"
#include "stack.h"
#include "stack_pipedrive.h"

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

static int setup(void **state)
{
    struct stack_options o = {
        .crm = "pipedrive", .deals = 30, .owners = 3, .backstop_ms = 2000};
    return stack_start(&st, &o) ? 0 : -1;
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

static char *record_id(size_t seed)
{
    char *id = stack_record_id(&st, stack_seed_id(&st, seed));
    assert_non_null(id);
    return id;
}

static int64_t calls_of_kind(const char *kind)
{
    return stack_sim_stat(&st, "api_calls_by_kind", kind);
}

/* The deal as Pipedrive's own API shows it. */
static json_t *rest_deal(const char *crm_id)
{
    char *url = xasprintf("%s/api/v2/deals/%s", st.sim_base, crm_id);
    const char *headers[] = {"x-api-token: " STACK_PIPEDRIVE_TOKEN, NULL};
    long status = 0;
    json_t *r = http_test_json("GET", url, headers, NULL, &status);

    free(url);
    assert_int_equal(status, 200);
    json_t *data = json_incref(json_object_get(r, "data"));
    json_decref(r);
    return data;
}

/* Pipedrive has no batch write: every pending field of a deal goes in
 * the deal's one PATCH; won is the deal's status. */
static void test_edit_of_several_fields_is_one_patch(void **state)
{
    const char *crm_id = stack_seed_id(&st, 2);
    char *id = record_id(2);
    int64_t updates = calls_of_kind("update");
    long status;

    json_decref(stack_patch(&st, st.admin, id,
                            "{\"fields\":{\"name\":\"Four at once\","
                            "\"amount\":\"321.5\",\"account\":\"Quartet\","
                            "\"stage\":\"won\"}}",
                            &status));
    assert_int_equal(status, 200);
    assert_true(stack_wait_sim(&st, crm_id, "name", "Four at once"));
    assert_true(stack_wait_state(&st, id, "synced"));
    assert_true(stack_settled(&st, STACK_WAIT_MS));
    assert_int_equal(calls_of_kind("update") - updates, 1);

    json_t *deal = rest_deal(crm_id);
    assert_string_equal(stack_text(deal, "status"), "won");
    assert_true(json_real_value(json_object_get(deal, "value")) == 321.5);
    json_decref(deal);
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

struct error_wait {
    const char *id;
};

/* The deal's sync state names an error: a push of it has failed. */
static bool push_failed_once(void *ctx)
{
    struct error_wait *w = ctx;
    json_t *deal = stack_deal(&st, w->id);
    const char *error = stack_text(json_object_get(deal, "sync"), "error");
    bool failed = error && *error;
    json_decref(deal);
    return failed;
}

/* A create an earlier try made (the answer never reached fieldsync) is
 * found by our id in the fieldsync_id field and brought up to date, not
 * made again. */
static void test_create_made_before_is_found_by_our_id(void **state)
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

    /* The first push has failed: the next one is a retry. */
    struct error_wait ew = {id};
    assert_true(http_test_poll(push_failed_once, &ew, STACK_WAIT_MS));

    /* The earlier try, as it reached the CRM. */
    char *url = xasprintf("%s/api/v2/deals", st.sim_base);
    char *body = xasprintf("{\"title\":\"Lead from the field\","
                           "\"custom_fields\":{\"" STACK_PIPEDRIVE_OUR_ID_KEY
                           "\":\"%s\"}}",
                           id);
    const char *headers[] = {"x-api-token: " STACK_PIPEDRIVE_TOKEN,
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
    assert_true(stack_wait_state(&st, id, "synced"));
    assert_true(stack_settled(&st, STACK_WAIT_MS));
    count_ours(&c);
    assert_int_equal(c.count, 1);
    assert_int_equal(calls_of_kind("create"), creates + 1);
    json_t *deal = stack_deal(&st, id);
    assert_string_equal(stack_text(deal, "crm_id"), c.crm_id);
    json_decref(deal);
    assert_true(stack_wait_sim(&st, c.crm_id, "amount", "750"));
    free(c.crm_id);
    free(id);
}

/* A dropped webhook is healed by the backstop, which reads the changed
 * deal's changelog for each field's own time. */
static void test_backstop_reads_the_changelog(void **state)
{
    const char *crm_id = stack_seed_id(&st, 4);
    char *id = record_id(4);
    int64_t changelogs = calls_of_kind("changelog");

    assert_true(stack_faults(&st, "{\"drop\":1.0}"));
    assert_true(stack_sim_edit(&st, crm_id, "{\"product\":\"Healed\"}") > 0);
    assert_true(stack_wait_field(&st, id, "product", "Healed"));
    assert_true(calls_of_kind("changelog") > changelogs);
    assert_true(stack_wait_state(&st, id, "synced"));
    free(id);
}

/* The clock is in a later second than *ctx (epoch ms). */
static bool second_after(void *ctx)
{
    return clock_now_ms() / 1000 > *(const int64_t *)ctx / 1000;
}

/* A CRM user reopens a won deal in the stage it was won in, after a rep
 * marked it lost; the rep's push lands over the reopening, whose webhook
 * is lost. The reopening is the later write and must win on both sides:
 * its changelog entry (a status only) names no stage, so the backstop's
 * check of the push takes the deal's stage read (our stage stayed on
 * both sides; make stress found it). */
static void test_reopening_our_push_overwrote_is_healed(void **state)
{
    const char *crm_id = stack_seed_id(&st, 8);
    char *id = record_id(8);
    const char *won = stack_stage_id(&st, "Won");
    long status;

    char *win = xasprintf("{\"stage\":\"%s\"}", won);
    assert_true(stack_sim_edit(&st, crm_id, win) > 0);
    free(win);
    assert_true(stack_wait_field(&st, id, "stage", won));
    json_t *deal = rest_deal(crm_id);
    char *stage =
        xasprintf("%" JSON_INTEGER_FORMAT,
                  json_integer_value(json_object_get(deal, "stage_id")));
    json_decref(deal);

    assert_true(stack_faults(&st, "{\"api_5xx\":1.0}"));
    json_decref(stack_patch(&st, st.admin, id,
                            "{\"fields\":{\"stage\":\"lost\"}}", &status));
    assert_int_equal(status, 200);
    int64_t edited = clock_now_ms();
    struct error_wait ew = {id};
    assert_true(http_test_poll(push_failed_once, &ew, STACK_WAIT_MS));
    /* In a later second than the rep's edit: the changelog's whole
     * seconds tell nothing finer (docs/LIMITATIONS.md). */
    assert_true(http_test_poll(second_after, &edited, STACK_WAIT_MS));
    assert_true(stack_faults(&st, "{\"drop\":1.0}"));
    char *reopen = xasprintf("{\"stage\":\"%s\"}", stage);
    assert_true(stack_sim_edit(&st, crm_id, reopen) > 0);
    assert_true(stack_faults(&st, "{\"api_5xx\":0}"));
    assert_true(
        stack_wait_sim(&st, crm_id, "stage", stack_stage_id(&st, "Lost")));
    assert_true(stack_wait_state(&st, id, "synced"));
    assert_true(stack_faults(&st, STACK_NO_FAULTS));

    assert_true(stack_wait_sim(&st, crm_id, "stage", stage));
    assert_true(stack_wait_field(&st, id, "stage", stage));
    assert_true(stack_quiet(&st, STACK_WAIT_MS));
    deal = rest_deal(crm_id);
    assert_string_equal(stack_text(deal, "status"), "open");
    json_decref(deal);
    free(reopen);
    free(stage);
    free(id);
}

/* Wrong credentials are the only 4xx: Pipedrive bans a webhook after 10
 * failed first attempts, so what we cannot use is taken with a 2xx. */
static void test_webhook_answers(void **state)
{
    char *good = stack_pipedrive_basic(&st);
    const char *event =
        "{\"meta\":{\"action\":\"change\",\"entity\":\"person\","
        "\"entity_id\":\"5\",\"id\":\"hand-made-1\",\"version\":\"2.0\","
        "\"timestamp\":\"2026-12-02T09:41:07.312Z\"},\"data\":{},"
        "\"previous\":{}}";
    const char *hook = "/webhooks/pipedrive/1";

    assert_non_null(good);

    assert_int_equal(stack_pipedrive_webhook(&st, hook, good, event), 200);
    assert_int_equal(stack_pipedrive_webhook(
                         &st, hook, "Basic c3RhY2staG9vazp3cm9uZw==", event),
                     401);
    assert_int_equal(stack_pipedrive_webhook(&st, hook, NULL, event), 401);
    assert_int_equal(stack_pipedrive_webhook(&st, hook, good, "not json"), 200);
    assert_int_equal(
        stack_pipedrive_webhook(&st, "/webhooks/pipedrive/99", good, event),
        200);
    assert_int_equal(
        stack_pipedrive_webhook(&st, "/webhooks/pipedrive/x", good, event),
        200);
    free(good);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_edit_of_several_fields_is_one_patch, reset_faults,
            reset_faults),
        cmocka_unit_test_setup_teardown(
            test_create_made_before_is_found_by_our_id, reset_faults,
            reset_faults),
        cmocka_unit_test_setup_teardown(test_backstop_reads_the_changelog,
                                        reset_faults, reset_faults),
        cmocka_unit_test_setup_teardown(
            test_reopening_our_push_overwrote_is_healed, reset_faults,
            reset_faults),
        cmocka_unit_test_setup_teardown(test_webhook_answers, reset_faults,
                                        reset_faults),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
