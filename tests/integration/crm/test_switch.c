/* Switching an org's primary CRM from HubSpot to the CRM under test (a
 * second HubSpot account when that is HubSpot), on the real programs:
 * every deal and every local edit is kept, deals only fieldsync has are
 * created in the new CRM once, the new CRM's own deals are imported, a
 * newer value there wins, and the old CRM is left alone afterwards. */
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

/* The new CRM has the old one's deals and a few more. */
#define OLD_DEALS 24
#define NEW_DEALS 28

static struct stack old; /* HubSpot, the org's first CRM */
static struct stack neu; /* the CRM under test, beside it */

static int setup(void **state)
{
    struct stack_options o = {.crm = "hubspot", .deals = OLD_DEALS};
    struct stack_options n = {.deals = NEW_DEALS};

    if (!stack_start(&old, &o))
        return -1;
    return stack_start_beside(&old, &neu, &n) ? 0 : -1;
}

static int teardown(void **state)
{
    bool clean = stack_stop(&neu);
    return stack_stop(&old) && clean ? 0 : -1;
}

/* The fieldsync record of the old CRM's nth seed deal (caller frees). */
static char *old_record(size_t n)
{
    return stack_record_id(&old, stack_seed_id(&old, n));
}

static size_t sim_deals_named(struct stack *s, const char *name)
{
    json_t *deals = stack_sim_deals(s);
    size_t i, count = 0;
    json_t *d;

    json_array_foreach(deals, i, d)
    {
        const char *v = stack_text(json_object_get(d, "fields"), "name");
        count += !json_is_true(json_object_get(d, "archived")) && v &&
                 strcmp(v, name) == 0;
    }
    json_decref(deals);
    return count;
}

/* Every synced field of every live fieldsync deal equals the new CRM's. */
static void assert_sides_equal(void)
{
    json_t *mine = stack_deals(&old, false);
    json_t *theirs = stack_sim_deals(&neu);
    json_t *by_id = json_object();
    size_t i;
    json_t *d;

    json_array_foreach(theirs, i, d)
    {
        if (!json_is_true(json_object_get(d, "archived")))
            json_object_set(by_id, stack_text(d, "id"), d);
    }
    assert_int_equal(json_array_size(mine), json_object_size(by_id));
    json_array_foreach(mine, i, d)
    {
        const char *crm_id = stack_text(d, "crm_id");
        json_t *crm = crm_id ? json_object_get(by_id, crm_id) : NULL;
        if (!crm)
            fail_msg("deal %s has no deal in the new CRM (crm_id %s)",
                     stack_text(d, "id"), crm_id ? crm_id : "-");
        const char *field;
        json_t *value;
        json_object_foreach(json_object_get(crm, "fields"), field, value)
        {
            json_t *ours = stack_crm_view(d, field);
            if (ours && !json_equal(value, ours))
                fail_msg("deal %s field %s: new CRM %s, fieldsync %s",
                         stack_text(d, "id"), field, json_string_value(value),
                         json_string_value(ours));
        }
    }
    json_decref(by_id);
    json_decref(theirs);
    json_decref(mine);
}

static void test_switch_keeps_every_deal_and_every_local_edit(void **state)
{
    long status;
    int code;

    /* Edits the old CRM never got: its pushes fail from now on. */
    assert_true(stack_faults(&old, "{\"api_5xx\": 1.0}"));
    char *edited = old_record(3);
    json_decref(stack_patch(&old, old.admin, edited,
                            "{\"fields\":{\"account\":\"Edited before the "
                            "switch\"}}",
                            &status));
    assert_int_equal(status, 200);
    json_t *born =
        stack_api(&old, old.admin, "POST", "/api/v1/deals",
                  "{\"fields\":{\"name\":\"Born in the field\"}}", &status);
    assert_int_equal(status, 201);
    char *born_id = xstrdup(stack_text(born, "id"));
    json_decref(born);

    /* The new CRM changed one deal later than anything fieldsync holds. */
    char *newer = old_record(5);
    char *seventh = old_record(7);
    assert_true(stack_sim_edit(&neu, stack_seed_id(&neu, 5),
                               "{\"product\":\"Newer in the new CRM\"}") > 0);

    /* A standby, its stages mapped, then the switch. The seeds have no
     * postcodes: an empty key field matches an empty one. */
    assert_true(stack_connect(&neu, STACK_ORG, 0, 100000));
    const char *map[] = {STACK_STAGE_MAP, NULL};
    assert_true(stack_set_stage_map(&neu, map));
    char *to = xasprintf("%lld", (long long)neu.connection);
    const char *sw[] = {"switch", "--org",   STACK_ORG,       "--to",
                        to,       "--match", "name,postcode", NULL};
    char *out = stack_cli(&old, &code, sw);
    assert_int_equal(code, 0);
    assert_non_null(strstr(out, "linked by match key       24"));
    assert_non_null(strstr(out, "to create in the new CRM  1"));
    assert_non_null(strstr(out, "imported from it          4"));
    free(out);
    free(to);
    int64_t old_writes = stack_sim_stat(&old, "api_calls_by_class", "write");

    /* The local edit and the field's own deal reach the new CRM, once. */
    assert_true(stack_wait_sim(&neu, stack_seed_id(&neu, 3), "account",
                               "Edited before the switch"));
    assert_true(stack_wait_state(&old, born_id, "synced"));
    assert_int_equal(sim_deals_named(&neu, "Born in the field"), 1);
    assert_true(
        stack_wait_field(&old, newer, "product", "Newer in the new CRM"));

    /* Every deal is on both sides, field by field. */
    assert_true(stack_settled(&neu, STACK_WAIT_MS));
    assert_sides_equal();
    json_t *all = stack_deals(&old, false);
    assert_int_equal(json_array_size(all), NEW_DEALS + 1);
    json_decref(all);

    /* The old CRM gets nothing more, and its changes change nothing. */
    assert_true(stack_faults(&old, STACK_NO_FAULTS));
    assert_true(stack_sim_edit(&old, stack_seed_id(&old, 7),
                               "{\"name\":\"Changed in the old CRM\"}") > 0);
    assert_true(stack_settled(&old, STACK_WAIT_MS));
    json_t *deal = stack_deal(&old, seventh);
    assert_string_not_equal(stack_text(deal, "name"), "Changed in the old CRM");
    json_decref(deal);
    assert_int_equal(stack_sim_stat(&old, "api_calls_by_class", "write"),
                     old_writes);

    free(seventh);
    free(born_id);
    free(newer);
    free(edited);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_switch_keeps_every_deal_and_every_local_edit),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
